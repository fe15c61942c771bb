"""The HTML report: store -> report data -> jinja2 template -> one self-contained file."""

from __future__ import annotations

from pathlib import Path

from srbench.report.data import ReportData, build_report_data
from srbench.report.render import render_html
from srbench.store import ResultStore, export

__all__ = ["ReportData", "build_report_data", "render_html", "write_report"]


def write_report(
    out: str | Path,
    *,
    store_path: str | Path | None = None,
    title: str = "srbench report",
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Write ``index.html`` plus ``results.csv``, ``results.md`` and ``results.tex`` to ``out``.

    The report only reads the store; it never runs a method. Where the numbers were measured
    (machine, versions, revision) is what the store recorded with them, not this machine.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with ResultStore(store_path) as store:
        results = store.results(methods=methods, datasets=datasets)
        runs = store.runs({r.run for r in results if r.run})
    order = _method_order(methods)
    data = build_report_data(results, title=title, method_order=order, runs=runs)
    index = out / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(render_html(data, order), encoding="utf-8")
    tmp.replace(index)
    export(results, "csv", out / "results.csv", runs=runs)
    export(results, "markdown", out / "results.md", runs=runs)
    export(results, "latex", out / "results.tex", runs=runs)
    return index


def _method_order(methods: list[str] | None) -> list[str]:
    """Table order: the papers' order for built-ins, then anything else alphabetically."""
    canonical = [
        "bicubic", "sc", "ksvd", "ne_nnls", "ne_lle", "gr", "anr", "aplus",
        "srcnn", "srcnn_955", "espcn", "fsrcnn",
    ]  # fmt: skip
    extra = sorted(set(methods or []) - set(canonical))
    return canonical + extra
