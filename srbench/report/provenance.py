"""Where the trained artifacts behind a report's numbers came from (their manifests).

A report is only as trustworthy as the weights it ran: this turns each artifact that results
were computed with into one plain row (training data, starting point, runs, epochs, time,
devices, held-out PSNR), read from the manifest saved beside it. Nothing is trained or run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from srbench.store import Result

__all__ = ["ArtifactRow", "artifact_rows", "summarise_manifest"]


@dataclass
class ArtifactRow:
    """One trained artifact (method x scale) as the report shows it."""

    method: str
    label: str
    scale: int
    artifact: str
    training_images: int | None = None
    training_scales: int = 1
    heldout_images: int | None = None
    start: str = "–"
    runs: int = 1
    epochs: int | None = None
    seconds: float | None = None
    devices: list[str] = field(default_factory=list)
    heldout_psnr: float | None = None
    heldout_curve: list[list[float]] = field(default_factory=list)
    note: str = ""


def _describe_start(init: Any, manifest: Mapping[str, Any]) -> str:
    """The first run's starting point, in words."""
    if init == "seeded":
        return "seeded initialisation"
    if isinstance(init, Mapping):
        if init.get("from") == "srcnn":
            return f"SRCNN 9-1-5 x{init.get('from_scale')} weights"
        if "from_scale" in init:
            trained = init.get("trained")
            if isinstance(trained, list) and trained:  # a partial fine-tune names its layers
                return f"x{init['from_scale']} weights ({' and '.join(trained)} only)"
            return f"x{init['from_scale']} weights"
    if manifest.get("dictionary"):
        return "K-SVD dictionary"
    return "–"


def summarise_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Totals over a manifest's chain of runs (earlier warm-started runs, then the last).

    Returns the :class:`ArtifactRow` fields that come from the manifest; ``heldout_curve``
    holds one list of per-epoch held-out PSNRs per run that recorded them.
    """
    init = manifest.get("init")
    earlier = list(init.get("runs", [])) if isinstance(init, Mapping) else []
    chain = [*earlier, manifest]
    first_init = earlier[0].get("init") if earlier else init
    images = manifest.get("train_images", manifest.get("training_images"))
    scales = len(manifest.get("train_scales") or [1.0])
    timed = [run.get("train_seconds") for run in chain if run.get("train_seconds") is not None]
    epochs = [run.get("epochs") for run in chain if isinstance(run.get("epochs"), int)]
    return {
        "training_images": images,
        "training_scales": scales,
        "heldout_images": manifest.get("heldout_images"),
        "start": _describe_start(first_init, manifest),
        "runs": len(chain),
        "epochs": sum(epochs) if epochs else None,
        "seconds": sum(timed) if timed else manifest.get("duration_s"),
        "devices": sorted({str(run["device"]) for run in chain if run.get("device")}),
        "heldout_psnr": manifest.get("heldout_psnr"),
        "heldout_curve": [curve for run in chain if (curve := _heldout_curve(run))],
    }


def _heldout_curve(run: Mapping[str, Any]) -> list[float]:
    """One run's per-epoch held-out PSNR, in epoch order (empty when it kept none)."""
    rows = run.get("history") or []
    return [float(row["heldout_psnr"]) for row in rows if row.get("heldout_psnr") is not None]


def artifact_rows(results: Iterable[Result]) -> list[ArtifactRow]:
    """One row per (method, scale, artifact) the results used, from the shipped manifests.

    Methods that cannot be found (a plugin not loaded now) are skipped; an artifact that is
    no longer the one in the method's weights folder gets a row that says so.
    """
    from srbench.method import MethodError
    from srbench.registry import get_registry
    from srbench.variants import base_name

    # A variant (``fsrcnn[border=layers]``) runs its method's own artifacts: one row for both.
    used = {(base_name(r.method), r.scale, r.artifact_hash) for r in results if r.artifact_hash}
    registry = get_registry()
    rows = []
    for name, scale, digest in sorted(used):
        try:
            cls = registry.get(name)
            method = cls()
            method.load(scales=[scale])
        except MethodError:  # unknown now (a plugin), untrained, or unreadable weights
            continue
        row = ArtifactRow(method=name, label=cls.label, scale=scale, artifact=digest)
        if method.artifact_hash(scale) != digest:
            row.note = "the results used an earlier artifact; its manifest is not shipped now"
        else:
            for key, value in summarise_manifest(method.manifests_.get(scale, {})).items():
                setattr(row, key, value)
        rows.append(row)
    return rows
