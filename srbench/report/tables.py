"""The tables papers print, from a results frame: the summary and the per-image tables.

Summary (:func:`summary_pivots`; LaTeX, Markdown, CSV): methods are rows; dataset x scale
are columns; a cell is the mean PSNR / SSIM over the images. Best is bold and second underlined, per column and per metric, among the cells that
scored every image the column's other methods scored (a mean over fewer images is shown with
its count "n/N" and is not ranked). One table per protocol: numbers of two protocols never
share a table, and every caption names its protocol.

Per image (:func:`image_tables`; LaTeX, Markdown, CSV, Parquet): one table per protocol x
dataset x scale, images as rows and methods as columns, the mean as the last row and each
method's mean seconds (with the spread of repeated calls) under it.

The input is :func:`srbench.load_results`' frame (or :func:`srbench.results.results_frame` of
results already read), so the export and the report print the same numbers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "IMAGE_FORMATS", "SUMMARY_FORMATS", "ImageTable", "ImageValue", "Pivot", "PivotCell", "PivotColumn",
    "PivotRow", "TimingCell", "image_tables", "image_tables_frame", "image_tables_latex", "image_tables_markdown",
    "pivot_csv", "pivot_latex", "pivot_markdown", "summary_pivots", "write_images", "write_summary",
]  # fmt: skip

SUMMARY_FORMATS = ("latex", "markdown", "csv")
#: Rows of one per-image LaTeX table; a longer set is printed in parts.
ROWS_PER_TABLE = 40


@dataclass
class PivotColumn:
    dataset: str
    scale: int
    #: Images of the set that any method ran on (the N of "n/N").
    images: int

    @property
    def title(self) -> str:
        return f"{self.dataset} ×{self.scale}"


@dataclass
class PivotCell:
    psnr: float | None
    ssim: float | None
    #: Images scored (n) and images in the column (N).
    n: int
    total: int
    #: 1 = best, 2 = second, 0 = neither (or not ranked: a partial cell).
    psnr_rank: int = 0
    ssim_rank: int = 0
    complete: bool = True

    @property
    def coverage(self) -> str:
        return f"{self.n}/{self.total}" if self.n < self.total else ""


@dataclass
class PivotRow:
    method: str
    label: str
    cells: list[PivotCell | None]


@dataclass
class Pivot:
    protocol: str
    description: str
    columns: list[PivotColumn]
    rows: list[PivotRow] = field(default_factory=list)

    @property
    def datasets(self) -> list[tuple[str, int]]:
        """(dataset, number of its columns), in column order: the first header row."""
        out: list[tuple[str, int]] = []
        for column in self.columns:
            if out and out[-1][0] == column.dataset:
                out[-1] = (column.dataset, out[-1][1] + 1)
            else:
                out.append((column.dataset, 1))
        return out

    @property
    def caption(self) -> str:
        return (
            f"Mean PSNR (dB) / SSIM, protocol {self.protocol}. Best in bold, second underlined "
            "(among methods that scored every image); n/N: mean over the n of N images that were scored."
        )

    @property
    def anchor(self) -> str:
        import re

        return "pivot-" + re.sub(r"[^a-z0-9]+", "-", self.protocol.lower()).strip("-")


def _catalog_order() -> list[str]:
    from srbench.datasets import CATALOG

    return [spec.name for spec in CATALOG.values()]


def summary_pivots(frame: pd.DataFrame, method_order: Sequence[str] | None = None) -> list[Pivot]:
    """One :class:`Pivot` per protocol in ``frame`` (a :func:`srbench.load_results` frame)."""
    from srbench.protocols import PROTOCOLS, get_protocol
    from srbench.variants import base_name

    if frame.empty:
        return []
    order = {name: i for i, name in enumerate(method_order or [])}
    catalog = _catalog_order()
    protocols = [p for p in PROTOCOLS if p in set(frame.protocol)] + sorted(set(frame.protocol) - set(PROTOCOLS))
    pivots = []
    for protocol in protocols:
        mine = frame[frame.protocol == protocol]
        try:
            description = get_protocol(protocol).description
        except ValueError:
            description = ""
        keys = sorted(
            {(d, int(s)) for d, s in zip(mine.dataset, mine.scale, strict=True)},
            key=lambda k: (catalog.index(k[0]) if k[0] in catalog else len(catalog), k[0], k[1]),
        )
        columns = [PivotColumn(d, s, int(mine[(mine.dataset == d) & (mine.scale == s)].image.nunique())) for d, s in keys]
        methods = sorted(set(mine.method), key=lambda m: (order.get(base_name(m), len(order)), m))
        labels = dict(zip(mine.method, mine.label, strict=True))
        pivot = Pivot(protocol, description, columns)
        grid: dict[str, list[PivotCell | None]] = {m: [] for m in methods}
        for column in columns:
            group = mine[(mine.dataset == column.dataset) & (mine.scale == column.scale)]
            ok = group[(group.status == "ok") & group.psnr.notna()]
            scored = {m: set(ok[ok.method == m].image) for m in methods}
            everything = set(ok.image)
            cells: dict[str, PivotCell] = {}
            for method in methods:
                rows = ok[ok.method == method]
                if not len(group[group.method == method]):
                    grid[method].append(None)
                    continue
                ssim = None if rows.empty or rows.ssim.isna().any() else float(rows.ssim.mean())
                cell = PivotCell(
                    psnr=float(rows.psnr.mean()) if len(rows) else None, ssim=ssim, n=len(rows),
                    total=column.images, complete=bool(everything) and scored[method] == everything,
                )  # fmt: skip
                cells[method] = cell
                grid[method].append(cell)
            for attr in ("psnr", "ssim"):
                ranked = sorted({getattr(c, attr) for c in cells.values() if c.complete and getattr(c, attr) is not None},
                                reverse=True)  # fmt: skip
                for cell in cells.values():
                    value = getattr(cell, attr)
                    if not cell.complete or value is None:
                        continue
                    rank = 1 if value == ranked[0] else 2 if len(ranked) > 1 and value == ranked[1] else 0
                    setattr(cell, f"{attr}_rank", rank)
        pivot.rows = [PivotRow(m, labels[m], grid[m]) for m in methods]
        pivots.append(pivot)
    return pivots


# ------------------------------------------------------------------------------ LaTeX
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}  # fmt: skip


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _latex_value(value: float | None, digits: int, rank: int) -> str:
    if value is None:
        return "--"
    text = f"{value:.{digits}f}"
    return r"\textbf{" + text + "}" if rank == 1 else r"\underline{" + text + "}" if rank == 2 else text


def _latex_table(pivot: Pivot, runs_lines: Sequence[str]) -> list[str]:
    n = len(pivot.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + latex_escape(pivot.caption).replace("n/N", "$n/N$").replace("the n of N", "the $n$ of $N$") + "}",
        r"\label{tab:srbench-" + pivot.anchor.removeprefix("pivot-") + "}",
        # Shrunk to the line width only when wider than it.
        r"\setlength{\tabcolsep}{4pt}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{l" + "c" * n + "}",
        r"\toprule",
    ]
    header, rules, first = ["Method"], [], 2
    for dataset, count in pivot.datasets:
        header.append(r"\multicolumn{" + str(count) + "}{c}{" + latex_escape(dataset) + "}")
        rules.append(r"\cmidrule(lr){" + f"{first}-{first + count - 1}" + "}")
        first += count
    lines.append(" & ".join(header) + r" \\")
    lines.append(" ".join(rules))
    lines.append(" & ".join(["", *(r"$\times" + str(c.scale) + "$" for c in pivot.columns)]) + r" \\")
    lines.append(r"\midrule")
    for row in pivot.rows:
        cells = [latex_escape(row.label)]
        for cell in row.cells:
            if cell is None:
                cells.append("--")
                continue
            text = _latex_value(cell.psnr, 2, cell.psnr_rank) + "/" + _latex_value(cell.ssim, 4, cell.ssim_rank)
            if cell.coverage:
                text += r"\,(" + cell.coverage + ")"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return lines


def pivot_latex(pivots: Sequence[Pivot], runs_lines: Sequence[str] = ()) -> str:
    """A LaTeX document (booktabs) that compiles as it is, one table per protocol.

    The ``table`` environments between the marked comments go into a paper unchanged, given
    ``\\usepackage{booktabs}`` and ``\\usepackage{graphicx}`` in its preamble.
    """
    lines = [
        "% srbench summary table" + ("s" if len(pivots) != 1 else "") + ": mean PSNR (dB) / SSIM per method, dataset and scale.",
        *(f"% protocol {p.protocol}: {p.description}" for p in pivots),
        *(f"% {line}" for line in runs_lines),
        r"\documentclass{article}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        # The standard suite's twelve dataset x scale columns fit a landscape page with
        # little shrinking; on a portrait one they shrink to unreadable print.
        *([r"\usepackage[landscape,margin=1.5cm]{geometry}"] if any(len(p.columns) > 6 for p in pivots) else []),
        r"\begin{document}",
        r"% --- tables: copy from here into a paper that loads booktabs and graphicx ---",
    ]
    if not pivots:
        lines.append("No results.")
    for pivot in pivots:
        lines += _latex_table(pivot, runs_lines)
    lines += [r"% --- to here ---", r"\end{document}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ per-image
@dataclass
class ImageValue:
    """One method's result on one image, as the per-image tables print it.

    ``psnr`` is None where the cell failed (``error`` says why) or the method did not run on
    the image (``error`` empty).
    """

    psnr: float | None = None
    ssim: float | None = None
    #: The image's best PSNR among the table's methods.
    best: bool = False
    #: The median of ``repeat`` timed calls, the fastest and the slowest of them.
    seconds: float | None = None
    seconds_min: float | None = None
    seconds_max: float | None = None
    repeat: int = 1
    error: str = ""

    @property
    def spread(self) -> tuple[float, float] | None:
        """(fastest, slowest) of the repeated calls; None for one call or an unkept spread."""
        if self.repeat <= 1 or self.seconds is None or self.seconds_min is None or self.seconds_max is None:
            return None
        return (self.seconds_min, self.seconds_max)


@dataclass
class TimingCell:
    """A method's mean time per image over one table, and the spread of its repeated calls."""

    seconds: float
    #: Mean over the images of each one's fastest and slowest call (as the report's
    #: :attr:`~srbench.report.data.SummaryRow.spread`); None unless repeated and kept.
    spread: tuple[float, float] | None = None
    repeats: list[int] = field(default_factory=list)


@dataclass
class ImageTable:
    """One protocol x dataset x scale as papers print it per image: images as rows, methods
    as columns, PSNR/SSIM in each cell (best of the row in bold), the mean as the last row."""

    protocol: str
    dataset: str
    scale: int
    methods: list[tuple[str, str]]
    rows: list[tuple[str, list[ImageValue]]] = field(default_factory=list)
    average: list[PivotCell | None] = field(default_factory=list)
    #: Each method's mean seconds per image (None where none was timed).
    timing: list[TimingCell | None] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset} ×{self.scale}, protocol {self.protocol}"

    @property
    def headers(self) -> list[str]:
        """A column name per method: its label, or its name where two methods share a label."""
        labels = [label for _, label in self.methods]
        return [label if labels.count(label) == 1 else method for method, label in self.methods]


def _number(value: Any) -> float | None:
    """A frame's value as a float; None for a missing one (None, NaN, pandas NA)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def image_tables(frame: pd.DataFrame, method_order: Sequence[str] | None = None) -> list[ImageTable]:
    """One :class:`ImageTable` per protocol x dataset x scale of ``frame``."""
    from srbench.report.data import repeat_spread
    from srbench.variants import base_name

    if frame.empty:
        return []
    order = {name: i for i, name in enumerate(method_order or [])}
    tables = []
    for pivot in summary_pivots(frame, method_order):
        mine = frame[frame.protocol == pivot.protocol]
        for index, column in enumerate(pivot.columns):
            group = mine[(mine.dataset == column.dataset) & (mine.scale == column.scale)]
            methods = sorted(set(group.method), key=lambda m: (order.get(base_name(m), len(order)), m))
            labels = dict(zip(group.method, group.label, strict=True))
            table = ImageTable(pivot.protocol, column.dataset, column.scale, [(m, labels[m]) for m in methods])
            by_image: dict[str, dict[str, ImageValue]] = {image: {} for image in sorted(set(group.image))}
            for r in group.itertuples():
                ok = r.status == "ok" and _number(r.psnr) is not None
                by_image[r.image][r.method] = ImageValue(
                    psnr=_number(r.psnr) if ok else None, ssim=_number(r.ssim) if ok else None,
                    seconds=_number(r.seconds) if ok else None, seconds_min=_number(r.seconds_min) if ok else None,
                    seconds_max=_number(r.seconds_max) if ok else None, repeat=int(_number(r.repeat) or 1),
                    error="" if ok else (r.error or r.status or "failed"),
                )  # fmt: skip
            for image, values in by_image.items():
                best = max((v.psnr for v in values.values() if v.psnr is not None), default=None)
                for value in values.values():
                    value.best = best is not None and value.psnr == best
                table.rows.append((image, [values.get(m, ImageValue()) for m in methods]))
            cells = {row.method: row.cells[index] for row in pivot.rows}
            table.average = [cells.get(m) for m in methods]
            for j in range(len(methods)):
                timed = [values[j] for _, values in table.rows if values[j].seconds is not None]
                if not timed:
                    table.timing.append(None)
                    continue
                mean = sum(v.seconds for v in timed) / len(timed)  # type: ignore[misc]
                # The report's rule for a row's spread, so the export and the page agree.
                table.timing.append(TimingCell(mean, repeat_spread(timed), sorted({v.repeat for v in timed})))
            tables.append(table)
    return tables


def image_tables_latex(tables: Sequence[ImageTable], runs_lines: Sequence[str] = ()) -> str:
    """Per-image tables as a LaTeX document (booktabs) that compiles as it is."""
    lines = [
        "% srbench per-image results: PSNR (dB) / SSIM per image and method, one table per protocol, set and scale.",
        *(f"% {line}" for line in runs_lines),
        r"\documentclass{article}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        r"\begin{document}",
        r"% --- tables: copy from here into a paper that loads booktabs and graphicx ---",
    ]
    if not tables:
        lines.append("No results.")
    for t in tables:
        # A float cannot break across pages: long sets go in parts of at most ROWS_PER_TABLE.
        parts = [t.rows[i : i + ROWS_PER_TABLE] for i in range(0, len(t.rows), ROWS_PER_TABLE)] or [[]]
        for number, part in enumerate(parts, start=1):
            caption = latex_escape(f"{t.dataset}, protocol {t.protocol}").replace(",", rf" $\times{t.scale}$,", 1)
            caption += ": PSNR (dB) / SSIM per image; best PSNR of each image in bold"
            if len(parts) > 1:
                caption += f" (part {number} of {len(parts)})"
            lines += [
                r"\begin{table}[p]",
                r"\centering",
                r"\caption{" + caption + ".}",
                r"\setlength{\tabcolsep}{4pt}",
                r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
                r"\begin{tabular}{l" + "c" * len(t.methods) + "}",
                r"\toprule",
                " & ".join(["Image", *(latex_escape(label) for _, label in t.methods)]) + r" \\",
                r"\midrule",
            ]
            for image, cells in part:
                texts = [latex_escape(image)]
                for v in cells:
                    texts.append("--" if v.psnr is None else _latex_value(v.psnr, 2, 1 if v.best else 0) + "/" + _latex_value(v.ssim, 4, 0))
                lines.append(" & ".join(texts) + r" \\")
            if number == len(parts):
                lines.append(r"\midrule")
                average = ["Average"]
                for cell in t.average:
                    if cell is None or cell.psnr is None:
                        average.append("--")
                    else:
                        average.append(_latex_value(cell.psnr, 2, 0) + "/" + _latex_value(cell.ssim, 4, 0)
                                       + (r"\,(" + cell.coverage + ")" if cell.coverage else ""))  # fmt: skip
                lines.append(" & ".join(average) + r" \\")
            lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", r"\clearpage"]
    lines += [r"% --- to here ---", r"\end{document}"]
    return "\n".join(lines) + "\n"


def _md_seconds(value: float | None) -> str:
    # The report's rounding, so an exported time reads as the page prints it.
    return "–" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _md_spread(spread: tuple[float, float] | None) -> str:
    return "" if spread is None else f" ({_md_seconds(spread[0])}–{_md_seconds(spread[1])})"


def image_tables_markdown(tables: Sequence[ImageTable], runs_lines: Sequence[str] = ()) -> str:
    """Per-image tables as Markdown: images as rows, methods as columns, PSNR / SSIM per cell.

    Each table ends with the mean over the images (n/N where a method scored n of the N)
    and each method's mean seconds per image; where the cells were timed several times, the
    range after a time is the mean of each image's fastest and slowest call.
    """
    out: list[str] = []
    for t in tables:
        out.append(f"**{t.title}: PSNR (dB) / SSIM per image; best PSNR of each image in bold.**")
        out.append("")
        out.append("| Image | " + " | ".join(h.replace("|", "\\|") for h in t.headers) + " |")
        out.append("|---|" + "---:|" * len(t.methods))
        for image, cells in t.rows:
            texts = []
            for v in cells:
                if v.psnr is None:
                    texts.append("failed" if v.error else "–")
                else:
                    texts.append(_md_value(v.psnr, 2, 1 if v.best else 0) + " / " + _md_value(v.ssim, 4, 0))
            out.append("| " + image.replace("|", "\\|") + " | " + " | ".join(texts) + " |")
        average = []
        for cell in t.average:
            if cell is None or cell.psnr is None:
                average.append("–")
            else:
                average.append(_md_value(cell.psnr, 2, 0) + " / " + _md_value(cell.ssim, 4, 0)
                               + (f" ({cell.coverage})" if cell.coverage else ""))  # fmt: skip
        out.append("| **Average** | " + " | ".join(average) + " |")
        out.append("| Seconds | " + " | ".join("–" if c is None else _md_seconds(c.seconds) + _md_spread(c.spread)
                                                for c in t.timing) + " |")  # fmt: skip
        out.append("")
        repeats = sorted({r for c in t.timing if c is not None for r in c.repeats} - {1})
        note = "Seconds: mean per image of the upscale call alone"
        if repeats:
            note += ", each the median of " + " or ".join(str(r) for r in repeats) + " calls"
            if any(c is not None and c.spread is not None for c in t.timing):
                note += "; in brackets the mean of each image's fastest and of its slowest call"
        out.append(note + ".")
        out.append("")
    if runs_lines:
        out.extend(f"{line}  " for line in runs_lines)
    return "\n".join(out).rstrip("\n") + "\n" if out else "No results.\n"


def image_tables_frame(tables: Sequence[ImageTable]) -> pd.DataFrame:
    """Per-image tables as one wide frame: a row per image, then each table's mean row.

    Columns ``protocol``, ``dataset``, ``scale``, ``image``, then per method (named as
    :attr:`ImageTable.headers` names it) ``<name>_psnr``, ``_ssim`` and ``_seconds``, and
    ``_seconds_min`` / ``_seconds_max`` when any cell was timed more than once. The tables
    follow each other (protocol, dataset, scale), each closed by a row whose ``image`` is
    ``Average``: the mean over the images each method scored, as the report prints it.
    A failed or missing cell is empty. This is the readable form;
    :func:`srbench.load_results` (``srbench export --table results``) is the tidy one.
    """
    import pandas as pd

    spread = any(v.spread is not None for t in tables for _, cells in t.rows for v in cells)
    metrics = ["psnr", "ssim", "seconds"] + (["seconds_min", "seconds_max"] if spread else [])
    names: list[str] = []
    for t in tables:
        for name in t.headers:
            if name not in names:
                names.append(name)
    columns = ["protocol", "dataset", "scale", "image"] + [f"{n}_{m}" for n in names for m in metrics]
    records: list[dict[str, Any]] = []
    for t in tables:
        head = {"protocol": t.protocol, "dataset": t.dataset, "scale": t.scale}
        for image, cells in t.rows:
            record: dict[str, Any] = {**head, "image": image}
            for name, v in zip(t.headers, cells, strict=True):
                record.update({f"{name}_{m}": getattr(v, m) if v.psnr is not None else None for m in metrics})
            records.append(record)
        record = {**head, "image": "Average"}
        for name, cell, timing in zip(t.headers, t.average, t.timing, strict=True):
            record[f"{name}_psnr"] = cell.psnr if cell is not None else None
            record[f"{name}_ssim"] = cell.ssim if cell is not None else None
            record[f"{name}_seconds"] = timing.seconds if timing is not None else None
            if spread:
                low, high = timing.spread if timing is not None and timing.spread is not None else (None, None)
                record[f"{name}_seconds_min"], record[f"{name}_seconds_max"] = low, high
        records.append(record)
    frame = pd.DataFrame(records, columns=columns)
    for name in columns[4:]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame["scale"] = frame["scale"].astype("int64")
    return frame


#: The formats ``srbench export --table images`` writes.
IMAGE_FORMATS = ("csv", "parquet", "markdown", "latex")


def write_images(tables: Sequence[ImageTable], fmt: str, out: str | Path, runs_lines: Sequence[str] = ()) -> Path:
    """Write the per-image tables in ``fmt`` (one of :data:`IMAGE_FORMATS`) to ``out``.

    Written beside ``out`` first and moved into place, so an interrupted export leaves no
    half-written file. CSV rounds as the summary CSV does (PSNR 4 decimals, SSIM 6, seconds 6);
    Parquet keeps every digit.
    """
    out = Path(out)
    fmt = fmt.lower()
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"the per-image tables are written as {', '.join(IMAGE_FORMATS)}; not {fmt!r}")
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "latex":
        tmp.write_text(image_tables_latex(tables, runs_lines), encoding="utf-8")
    elif fmt == "markdown":
        tmp.write_text(image_tables_markdown(tables, runs_lines), encoding="utf-8")
    else:
        frame = image_tables_frame(tables)
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            digits = {c: 4 if c.endswith("_psnr") else 6 for c in frame.columns[4:]}
            frame.round(digits).to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- Markdown
def _md_value(value: float | None, digits: int, rank: int) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    # GitHub renders <ins>, not <u>.
    return f"**{text}**" if rank == 1 else f"<ins>{text}</ins>" if rank == 2 else text


def pivot_markdown(pivots: Sequence[Pivot], runs_lines: Sequence[str] = ()) -> str:
    out = []
    for pivot in pivots:
        out.append(f"**{pivot.caption.replace('n/N', '*n/N*')}**")
        out.append("")
        out.append("| Method | " + " | ".join(c.title for c in pivot.columns) + " |")
        out.append("|---|" + "---:|" * len(pivot.columns))
        for row in pivot.rows:
            cells = []
            for cell in row.cells:
                if cell is None:
                    cells.append("–")
                    continue
                text = _md_value(cell.psnr, 2, cell.psnr_rank) + " / " + _md_value(cell.ssim, 4, cell.ssim_rank)
                cells.append(text + (f" ({cell.coverage})" if cell.coverage else ""))
            label = row.label.replace("|", "\\|")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
        out.append(f"Protocol {pivot.protocol}: {pivot.description}.")
        out.append("")
    if runs_lines:
        out.extend(f"{line}  " for line in runs_lines)
    return "\n".join(out).rstrip("\n") + "\n" if out else "No results.\n"


# -------------------------------------------------------------------------------- CSV
def pivot_csv(pivots: Sequence[Pivot]) -> str:
    """One row per protocol x method; per column ``<set>_x<scale>_psnr``, ``_ssim``, ``_images``."""
    columns: list[tuple[str, int]] = []
    for pivot in pivots:
        for c in pivot.columns:
            if (c.dataset, c.scale) not in columns:
                columns.append((c.dataset, c.scale))
    header = ["protocol", "method", "label"]
    for dataset, scale in columns:
        header += [f"{dataset}_x{scale}_psnr", f"{dataset}_x{scale}_ssim", f"{dataset}_x{scale}_images"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for pivot in pivots:
        where = {(c.dataset, c.scale): i for i, c in enumerate(pivot.columns)}
        for row in pivot.rows:
            values: list[Any] = [pivot.protocol, row.method, row.label]
            for key in columns:
                cell = row.cells[where[key]] if key in where else None
                if cell is None:
                    values += ["", "", ""]
                else:
                    values += [
                        "" if cell.psnr is None else f"{cell.psnr:.4f}",
                        "" if cell.ssim is None else f"{cell.ssim:.6f}",
                        f"{cell.n}/{cell.total}",
                    ]
            writer.writerow(values)
    return buffer.getvalue()


def write_summary(pivots: Sequence[Pivot], fmt: str, runs_lines: Sequence[str] = ()) -> str:
    """The summary in ``fmt`` (one of :data:`SUMMARY_FORMATS`) as text."""
    fmt = fmt.lower()
    if fmt == "latex":
        return pivot_latex(pivots, runs_lines)
    if fmt == "markdown":
        return pivot_markdown(pivots, runs_lines)
    if fmt == "csv":
        return pivot_csv(pivots)
    raise ValueError(f"the summary table is written as {', '.join(SUMMARY_FORMATS)}; not {fmt!r}")
