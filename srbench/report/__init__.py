"""The HTML report: store -> report data -> jinja2 templates -> pages that open from disk.

``write_report`` writes ``index.html`` (the paper-format summary, every protocol x dataset x
scale section with its table, plot and visual comparison) with CSV, Markdown and LaTeX twins;
when a dataset has more than :data:`~srbench.report.data.COLLAPSE_OVER` images (the standard
suite), the per-image tables move to one page per dataset, linked from the index.
``write_site`` writes the same as a static site: pictures as files, the results as CSV,
Parquet and JSON, and a page saying how to reproduce them. Neither ever runs a method.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from srbench.report.data import COLLAPSE_OVER, Page, ReportData, build_report_data
from srbench.report.figures import (
    IMAGES_PER_FIGURE,
    CropSpec,
    attach_figures,
    parse_crop,
)
from srbench.report.render import ImageSink, render_html, render_pages
from srbench.store import Result, ResultStore, RunInfo, describe_run, export

__all__ = [
    "CropSpec", "ReportData", "build_report_data", "parse_crop", "render_html", "render_pages",
    "write_report", "write_site",
]  # fmt: skip


def _read(store_path, methods, datasets) -> tuple[list[Result], dict[str, RunInfo], Path]:
    with ResultStore(store_path) as store:
        results = store.results(methods=methods, datasets=datasets)
        runs = store.runs({r.run for r in results if r.run})
        return results, runs, store.path


def prepare(
    *,
    store_path: str | Path | None = None,
    title: str = "srbench report",
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
    data_dir: str | Path | None = None,
    crops: Sequence[CropSpec] = (),
    figure_images: int = IMAGES_PER_FIGURE,
    split: bool | None = None,
) -> tuple[ReportData, list[Result], dict[str, RunInfo], Path]:
    """Everything a report shows, read from the store (and the dataset folder, for figures)."""
    results, runs, path = _read(store_path, methods, datasets)
    order = _method_order(methods)
    data = build_report_data(results, title=title, method_order=order, runs=runs)
    if figure_images > 0:
        data.figure_notes = attach_figures(data.sections, results, store_path=path, data_dir=data_dir,
                                           count=figure_images, crops=crops)  # fmt: skip
    if split is None:
        split = any(len(s.images) > COLLAPSE_OVER for s in data.sections)
    if split:
        _paginate(data)
    return data, results, runs, path


def _paginate(data: ReportData) -> None:
    """One page per dataset for the per-image tables; the index links to them."""
    files: dict[str, Page] = {}
    taken: set[str] = {"index.html", "reproduce.html"}
    for section in data.sections:
        page = files.get(section.dataset)
        if page is None:
            stem = re.sub(r"[^a-z0-9]+", "-", section.dataset.lower()).strip("-") or "dataset"
            name, n = f"{stem}.html", 1
            while name in taken:
                n += 1
                name = f"{stem}-{n}.html"
            taken.add(name)
            page = files[section.dataset] = Page(section.dataset, name)
            data.pages.append(page)
        page.sections.append(section)
        section.page = page.file


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _runs_lines(results: list[Result], runs: dict[str, RunInfo]) -> list[str]:
    ids = [i for i in dict.fromkeys(r.run for r in results) if i in runs]
    lines = [f"run {runs[i].id[:8]}: {describe_run(runs[i])}" for i in ids]
    if any(r.run not in runs for r in results):
        lines.append("some rows: run not recorded (stored before srbench recorded runs)")
    return lines


def _write_all(out: Path, data: ReportData, results, runs, sink, extra=None) -> Path:
    from srbench.report.tables import (
        image_tables,
        image_tables_latex,
        image_tables_markdown,
        pivot_csv,
        pivot_latex,
        pivot_markdown,
    )
    from srbench.results import results_frame

    out.mkdir(parents=True, exist_ok=True)
    pages = render_pages(data, image_url=sink, extra=extra)
    for name, html in pages.items():
        _write_text(out / name, html)
    export(results, "csv", out / "results.csv", runs=runs)
    lines = _runs_lines(results, runs)
    tables = image_tables(results_frame(results, runs), _method_order(None))
    _write_text(out / "results.md", image_tables_markdown(tables, lines))
    _write_text(out / "results.tex", image_tables_latex(tables, lines))
    _write_text(out / "summary.tex", pivot_latex(data.pivots, lines))
    _write_text(out / "summary.md", pivot_markdown(data.pivots, lines))
    _write_text(out / "summary.csv", pivot_csv(data.pivots))
    return out / "index.html"


def write_report(
    out: str | Path,
    *,
    store_path: str | Path | None = None,
    title: str = "srbench report",
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
    data_dir: str | Path | None = None,
    crops: Sequence[CropSpec] = (),
    figure_images: int = IMAGES_PER_FIGURE,
    split: bool | None = None,
) -> Path:
    """Write the report to ``out`` and return the path of its ``index.html``.

    Beside it: ``results.csv`` (the long table, one row per result), ``results.md`` and
    ``results.tex`` (the per-image tables, images x methods) and
    ``summary.tex``, ``summary.md``, ``summary.csv`` (the paper-format table), and one page
    per dataset when the per-image tables move off the index (``split``: by default when a
    set has more than :data:`COLLAPSE_OVER` images). Pictures are embedded, so every page
    opens from disk with no server and no network.

    The report only reads the store (and, for the visual comparisons, the HR images from
    ``data_dir`` or ``$SRBENCH_DATA``); it never runs a method. Where the numbers were
    measured (machine, versions, revision) is what the store recorded with them.
    """
    data, results, runs, _ = prepare(store_path=store_path, title=title, methods=methods, datasets=datasets,
                                     data_dir=data_dir, crops=crops, figure_images=figure_images, split=split)  # fmt: skip
    return _write_all(Path(out), data, results, runs, ImageSink())


def write_site(
    out: str | Path,
    *,
    store_path: str | Path | None = None,
    title: str = "srbench report",
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
    data_dir: str | Path | None = None,
    crops: Sequence[CropSpec] = (),
    figure_images: int = IMAGES_PER_FIGURE,
    split: bool | None = None,
) -> Path:
    """The report as a static site for any static host: pages, pictures as files under
    ``figures/``, the results as ``results.csv``, ``results.parquet`` and ``results.json``,
    the summary twins, and ``reproduce.html`` saying how to compute it all again."""
    from srbench.results import results_frame

    out = Path(out)
    data, results, runs, _ = prepare(store_path=store_path, title=title, methods=methods, datasets=datasets,
                                     data_dir=data_dir, crops=crops, figure_images=figure_images, split=split)  # fmt: skip
    data.reproduce = reproduction(results, runs, data)
    index = _write_all(out, data, results, runs, ImageSink(out / "figures"), extra={"reproduce.html": "reproduce.html.j2"})
    export(results, "parquet", out / "results.parquet", runs=runs)
    frame = results_frame(results, runs).drop(columns=["output_path", "key"])
    frame["run_started"] = frame["run_started"].astype(str).where(frame["run_started"].notna(), None)
    records = json.loads(frame.to_json(orient="records"))
    _write_text(out / "results.json", json.dumps({"title": title, "results": records}, indent=1) + "\n")
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve the files as they are
    return index


def reproduction(results: list[Result], runs: dict[str, RunInfo], data: ReportData) -> dict:
    """What reproduce.html says: versions, revisions, and the commands for each protocol."""
    import shlex

    grids = []
    for protocol in [p.name for p in data.protocols]:
        mine = [r for r in results if r.protocol == protocol]
        if not mine:
            continue
        order = _method_order(None)
        methods = sorted({r.method for r in mine}, key=lambda m: (order.index(m) if m in order else len(order), m))
        datasets = list(dict.fromkeys(s.dataset for s in data.sections if s.protocol == protocol))
        scales = sorted({r.scale for r in mine})
        devices = sorted({r.device for r in mine})
        command = ["srbench", "run", "-m", ",".join(methods), "-d", ",".join(datasets),
                   "-s", ",".join(str(s) for s in scales)]  # fmt: skip
        if protocol != "matlab":
            command += ["-p", protocol]
        grids.append({"protocol": protocol, "command": " ".join(shlex.quote(c) for c in command),
                      "devices": devices, "methods": methods})  # fmt: skip
    shown = [runs[i] for i in dict.fromkeys(r.run for r in results) if i in runs]
    versions = sorted({run.libraries.get("srbench", "") for run in shown} - {""})
    revisions = sorted({run.revision for run in shown} - {""})
    return {"grids": grids, "versions": versions, "revisions": revisions, "runs": [describe_run(r) for r in shown]}


def _method_order(methods: list[str] | None) -> list[str]:
    """Table order: the papers' order for built-ins, then anything else alphabetically."""
    from srbench.report.svg import CANONICAL

    extra = sorted(set(methods or []) - set(CANONICAL))
    return CANONICAL + extra
