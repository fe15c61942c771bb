"""Render :class:`~srbench.report.data.ReportData` with jinja2; no data logic here."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import jinja2

from srbench.report.data import COLLAPSE_OVER, ReportData
from srbench.report.provenance import format_duration
from srbench.report.svg import curve_svg, scatter_svg

__all__ = ["ImageSink", "render_html", "render_pages"]


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


def _spread(value: tuple[float, float] | None) -> str:
    """``(0.118–0.131)``: the fastest and slowest repeated call, as :func:`_seconds` prints a time."""
    if value is None:
        return ""
    return f"({_seconds(value[0])}–{_seconds(value[1])})"


def _count(value: int | None) -> str:
    """``1.23 M``, ``456 K``, ``7.9 G``: parameters and MACs as efficiency tables print them."""
    if value is None:
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.{1 if value >= 10 * size else 2}f} {unit}"
    return str(value)


def _megabytes(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}" if value >= 0.05 else "< 0.1"


class ImageSink:
    """Where a page's pictures go: inline (``data:`` URIs) or files in a folder beside it."""

    def __init__(self, folder: Path | None = None, prefix: str = "figures") -> None:
        self.folder = folder
        self.prefix = prefix
        self.written = 0

    def __call__(self, data: bytes | None, kind: str = "png") -> str:
        if not data:
            return ""
        mime = "image/jpeg" if kind == "jpeg" else "image/png"
        if self.folder is None:
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        name = f"{hashlib.sha256(data).hexdigest()[:20]}.{'jpg' if kind == 'jpeg' else 'png'}"
        path = self.folder / name
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.written += 1
        return f"{self.prefix}/{name}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("srbench.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, signed=_signed, secs=_seconds, spread=_spread, delta_class=_delta_class,
                       duration=format_duration, count=_count, mb=_megabytes,
                       curve=lambda runs: jinja2.utils.markupsafe.Markup(curve_svg(runs, width=150)))  # fmt: skip
    return env


def render_pages(
    data: ReportData, *, image_url: Callable[..., str] | None = None, extra: dict | None = None
) -> dict[str, str]:
    """Every page of the report: ``{"index.html": ..., "set5.html": ..., ...}``.

    Parameters
    ----------
    image_url : callable, optional
        ``image_url(bytes, kind)`` -> the URL a picture is shown from; inline by default.
    extra : dict, optional
        More pages to render: file name -> template name (e.g. the reproduce page of a site).
    """
    env = _environment()
    for section in data.sections:
        section.scatter_svg = scatter_svg(section, data.colours)
    sink = image_url or ImageSink()
    context = {
        "data": data, "collapse_over": COLLAPSE_OVER, "colour": lambda m: data.colours.get(m, "#808080"),
        "markup": jinja2.utils.markupsafe.Markup, "image_url": sink,
    }  # fmt: skip
    pages = {"index.html": env.get_template("index.html.j2").render(page=None, **context)}
    dataset_page = env.get_template("dataset.html.j2")
    for page in data.pages:
        pages[page.file] = dataset_page.render(page=page, **context)
    for name, template in (extra or {}).items():
        pages[name] = env.get_template(template).render(page=None, **context)
    return pages


def render_html(data: ReportData, method_order: list[str] | None = None) -> str:
    """The index page alone (what a one-page report is)."""
    return render_pages(data)["index.html"]
