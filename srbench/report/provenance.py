"""Where a report's numbers came from: the runs that measured them, and the trained artifacts.

Runs: each result names the run that computed it, and the store kept that run's machine,
versions and revision as they were then (:class:`~srbench.store.RunInfo`). This turns the runs
behind the shown results into plain rows; nothing about the machine rendering the report is
read, so a store measured on one machine and reported on another shows the first.

Artifacts: a report is only as trustworthy as the weights it ran: each artifact that results
were computed with becomes one plain row (training data, starting point, runs, epochs, time,
devices, held-out PSNR), read from the manifest saved beside it. Nothing is trained or run.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from srbench.store import Result, RunInfo

__all__ = [
    "NOT_RECORDED", "ArtifactRow", "RunProvenance", "RunRow", "artifact_rows", "describe_training",
    "format_duration", "run_provenance", "summarise_manifest",
]  # fmt: skip

#: How a result with no stored run (measured before srbench recorded runs) is labelled.
NOT_RECORDED = "not recorded"


@dataclass
class RunRow:
    """One run behind the shown numbers, as the store recorded it when it ran.

    The row with ``recorded`` false gathers the shown results that name no stored run
    (stored before srbench recorded runs); its machine fields are empty.
    """

    label: str  # "R1", "R2", ... in start order within this report; NOT_RECORDED for the rest
    id: str = ""
    recorded: bool = True
    started: str = ""
    cpu: str = ""
    cores: int | None = None
    system: str = ""
    #: The devices its shown results ran on; CUDA with the GPU's name, e.g. "cuda (NVIDIA H200, CUDA 12.8)".
    devices: list[str] = field(default_factory=list)
    python: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    revision: str = ""
    jobs: int | None = None
    executor: str = ""
    #: What it produced among the shown results.
    results: int = 0
    methods: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)


@dataclass
class RunProvenance:
    """The runs behind a report's numbers, and how to find each result's run."""

    runs: list[RunRow] = field(default_factory=list)
    #: Distinct machines (CPU model, cores, system) among the recorded runs.
    machines: int = 0
    #: Shown results with no recorded run.
    unrecorded: int = 0
    _labels: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def several(self) -> bool:
        """Whether the shown numbers come from more than one run (or partly from no record)."""
        return len(self.runs) > 1

    @property
    def headline(self) -> str:
        """One line for the report's header: where the numbers were measured."""
        if not self.runs:
            return ""
        if len(self.runs) == 1:
            run = self.runs[0]
            if not run.recorded:
                return "Measured before srbench recorded runs: machine, versions and revision not recorded"
            devices = ", ".join(run.devices)
            return f"Measured {run.started} on {run.cpu} ({devices}), revision {run.revision or 'not a git checkout'}"
        recorded = len([r for r in self.runs if r.recorded])
        text = f"Measured in {recorded} run{'s' if recorded != 1 else ''} on {self.machines} machine{'s' if self.machines != 1 else ''}"
        if self.unrecorded:
            text += f"; {self.unrecorded} result{'s' if self.unrecorded != 1 else ''} with no recorded run"
        return text

    def label_of(self, run_id: str | None) -> str:
        """The label of the run a result names (NOT_RECORDED when the store holds none)."""
        return self._labels.get(run_id or "", NOT_RECORDED)


def _utc(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_provenance(results: Iterable[Result], runs: Mapping[str, RunInfo]) -> RunProvenance:
    """The stored runs that produced ``results``, one :class:`RunRow` each, in start order.

    Parameters
    ----------
    results : iterable of Result
        The results the report shows.
    runs : mapping of str to RunInfo
        Stored runs by id (:meth:`~srbench.store.ResultStore.runs`); a result whose run is
        missing here counts as not recorded, never as some other run.
    """
    results = list(results)
    by_run: dict[str, list[Result]] = {}
    for r in results:
        by_run.setdefault(r.run if r.run in runs else "", []).append(r)
    recorded = sorted((runs[i] for i in by_run if i), key=lambda run: (run.started, run.id))
    rows, labels = [], {}
    for number, run in enumerate(recorded, start=1):
        label = f"R{number}"
        labels[run.id] = label
        mine = by_run[run.id]
        # The GPU's name only beside the CUDA cells: a run can mix CPU and CUDA methods.
        devices = [f"cuda ({run.gpu})" if d == "cuda" and run.gpu else d for d in sorted({r.device for r in mine})]
        row = RunRow(label=label, id=run.id, started=_utc(run.started), cpu=run.cpu, cores=run.cores,
                     system=run.system, devices=devices, python=run.python, libraries=dict(run.libraries),
                     revision=run.revision, jobs=run.jobs, executor=run.executor, **_produced(mine))  # fmt: skip
        rows.append(row)
    unrecorded = by_run.get("", [])
    if unrecorded:
        devices = sorted({r.device for r in unrecorded})
        rows.append(RunRow(label=NOT_RECORDED, recorded=False, devices=devices, **_produced(unrecorded)))
    machines = len({(run.cpu, run.cores, run.system) for run in recorded})
    return RunProvenance(runs=rows, machines=machines, unrecorded=len(unrecorded), _labels=labels)


def _produced(results: list[Result]) -> dict[str, Any]:
    """What a run contributed: result count, method labels, dataset x scale sections."""
    sections = sorted({(r.dataset, r.scale) for r in results})
    return {
        "results": len(results),
        "methods": sorted({r.label for r in results}),
        "sections": [f"{dataset} ×{scale}" for dataset, scale in sections],
    }


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
    #: Set when the row has no manifest to show (the results used an earlier artifact).
    note: str = ""
    #: Disclosures about this artifact shown on the page (:mod:`srbench.report.disclosures`).
    remarks: list[str] = field(default_factory=list)


def format_duration(seconds: float | None) -> str:
    """``"< 1 s"``, ``"42 s"``, ``"13 min"``, ``"1 h 26 min"``; ``"–"`` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _device_words(devices: list[str]) -> str:
    kinds = []
    for device in devices:
        kind = "a GPU" if device.startswith(("cuda", "mps")) else "a CPU" if device == "cpu" else device
        if kind not in kinds:
            kinds.append(kind)
    if len(kinds) == 2 and set(kinds) == {"a CPU", "a GPU"}:
        return "CPU and GPU"
    return " and ".join(kinds)


def describe_training(row: ArtifactRow | None) -> str:
    """How an artifact was trained, in a few words from its manifest summary.

    E.g. ``"20 epochs in 13 min on a CPU, from SRCNN 9-1-5 x2 weights"``; says so when the
    artifact's manifest is not shipped (the results used an earlier artifact).
    """
    if row is None:
        return "the results name no shipped artifact, so no training record"
    if row.note:
        return "an earlier artifact, whose training record is not shipped now"
    text = f"{row.epochs} epochs" if row.epochs is not None else "trained"
    if row.runs > 1:
        text += f" over {row.runs} runs"
    if row.seconds is not None:
        text += f" in {format_duration(row.seconds)}"
    if row.devices:
        text += f" on {_device_words(row.devices)}"
    if row.start not in ("", "–"):
        text += f", from {row.start}"
    return text


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
