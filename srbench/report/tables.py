"""The summary table papers print, from a results frame, and its LaTeX, Markdown and CSV forms.

Methods are rows; dataset x scale are columns; a cell is the mean PSNR / SSIM over the
images. Best is bold and second underlined, per column and per metric, among the cells that
scored every image the column's other methods scored (a mean over fewer images is shown with
its count "n/N" and is not ranked). One table per protocol: numbers of two protocols never
share a table, and every caption names its protocol.

The input is :func:`srbench.load_results`' frame (or :func:`srbench.results.results_frame` of
results already read), so the export and the report print the same numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "SUMMARY_FORMATS", "Pivot", "PivotCell", "PivotColumn", "PivotRow", "pivot_csv", "pivot_latex",
    "pivot_markdown", "summary_pivots", "write_summary",
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
        r"\begin{document}",
        r"% --- tables: copy from here into a paper that loads booktabs and graphicx ---",
    ]
    if not pivots:
        lines.append("No results.")
    for pivot in pivots:
        lines += _latex_table(pivot, runs_lines)
    lines += [r"% --- to here ---", r"\end{document}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ per-image (LaTeX)
@dataclass
class ImageTable:
    """One protocol x dataset x scale as papers print it per image: images as rows, methods
    as columns, PSNR/SSIM in each cell (best of the row in bold), the mean as the last row."""

    protocol: str
    dataset: str
    scale: int
    methods: list[tuple[str, str]]
    rows: list[tuple[str, list[tuple[float | None, float | None, bool]]]] = field(default_factory=list)
    average: list[PivotCell | None] = field(default_factory=list)


def image_tables(frame: pd.DataFrame, method_order: Sequence[str] | None = None) -> list[ImageTable]:
    """One :class:`ImageTable` per protocol x dataset x scale of ``frame``."""
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
            ok = group[(group.status == "ok") & group.psnr.notna()]
            for image in sorted(set(group.image)):
                values = {r.method: (float(r.psnr), None if r.ssim != r.ssim else float(r.ssim))
                          for r in ok[ok.image == image].itertuples()}  # fmt: skip
                best = max((v[0] for v in values.values()), default=None)
                table.rows.append((image, [(*values.get(m, (None, None)), values.get(m, (None,))[0] == best and best is not None)
                                           for m in methods]))  # fmt: skip
            cells = {row.method: row.cells[index] for row in pivot.rows}
            table.average = [cells.get(m) for m in methods]
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
                for psnr, ssim, best in cells:
                    texts.append("--" if psnr is None else _latex_value(psnr, 2, 1 if best else 0) + "/" + _latex_value(ssim, 4, 0))
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
