"""Store -> plain dataclasses the templates render. No HTML here.

Everything about where the numbers were measured comes from the runs stored with them; the
machine rendering the report is not consulted (only the clock, for the "rendered" line).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from srbench.protocol import get_protocol
from srbench.references import published
from srbench.report.provenance import ArtifactRow, RunProvenance, artifact_rows, run_provenance
from srbench.store import Result, RunInfo
from srbench.variants import base_name

__all__ = ["ReportData", "Section", "SummaryRow", "build_report_data"]


@dataclass
class SummaryRow:
    method: str
    label: str
    psnr: float | None
    ssim: float | None
    seconds: float | None
    images: int
    failed: int
    paper_psnr: float | None = None
    paper_seconds: float | None = None
    best_psnr: bool = False
    best_ssim: bool = False
    fastest: bool = False
    pareto: bool = False
    #: Labels of the runs that produced this row's results (see :class:`RunProvenance`).
    runs: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float | None:
        if self.psnr is None or self.paper_psnr is None:
            return None
        return self.psnr - self.paper_psnr


@dataclass
class ImageCell:
    psnr: float | None
    seconds: float | None
    paper_psnr: float | None
    error: str = ""
    best: bool = False
    #: Label of the run that produced it.
    run: str = ""

    @property
    def delta(self) -> float | None:
        if self.psnr is None or self.paper_psnr is None:
            return None
        return self.psnr - self.paper_psnr


@dataclass
class Section:
    dataset: str
    scale: int
    rows: list[SummaryRow]
    images: list[str]
    # image -> label -> cell, in row order
    per_image: dict[str, dict[str, ImageCell]]
    scatter_svg: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.dataset.lower()}-x{self.scale}"


@dataclass
class Failure:
    label: str
    dataset: str
    image: str
    scale: int
    status: str
    error: str
    run: str = ""


@dataclass
class ReportData:
    title: str
    #: When the report was rendered (not when its numbers were measured: see ``provenance``).
    generated: str
    protocol: str
    protocol_description: str
    #: The stored runs that measured the shown numbers.
    provenance: RunProvenance
    sections: list[Section]
    failures: list[Failure] = field(default_factory=list)
    reference_sources: list[str] = field(default_factory=list)
    artifacts: list[ArtifactRow] = field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both time (lower) and PSNR (higher)."""
    front = []
    for i, (t, p) in enumerate(points):
        dominated = any(
            (t2 <= t and p2 >= p) and (t2 < t or p2 > p) for j, (t2, p2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


def build_report_data(
    results: list[Result],
    *,
    title: str = "srbench report",
    method_order: list[str] | None = None,
    runs: Mapping[str, RunInfo] | None = None,
) -> ReportData:
    """Group per-image results into per dataset x scale sections with summary rows.

    Parameters
    ----------
    results : list of Result
    title : str
    method_order : list of str, optional
        Method names in table order; others follow.
    runs : mapping of str to RunInfo, optional
        The stored runs the results name (:meth:`~srbench.store.ResultStore.runs`); results
        whose run is not among them are reported as "not recorded".
    """
    protocols = sorted({r.protocol for r in results}) or ["matlab"]
    protocol = protocols[0]
    refs = defaultdict(dict)
    for value in published():
        refs[(value.dataset, value.scale, value.label)][value.image] = value

    by_section: dict[tuple[str, int], list[Result]] = defaultdict(list)
    for r in results:
        if r.protocol == protocol:
            by_section[(r.dataset, r.scale)].append(r)
    # Only the shown protocol's results are on the page: only their runs are listed.
    provenance = run_provenance((r for r in results if r.protocol == protocol), runs or {})

    order = {name: i for i, name in enumerate(method_order or [])}
    sections = []
    failures = []
    from srbench.datasets import CATALOG

    catalog_order = [spec.name for spec in CATALOG.values()]

    def section_order(item: tuple[tuple[str, int], list[Result]]) -> tuple:
        (dataset, scale), _ = item
        position = catalog_order.index(dataset) if dataset in catalog_order else len(catalog_order)
        return (position, dataset, scale)

    for (dataset, scale), rows in sorted(by_section.items(), key=section_order):
        # A variant (``fsrcnn[border=layers]``) sits right after its method.
        methods = sorted(
            {r.method for r in rows}, key=lambda m: (order.get(base_name(m), len(order)), m)
        )
        labels = {r.method: r.label for r in rows}
        images = sorted({r.image for r in rows})
        per_image: dict[str, dict[str, ImageCell]] = {img: {} for img in images}
        summary = []
        for method in methods:
            mine = [r for r in rows if r.method == method]
            ok = [r for r in mine if r.status == "ok" and r.psnr is not None]
            label = labels[method]
            paper = refs.get((dataset, scale, label), {})
            for r in mine:
                ref = paper.get(r.image)
                per_image[r.image][label] = ImageCell(
                    psnr=r.psnr if r.status == "ok" else None,
                    seconds=r.seconds if r.status == "ok" else None,
                    paper_psnr=ref.psnr if ref else None,
                    error=r.error if r.status != "ok" else "",
                    run=provenance.label_of(r.run),
                )
                if r.status != "ok":
                    failures.append(
                        Failure(label, dataset, r.image, scale, r.status, r.error, provenance.label_of(r.run))
                    )
            complete = bool(paper) and all(img in paper for img in images) and len(ok) == len(images)
            paper_seconds = [paper[i].seconds for i in images if i in paper and paper[i].seconds is not None]
            summary.append(
                SummaryRow(
                    method=method, label=label,
                    psnr=_mean([r.psnr for r in ok]) if len(ok) == len(images) else None,
                    ssim=_mean([r.ssim for r in ok]) if len(ok) == len(images) else None,
                    seconds=_mean([r.seconds for r in ok]) if ok else None,
                    images=len(ok), failed=len(mine) - len(ok),
                    paper_psnr=_mean([paper[i].psnr for i in images]) if complete else None,
                    paper_seconds=_mean(paper_seconds) if complete and len(paper_seconds) == len(images) else None,
                    runs=sorted({provenance.label_of(r.run) for r in mine}, key=_run_order),
                )  # fmt: skip
            )
        scored = [s for s in summary if s.psnr is not None]
        if scored:
            max(scored, key=lambda s: s.psnr).best_psnr = True
            max(scored, key=lambda s: s.ssim).best_ssim = True
            timed = [s for s in scored if s.seconds is not None]
            if timed:
                min(timed, key=lambda s: s.seconds).fastest = True
                for i in pareto_front([(max(s.seconds, 1e-9), s.psnr) for s in timed]):
                    timed[i].pareto = True
        for img in images:
            cells = [c for c in per_image[img].values() if c.psnr is not None]
            if cells:
                max(cells, key=lambda c: c.psnr).best = True
        sections.append(Section(dataset, scale, summary, images, per_image))

    artifacts = sorted(
        artifact_rows(r for r in results if r.protocol == protocol),
        key=lambda a: (order.get(a.method, len(order)), a.method, a.scale),
    )
    description = get_protocol(protocol).description if protocol == "matlab" else protocol
    from srbench.references import REFERENCES

    return ReportData(
        title=title,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        protocol=protocol,
        protocol_description=description,
        provenance=provenance,
        sections=sections,
        failures=failures,
        reference_sources=list(REFERENCES.values()),
        artifacts=artifacts,
    )


def _run_order(label: str) -> tuple[int, int]:
    """R1, R2, ..., R10 in number order; "not recorded" last."""
    return (0, int(label[1:])) if label[1:].isdigit() else (1, 0)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
