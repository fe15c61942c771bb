"""Store -> plain dataclasses the templates render. No HTML here.

Everything about where the numbers were measured comes from the runs stored with them; the
machine rendering the report is not consulted (only the clock, for the "rendered" line).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from srbench.protocol import get_protocol
from srbench.references import TABLES, PublishedValue, Table, published, references_for
from srbench.report.disclosures import DISCLOSURES, Disclosure
from srbench.report.provenance import (
    ArtifactRow,
    RunProvenance,
    artifact_rows,
    describe_training,
    run_provenance,
)
from srbench.store import Result, RunInfo
from srbench.variants import base_name

__all__ = [
    "COLLAPSE_OVER", "Citation", "Note", "Published", "ReportData", "Section", "Source", "SummaryRow",
    "build_report_data",
]  # fmt: skip

#: Per-image tables of a dataset with more images than this are collapsed by default.
COLLAPSE_OVER = 14


@dataclass
class Source:
    """One shipped paper table, numbered as the page cites it ("[3]")."""

    number: int
    key: str  # the CSV file, a key of srbench.references.TABLES
    short: str  # "Kim et al., CVPR 2016 (DRCN)"
    citation: str
    protocol: str
    notes: str
    verified: str
    url: str = ""

    @property
    def anchor(self) -> str:
        return f"src-{self.number}"


@dataclass
class Citation:
    """One published mean for a cell, and where it comes from."""

    psnr: float
    ssim: float | None
    seconds: float | None
    source: Source
    paper_label: str
    reason: str

    @property
    def words(self) -> str:
        """``"36.54 dB [3] Kim et al., CVPR 2016 (DRCN)"``."""
        return f"{self.psnr:.2f} dB [{self.source.number}] {self.source.short}"


@dataclass
class Published:
    """The published mean beside one summary row: the compared one, and any others."""

    compared: Citation
    others: list[Citation] = field(default_factory=list)
    #: Whether our row covers exactly the catalogued images the papers averaged over; the
    #: difference is shown only then.
    comparable: bool = True
    #: Why not comparable ("13 of 14 images measured here").
    coverage: str = ""
    #: Footnote mark when several papers print the cell.
    mark: str = ""

    @property
    def tooltip(self) -> str:
        c = self.compared
        text = f"Published {c.words}"
        if c.paper_label:
            text += f" (the paper's '{c.paper_label}')"
        if c.ssim is not None:
            text += f", SSIM {c.ssim:.4f}"
        if self.others:
            text += f"; compared because: {c.reason}"
            text += "; also printed: " + "; ".join(o.words for o in self.others)
        if not self.comparable:
            text += f". No difference shown: {self.coverage}"
        return text


@dataclass
class Note:
    """A footnote of one dataset x scale section."""

    mark: str
    text: str
    #: "disclosure" (beside a method's numbers, in the summary and per-image tables) or
    #: "references" (beside a published value that several papers print).
    kind: str
    labels: list[str] = field(default_factory=list)
    key: str = ""
    #: Whether the page leads the text with the labels it applies to (a text that names its
    #: method itself does not need them).
    lead: bool = True


@dataclass
class SummaryRow:
    method: str
    label: str
    psnr: float | None
    ssim: float | None
    seconds: float | None
    images: int
    failed: int
    published: Published | None = None
    best_psnr: bool = False
    best_ssim: bool = False
    fastest: bool = False
    pareto: bool = False
    #: Labels of the runs that produced this row's results (see :class:`RunProvenance`).
    runs: list[str] = field(default_factory=list)
    #: Marks of the disclosure footnotes that apply to the row ("a", "b", ...).
    marks: list[str] = field(default_factory=list)
    #: The artifacts its results used.
    artifacts: set[str] = field(default_factory=set)

    @property
    def paper_psnr(self) -> float | None:
        """The compared published mean (whatever images we covered)."""
        return self.published.compared.psnr if self.published else None

    @property
    def paper_seconds(self) -> float | None:
        return self.published.compared.seconds if self.published else None

    @property
    def delta(self) -> float | None:
        """Ours minus the compared published mean, when both average the same images."""
        if self.psnr is None or self.published is None or not self.published.comparable:
            return None
        return self.psnr - self.published.compared.psnr


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
    #: Footnotes, in mark order.
    notes: list[Note] = field(default_factory=list)
    #: The sources of the per-image published values in this section.
    per_image_sources: list[Source] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"{self.dataset.lower()}-x{self.scale}"

    @property
    def images_anchor(self) -> str:
        return f"{self.anchor}-images"

    @property
    def collapsed(self) -> bool:
        """Whether its per-image table starts collapsed (more than :data:`COLLAPSE_OVER` images)."""
        return len(self.images) > COLLAPSE_OVER

    @property
    def disclosures(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "disclosure"]

    @property
    def partial(self) -> list[str]:
        """Why rows with a published mean show no difference ("13 of 14 images measured here")."""
        texts = [r.published.coverage for r in self.rows if r.published and not r.published.comparable]
        return sorted(set(texts))


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
    #: Every shipped paper table, numbered as the page cites them.
    sources: list[Source] = field(default_factory=list)
    artifacts: list[ArtifactRow] = field(default_factory=list)


def _short_name(table: Table) -> str:
    """``"Dong et al., ECCV 2014"``; ``"Kim et al., CVPR 2016 (DRCN)"`` where the summary
    names the paper by an acronym (two tables share authors, venue and year)."""
    surname = table.authors.split(",")[0].split()[-1]
    short = f"{surname} et al., {table.venue} {table.year}"
    acronym = re.search(r"\(([A-Z][A-Za-z0-9+-]*)\)", table.summary)
    return f"{short} ({acronym.group(1)})" if acronym else short


def _numbered(text: str) -> str:
    """A text that names a shipped table by its file ("As srcnn_eccv2014.csv.") cites it
    by its number on the page instead ("As [1].")."""
    for number, key in enumerate(TABLES, start=1):
        text = text.replace(key, f"[{number}]")
    return text


def _sources() -> dict[str, Source]:
    return {
        key: Source(number, key, _short_name(t), t.citation, _numbered(t.protocol), _numbered(t.notes),
                    _numbered(t.verified), t.url)
        for number, (key, t) in enumerate(TABLES.items(), start=1)
    }  # fmt: skip


def _citation(value: PublishedValue, sources: Mapping[str, Source]) -> Citation:
    return Citation(value.psnr, value.ssim, value.seconds, sources[value.table],
                    value.paper_label if value.paper_label != value.label else "", _numbered(value.reason))  # fmt: skip


def _marks():
    """a, b, ..., z, aa, ab, ..."""
    n = 0
    while True:
        n += 1
        text, k = "", n
        while k:
            k, r = divmod(k - 1, 26)
            text = chr(97 + r) + text
        yield text


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
    sources = _sources()
    refs = defaultdict(dict)
    for value in published():
        refs[(value.dataset, value.scale, value.label)][value.image] = value

    by_section: dict[tuple[str, int], list[Result]] = defaultdict(list)
    for r in results:
        if r.protocol == protocol:
            by_section[(r.dataset, r.scale)].append(r)
    shown = [r for r in results if r.protocol == protocol]
    # Only the shown protocol's results are on the page: only their runs are listed.
    provenance = run_provenance(shown, runs or {})

    order = {name: i for i, name in enumerate(method_order or [])}
    artifacts = sorted(
        artifact_rows(shown),
        key=lambda a: (order.get(a.method, len(order)), a.method, a.scale),
    )
    sections = []
    failures = []
    from srbench.datasets import CATALOG

    catalog = {spec.name: spec for spec in CATALOG.values()}
    catalog_order = list(catalog)

    def section_order(item: tuple[tuple[str, int], list[Result]]) -> tuple:
        (dataset, scale), _ = item
        position = catalog_order.index(dataset) if dataset in catalog_order else len(catalog_order)
        return (position, dataset, scale)

    # (artifact, disclosure) -> the artifact, the disclosure, its fields, the sections showing it
    remarks: dict[tuple, tuple[ArtifactRow, Disclosure, dict[str, str], list[str]]] = {}
    for (dataset, scale), rows in sorted(by_section.items(), key=section_order):
        # A variant (``fsrcnn[border=layers]``) sits right after its method.
        methods = sorted(
            {r.method for r in rows}, key=lambda m: (order.get(base_name(m), len(order)), m)
        )
        labels = {r.method: r.label for r in rows}
        images = sorted({r.image for r in rows})
        catalogued = set(catalog[dataset].hashes) if dataset in catalog else None
        per_image: dict[str, dict[str, ImageCell]] = {img: {} for img in images}
        per_image_tables: set[str] = set()
        summary = []
        for method in methods:
            mine = [r for r in rows if r.method == method]
            ok = [r for r in mine if r.status == "ok" and r.psnr is not None]
            label = labels[method]
            paper = refs.get((dataset, scale, label), {})
            for r in mine:
                ref = paper.get(r.image)
                if ref is not None:
                    per_image_tables.add(ref.table)
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
            row = SummaryRow(
                method=method, label=label,
                psnr=_mean([r.psnr for r in ok]) if len(ok) == len(images) else None,
                ssim=_mean([r.ssim for r in ok]) if len(ok) == len(images) else None,
                seconds=_mean([r.seconds for r in ok]) if ok else None,
                images=len(ok), failed=len(mine) - len(ok),
                published=_published(dataset, scale, label, {r.image for r in ok}, catalogued, sources),
                runs=sorted({provenance.label_of(r.run) for r in mine}, key=_run_order),
                artifacts={r.artifact_hash for r in mine if r.artifact_hash},
            )  # fmt: skip
            summary.append(row)
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
        section = Section(dataset, scale, summary, images, per_image,
                          per_image_sources=[src for key, src in sources.items() if key in per_image_tables])  # fmt: skip
        _add_notes(section, artifacts, remarks)
        sections.append(section)
    for artifact, disclosure, fields, shown_in in remarks.values():
        artifact.remarks.append(disclosure.artifact_remark.format_map({**fields, "sections": ", ".join(shown_in)}))

    description = get_protocol(protocol).description if protocol == "matlab" else protocol

    return ReportData(
        title=title,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        protocol=protocol,
        protocol_description=description,
        provenance=provenance,
        sections=sections,
        failures=failures,
        sources=list(sources.values()),
        artifacts=artifacts,
    )


def _published(
    dataset: str,
    scale: int,
    label: str,
    measured: set[str],
    catalogued: set[str] | None,
    sources: Mapping[str, Source],
) -> Published | None:
    """The published means for one summary row, or None when no paper prints the cell.

    The difference is only meaningful over the same images: the papers average the whole
    catalogued set, so a row that measured fewer (or other) images gets no difference.
    """
    cell = references_for(dataset, scale, label)
    if cell.compared is None:
        return None
    others = [_citation(v, sources) for v in cell.values if v is not cell.compared]
    published_ = Published(_citation(cell.compared, sources), others)
    if catalogued is None or measured != catalogued:
        published_.comparable = False
        total = len(catalogued) if catalogued is not None else "the published"
        published_.coverage = f"{len(measured & (catalogued or measured))} of {total} images measured here"
    return published_


def _find_artifact(artifacts: list[ArtifactRow], method: str, scale: int, used: set[str]) -> ArtifactRow | None:
    """The artifact row of ``method`` at ``scale`` among those a summary row's results used."""
    found = [a for a in artifacts if a.method == base_name(method) and a.scale == scale and a.artifact in used]
    return found[0] if len(found) == 1 else None


def _add_notes(section: Section, artifacts: list[ArtifactRow], remarks: dict) -> None:
    """Footnotes of one section: disclosures (from :data:`DISCLOSURES`), then the cells that
    several papers print. Identical texts share one mark. A disclosure shown beside a row is
    also gathered in ``remarks`` for the row's artifact (the trained-artifacts table)."""
    marks = _marks()
    by_text: dict[str, Note] = {}
    rows = {row.method: row for row in section.rows}

    def add(text: str, kind: str, label: str, key: str = "", lead: bool = True) -> Note:
        note = by_text.get(text)
        if note is None:
            note = by_text[text] = Note(next(marks), text, kind, key=key, lead=lead)
            section.notes.append(note)
        note.labels.append(label)
        return note

    for disclosure in DISCLOSURES:
        if section.scale not in disclosure.scales:
            continue
        for row in section.rows:
            if base_name(row.method) not in disclosure.methods:
                continue
            fields = _disclosure_fields(disclosure, section, row, rows.get(disclosure.below), artifacts)
            if fields is None:
                continue
            text = disclosure.text.format_map(fields)
            note = add(text, "disclosure", row.label, disclosure.key, lead="{label}" not in disclosure.text)
            row.marks.append(note.mark)
            if disclosure.artifact_remark:
                artifact = _find_artifact(artifacts, row.method, section.scale, row.artifacts)
                if artifact is not None:
                    key = (artifact.method, artifact.scale, artifact.artifact, disclosure.key)
                    entry = remarks.setdefault(key, (artifact, disclosure, fields, []))
                    where = f"{section.dataset} ×{section.scale}"
                    if where not in entry[3]:
                        entry[3].append(where)
    for row in section.rows:
        published_ = row.published
        if published_ is not None and published_.others:
            c = published_.compared
            text = (
                f"{row.label}, published by {len(published_.others) + 1} papers: compared with "
                f"[{c.source.number}] {c.psnr:.2f} ({c.reason}); also "
                + ", ".join(_brief(o) for o in published_.others)
                + "."
            )
            published_.mark = add(text, "references", row.label, lead=False).mark


def _brief(citation: Citation) -> str:
    """``"[4] 36.54"``, with the paper's own name for the method where it differs."""
    text = f"[{citation.source.number}] {citation.psnr:.2f}"
    return text + (f" (as '{citation.paper_label}')" if citation.paper_label else "")


def _disclosure_fields(
    disclosure: Disclosure,
    section: Section,
    row: SummaryRow,
    other: SummaryRow | None,
    artifacts: list[ArtifactRow],
) -> dict[str, str] | None:
    """The placeholders of a disclosure for one row, or None where it does not apply."""
    fields = {
        "label": row.label, "dataset": section.dataset, "scale": str(section.scale),
        "psnr": f"{row.psnr:.2f}" if row.psnr is not None else "–",
        "training": describe_training(_find_artifact(artifacts, row.method, section.scale, row.artifacts)),
    }  # fmt: skip
    if disclosure.below:
        if other is None or row.psnr is None or other.psnr is None or not row.psnr < other.psnr:
            return None
        fields.update(
            other=other.label, other_psnr=f"{other.psnr:.2f}",
            other_training=describe_training(_find_artifact(artifacts, other.method, section.scale, other.artifacts)),
        )  # fmt: skip
    return fields


def _run_order(label: str) -> tuple[int, int]:
    """R1, R2, ..., R10 in number order; "not recorded" last."""
    return (0, int(label[1:])) if label[1:].isdigit() else (1, 0)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
