"""Render :class:`~srbench.report.data.ReportData` with jinja2; no data logic here."""

from __future__ import annotations

import jinja2

from srbench.report.data import COLLAPSE_OVER, ReportData
from srbench.report.provenance import format_duration
from srbench.report.svg import curve_svg, method_colour, scatter_svg

__all__ = ["render_html"]


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 2) -> str:
    if value is None:
        return ""
    if round(value, digits) == 0:
        return f"±{0:.{digits}f}"
    return f"{value:+.{digits}f}"


def _delta_class(value: float | None) -> str:
    if value is None or round(value, 2) == 0:
        return "delta"
    return "delta pos" if value > 0 else "delta neg"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def render_html(data: ReportData, method_order: list[str]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("srbench.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, signed=_signed, secs=_seconds, delta_class=_delta_class,
                       duration=format_duration,
                       curve=lambda runs: jinja2.utils.markupsafe.Markup(curve_svg(runs, width=150)))
    for section in data.sections:
        section.scatter_svg = scatter_svg(section, method_order)
    template = env.get_template("index.html.j2")
    return template.render(
        data=data, collapse_over=COLLAPSE_OVER, colour=lambda m: method_colour(m, method_order), markup=jinja2.utils.markupsafe.Markup
    )
