"""Store -> plain dataclasses the templates render. No HTML here.

Everything about where the numbers were measured comes from the runs stored with them; the
machine rendering the report is not consulted (only the clock, for the "rendered" line).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from srbench.protocols import DEFAULT_PROTOCOL as _DEFAULT
from srbench.protocols import get_protocol
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

#: Per-image tables of a dataset with more images than this are collapsed by default, and a
#: report holding such a dataset gives every dataset a page of its own.
COLLAPSE_OVER = 14
DEFAULT_PROTOCOL = _DEFAULT.name


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
    #: Images of the section (``images`` of them scored): ``psnr`` and ``ssim`` are the mean
    #: over the scored ones, shown "n/N" when that is not all of them.
    total: int = 0
    #: Whether the row scored every image that any row of its section scored: only such rows
    #: are ranked (best, second, fastest, Pareto front) against each other.
    complete: bool = True
    second_psnr: bool = False
    second_ssim: bool = False
    #: Efficiency (issue 16): network parameters and MACs for a 256x256 LR input (None for
    #: methods that are not networks), and the most memory one timed call took (MiB).
    parameters: int | None = None
    macs: int | None = None
    peak_mb: float | None = None
    #: Timing context: the devices, worker counts and repeats its timings were measured with,
    #: and the fastest and slowest image.
    devices: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    repeats: list[int] = field(default_factory=list)
    seconds_min: float | None = None
    seconds_max: float | None = None
    #: The spread of the repeated calls behind ``seconds``: the mean over the images of each
    #: image's fastest call, and of its slowest (``seconds`` is the mean of their medians).
    #: None unless the cells were repeated and every timed one kept its spread (schema 4).
    spread: tuple[float, float] | None = None

    @property
    def partial(self) -> bool:
        return self.images < self.total

    @property
    def coverage(self) -> str:
        """``"13/14"`` for a row that scored 13 of 14 images; empty when it scored all."""
        return f"{self.images}/{self.total}" if self.partial else ""

    @property
    def timing_words(self) -> str:
        """The context of the row's mean time, for its tooltip."""
        words = [f"mean over {self.images} image{'s' if self.images != 1 else ''}"]
        if self.seconds_min is not None and self.seconds_max is not None and self.images > 1:
            words.append(f"fastest image {self.seconds_min:.3g} s, slowest image {self.seconds_max:.3g} s")
        if self.devices:
            words.append("on " + " and ".join(self.devices))
        if self.jobs and self.jobs != [1]:
            words.append(" and ".join(str(j) for j in self.jobs) + " worker processes")
        if self.repeats and self.repeats != [1]:
            words.append("each the median of " + " or ".join(str(r) for r in self.repeats) + " calls")
        if self.spread is not None:
            words.append(f"the fastest of each image's calls average {self.spread[0]:.3g} s, the slowest {self.spread[1]:.3g} s")
        return "; ".join(words)

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
    ssim: float | None = None
    best_ssim: bool = False
    #: Label of the run that produced it.
    run: str = ""
    #: The timed calls: how many (``seconds`` is their median), the fastest and the slowest.
    repeat: int = 1
    seconds_min: float | None = None
    seconds_max: float | None = None

    @property
    def delta(self) -> float | None:
        if self.psnr is None or self.paper_psnr is None:
            return None
        return self.psnr - self.paper_psnr

    @property
    def spread(self) -> tuple[float, float] | None:
        """(fastest, slowest) of the repeated calls; None for one call or an unkept spread."""
        if self.repeat <= 1 or self.seconds is None or self.seconds_min is None or self.seconds_max is None:
            return None
        return (self.seconds_min, self.seconds_max)

    @property
    def timing_words(self) -> str:
        """The calls the cell's time is the median of, for its tooltip; empty for one call."""
        if self.spread is None:
            return ""
        return f"median of {self.repeat} calls, fastest {self.spread[0]:.3g} s, slowest {self.spread[1]:.3g} s"


@dataclass
class Section:
    """One protocol x dataset x scale: a summary table, a plot, a figure, a per-image table.

    Numbers of two protocols never share a section (nor a table, a plot or a figure).
    """

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
    protocol: str = DEFAULT_PROTOCOL
    #: Warnings about the timings of this section's table (machines, devices, concurrency).
    timing_notes: list[str] = field(default_factory=list)
    #: The visual comparison (:mod:`srbench.report.figures`), when one was made.
    figure: Any = None
    #: The page holding its per-image table ("" for the index itself).
    page: str = ""
    #: Why no published values are shown in this section ("" where they are).
    published_note: str = ""

    @property
    def anchor(self) -> str:
        base = f"{self.dataset.lower()}-x{self.scale}"
        base = re.sub(r"[^a-z0-9]+", "-", base).strip("-")
        return base if self.protocol == DEFAULT_PROTOCOL else f"{_slug(self.protocol)}-{base}"

    @property
    def title(self) -> str:
        return f"{self.dataset} ×{self.scale}"

    @property
    def caption(self) -> str:
        """The words every table of the section starts with: set, scale and protocol."""
        return f"{self.dataset} ×{self.scale}, protocol {self.protocol}"

    @property
    def show_efficiency(self) -> dict[str, bool]:
        return {
            "parameters": any(r.parameters is not None for r in self.rows),
            "macs": any(r.macs is not None for r in self.rows),
            "peak_mb": any(r.peak_mb is not None for r in self.rows),
        }

    @property
    def images_href(self) -> str:
        return f"{self.page}#{self.images_anchor}" if self.page else f"#{self.images_anchor}"

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
    protocol: str = DEFAULT_PROTOCOL


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
    #: Every protocol on the page, in order (each with its own sections and summary pivot).
    protocols: list[ProtocolInfo] = field(default_factory=list)
    #: The paper-format summary, one per protocol (:mod:`srbench.report.tables`).
    pivots: list[Any] = field(default_factory=list)
    #: Method -> colour, fixed for every page of the report.
    colours: dict[str, str] = field(default_factory=dict)
    #: The dataset pages, when per-image tables have pages of their own.
    pages: list[Page] = field(default_factory=list)
    #: Notes about the visual comparisons as a whole (e.g. crops the user asked for that
    #: match no result).
    figure_notes: list[str] = field(default_factory=list)
    efficiency: list[EfficiencyTable] = field(default_factory=list)
    #: The shown methods: description and paper.
    methods: list[MethodInfo] = field(default_factory=list)
    #: What a published site's reproduce page says (filled by ``write_site``).
    reproduce: dict[str, Any] = field(default_factory=dict)

    @property
    def protocol_names(self) -> str:
        names = [p.name for p in self.protocols] or [self.protocol]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def sections_of(self, protocol: str) -> list[Section]:
        return [s for s in self.sections if s.protocol == protocol]


@dataclass
class MethodInfo:
    """What a shown method is: its description and paper (from the method's class)."""

    method: str
    label: str
    description: str = ""
    citation: str = ""


def method_infos(methods: list[tuple[str, str]]) -> list[MethodInfo]:
    """One row per shown method (variants share their method's text); a method that is not
    registered now (a plugin not loaded) gets its label only."""
    from srbench.method import MethodError
    from srbench.registry import get_registry

    registry = get_registry()
    rows = []
    for method, label in methods:
        info = MethodInfo(method, label)
        try:
            cls = registry.get(base_name(method))
        except (MethodError, KeyError):
            rows.append(info)
            continue
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", " ".join(doc.split())).replace("``", "")
        info.description, info.citation = doc, cls.citation or ""
        rows.append(info)
    return rows


@dataclass
class EfficiencyRow:
    method: str
    label: str
    #: Per scale of the table: (parameters, MACs for a 256x256 LR input, most memory of one
    #: timed call over every image of the protocol at that scale).
    cells: list[tuple[int | None, int | None, float | None]]


@dataclass
class EfficiencyTable:
    """Parameters, MACs and peak memory per method and scale, for one protocol."""

    protocol: str
    scales: list[int]
    rows: list[EfficiencyRow] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"efficiency-{_slug(self.protocol)}"


def efficiency_tables(sections: list[Section], protocols: list[str]) -> list[EfficiencyTable]:
    """One table per protocol where any method has parameters, MACs or a peak memory."""
    tables = []
    for protocol in protocols:
        mine = [s for s in sections if s.protocol == protocol]
        scales = sorted({s.scale for s in mine})
        table = EfficiencyTable(protocol, scales)
        methods: dict[str, str] = {}
        values: dict[tuple[str, int], list] = defaultdict(lambda: [None, None, None])
        for section in mine:
            for row in section.rows:
                methods.setdefault(row.method, row.label)
                cell = values[(row.method, section.scale)]
                cell[0] = cell[0] if row.parameters is None else row.parameters
                cell[1] = cell[1] if row.macs is None else row.macs
                if row.peak_mb is not None:
                    cell[2] = row.peak_mb if cell[2] is None else max(cell[2], row.peak_mb)
        for method, label in methods.items():
            cells = [tuple(values[(method, scale)]) for scale in scales]
            if any(c[0] is not None or c[1] is not None for c in cells):
                table.rows.append(EfficiencyRow(method, label, cells))  # type: ignore[arg-type]
        if table.rows:
            tables.append(table)
    return tables


@dataclass
class ProtocolInfo:
    name: str
    description: str

    @property
    def anchor(self) -> str:
        return f"summary-{_slug(self.name)}"


@dataclass
class Page:
    """A page of its own for one dataset's per-image tables."""

    dataset: str
    file: str
    sections: list[Section] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


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
    """Group per-image results into protocol x dataset x scale sections with summary rows.

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
    from srbench.report.svg import colour_map
    from srbench.report.tables import summary_pivots
    from srbench.results import results_frame

    present = {r.protocol for r in results}
    known = [name for name in _protocol_names() if name in present]
    protocols = known + sorted(present - set(known))
    sources = _sources()
    refs = defaultdict(dict)
    for value in published():
        refs[(value.dataset, value.scale, value.label)][value.image] = value

    by_section: dict[tuple[str, str, int], list[Result]] = defaultdict(list)
    for r in results:
        by_section[(r.protocol, r.dataset, r.scale)].append(r)
    provenance = run_provenance(results, runs or {})

    order = {name: i for i, name in enumerate(method_order or [])}
    artifacts = sorted(
        artifact_rows(results),
        key=lambda a: (order.get(a.method, len(order)), a.method, a.scale),
    )
    sections = []
    failures = []
    from srbench.datasets import CATALOG

    catalog = {spec.name: spec for spec in CATALOG.values()}
    catalog_order = list(catalog)

    def section_order(item: tuple[tuple[str, str, int], list[Result]]) -> tuple:
        (protocol, dataset, scale), _ = item
        position = catalog_order.index(dataset) if dataset in catalog_order else len(catalog_order)
        return (protocols.index(protocol), position, dataset, scale)

    # (artifact, disclosure) -> the artifact, the disclosure, its fields, the sections showing it
    remarks: dict[tuple, tuple[ArtifactRow, Disclosure, dict[str, str], list[str]]] = {}
    for (protocol, dataset, scale), rows in sorted(by_section.items(), key=section_order):
        # Published tables measured luminance the matlab way: they sit beside that protocol only.
        compare = protocol == DEFAULT_PROTOCOL
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
        scored: dict[str, set[str]] = {}
        for method in methods:
            mine = [r for r in rows if r.method == method]
            ok = [r for r in mine if r.status == "ok" and r.psnr is not None]
            label = labels[method]
            paper = refs.get((dataset, scale, label), {}) if compare else {}
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
                    ssim=r.ssim if r.status == "ok" else None,
                    repeat=r.repeat or 1,
                    seconds_min=r.seconds_min if r.status == "ok" else None,
                    seconds_max=r.seconds_max if r.status == "ok" else None,
                )
                if r.status != "ok":
                    failures.append(
                        Failure(label, dataset, r.image, scale, r.status, r.error, provenance.label_of(r.run), protocol)
                    )
            timed = [r.seconds for r in ok if r.seconds is not None]
            row = SummaryRow(
                method=method, label=label,
                psnr=_mean([r.psnr for r in ok]),
                ssim=_mean([r.ssim for r in ok if r.ssim is not None]) if all(r.ssim is not None for r in ok) else None,
                seconds=_mean(timed) if timed else None,
                images=len(ok), failed=len(mine) - len(ok),
                published=_published(dataset, scale, label, {r.image for r in ok}, catalogued, sources) if compare else None,
                runs=sorted({provenance.label_of(r.run) for r in mine}, key=_run_order),
                artifacts={r.artifact_hash for r in mine if r.artifact_hash},
                total=len(images),
                parameters=_single([r.parameters for r in ok]),
                macs=_single([r.macs for r in ok]),
                peak_mb=max((r.peak_mb for r in ok if r.peak_mb is not None), default=None),
                devices=sorted({r.device for r in ok}),
                jobs=sorted({r.jobs for r in ok}),
                repeats=sorted({r.repeat for r in ok}),
                seconds_min=min(timed) if timed else None,
                seconds_max=max(timed) if timed else None,
                spread=repeat_spread(ok),
            )  # fmt: skip
            scored[method] = {r.image for r in ok}
            summary.append(row)
        everything = set().union(*scored.values()) if scored else set()
        for row in summary:
            row.complete = bool(everything) and scored[row.method] == everything
        _rank_rows(summary)
        for img in images:
            cells = [c for c in per_image[img].values() if c.psnr is not None]
            if cells:
                max(cells, key=lambda c: c.psnr).best = True
            with_ssim = [c for c in cells if c.ssim is not None]
            if with_ssim:
                max(with_ssim, key=lambda c: c.ssim).best_ssim = True
        section = Section(dataset, scale, summary, images, per_image,
                          per_image_sources=[src for key, src in sources.items() if key in per_image_tables],
                          protocol=protocol)  # fmt: skip
        if not compare:
            section.published_note = (
                f"Published values are shown beside the {DEFAULT_PROTOCOL} protocol only: the papers in "
                "the sources list scored luminance that way, so they do not compare with this protocol's numbers."
            )
        section.timing_notes = timing_notes([r for r in rows if r.status == "ok"], runs or {}, provenance)
        _add_notes(section, artifacts, remarks)
        sections.append(section)
    for artifact, disclosure, fields, shown_in in remarks.values():
        artifact.remarks.append(disclosure.artifact_remark.format_map({**fields, "sections": ", ".join(shown_in)}))

    infos = [ProtocolInfo(name, _describe_protocol(name)) for name in protocols] or [
        ProtocolInfo(DEFAULT_PROTOCOL, _describe_protocol(DEFAULT_PROTOCOL))
    ]
    ordered_methods = sorted({r.method for r in results}, key=lambda m: (order.get(base_name(m), len(order)), m))

    return ReportData(
        title=title,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        protocol=infos[0].name,
        protocol_description=infos[0].description,
        provenance=provenance,
        sections=sections,
        failures=failures,
        sources=list(sources.values()),
        artifacts=artifacts,
        protocols=infos,
        pivots=summary_pivots(results_frame(results, runs), method_order),
        colours=colour_map(ordered_methods),
        efficiency=efficiency_tables(sections, [p.name for p in infos]),
        methods=method_infos([(m, next(r.label for r in results if r.method == m)) for m in ordered_methods]),
    )


def _protocol_names() -> list[str]:
    from srbench.protocols import PROTOCOLS

    return list(PROTOCOLS)


def _describe_protocol(name: str) -> str:
    try:
        return get_protocol(name).description
    except ValueError:
        return "a protocol this srbench does not know (the results were stored by another version)"


def _single(values: list[Any]) -> Any:
    """The value all of ``values`` share (ignoring None); None if none or if they differ."""
    found = {v for v in values if v is not None}
    return found.pop() if len(found) == 1 else None


def _rank_rows(rows: list[SummaryRow]) -> None:
    """Best and second PSNR and SSIM, fastest and the Pareto front, among complete rows."""
    ranked = [s for s in rows if s.psnr is not None and s.complete]
    for attr in ("psnr", "ssim"):
        values = sorted({getattr(s, attr) for s in ranked if getattr(s, attr) is not None}, reverse=True)
        for s in ranked:
            value = getattr(s, attr)
            if value is None:
                continue
            if value == values[0]:
                setattr(s, f"best_{attr}", True)
            elif len(values) > 1 and value == values[1]:
                setattr(s, f"second_{attr}", True)
    timed = [s for s in ranked if s.seconds is not None]
    if timed:
        min(timed, key=lambda s: s.seconds).fastest = True
        for i in pareto_front([(max(s.seconds, 1e-9), s.psnr) for s in timed]):
            timed[i].pareto = True


def repeat_spread(results: Sequence[Any]) -> tuple[float, float] | None:
    """Mean over ``results`` of the fastest and of the slowest repeated call.

    The means of the per-image extremes, so that they bracket the mean of the medians that a
    row shows. None when no result was repeated, or when any timed one lacks its spread (a
    row stored before schema 4): a spread over some of the images would look like all of them.

    Parameters
    ----------
    results : sequence
        Anything with ``seconds``, ``seconds_min``, ``seconds_max`` and ``repeat``: stored
        :class:`~srbench.store.Result` rows, or the cells of a per-image export.
    """
    timed = [r for r in results if r.seconds is not None]
    if not timed or max((r.repeat or 1) for r in timed) <= 1:
        return None
    if any(r.seconds_min is None or r.seconds_max is None for r in timed):
        return None
    return (
        sum(r.seconds_min for r in timed) / len(timed),  # type: ignore[misc]
        sum(r.seconds_max for r in timed) / len(timed),  # type: ignore[misc]
    )


def timing_notes(results: list[Result], runs: Mapping[str, RunInfo], provenance: RunProvenance) -> list[str]:
    """Why the times of one table may not compare with each other, in sentences.

    From what the store recorded with each result: the run's machine (CPU, cores, system,
    and the GPU for CUDA cells), the device, the number of worker processes and the repeats.
    """
    notes = []
    machines: dict[tuple, set[str]] = defaultdict(set)
    unrecorded = 0
    for r in results:
        run = runs.get(r.run or "")
        if run is None:
            unrecorded += 1
            continue
        gpu = run.gpu if r.device.startswith("cuda") else ""
        machines[(run.cpu, run.cores, run.system, gpu)].add(provenance.label_of(r.run))
    if len(machines) > 1:
        described = "; ".join(
            f"{cpu} ({cores} cores{', ' + gpu if gpu else ''}): {', '.join(sorted(labels, key=_run_order))}"
            for (cpu, cores, _system, gpu), labels in sorted(machines.items(), key=lambda kv: min(kv[1]))
        )
        notes.append(f"Timings measured on {len(machines)} different machines ({described}): they do not compare across machines.")
    if unrecorded and machines:
        notes.append(f"{unrecorded} timing{'s' if unrecorded != 1 else ''} in this table have no recorded machine (stored before srbench recorded runs).")
    devices = defaultdict(set)
    for r in results:
        devices[r.device].add(r.label)
    if len(devices) > 1:
        described = "; ".join(f"{device}: {', '.join(sorted(labels))}" for device, labels in sorted(devices.items()))
        notes.append(f"Timed on different devices ({described}): a GPU time does not compare with a CPU time.")
    jobs = defaultdict(set)
    for r in results:
        jobs[r.jobs].add(r.label)
    if len(jobs) > 1:
        described = "; ".join(f"{j} worker{'s' if j != 1 else ''}: {', '.join(sorted(labels))}" for j, labels in sorted(jobs.items()))
        notes.append(f"Timed under different concurrency ({described}): processes sharing a machine slow each other down.")
    elif jobs and next(iter(jobs)) > 1:
        notes.append(f"Timed with {next(iter(jobs))} worker processes running at once (one thread each).")
    repeats = {r.repeat or 1 for r in results}
    if repeats - {1}:
        calls = " or ".join(str(n) for n in sorted(repeats))
        unkept = [r for r in results if (r.repeat or 1) > 1 and r.seconds is not None
                  and (r.seconds_min is None or r.seconds_max is None)]  # fmt: skip
        if not unkept:
            notes.append(
                f"Each time is the median of {calls} calls; the range after it is the fastest and the slowest "
                "of them (for a mean over images: the mean of each image's fastest and of its slowest)."
            )
        else:
            # Stored before srbench kept the extremes (schema 4): the spread of these is unknown.
            labels = ", ".join(sorted({r.label for r in unkept}))
            notes.append(
                f"Each time is the median of {calls} calls. The fastest and slowest calls were not kept for "
                f"{len(unkept)} of them ({labels}: stored by an older srbench), so their spread is not shown; "
                "elsewhere the range after a time is the fastest and the slowest of its calls."
            )
    return notes


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
