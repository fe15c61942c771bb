"""Inline SVG plots (no plotting library, no network): speed-quality scatters, training curves."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from srbench.report.data import Section

__all__ = ["PALETTE", "curve_svg", "method_colour", "scatter_svg"]

#: Twenty colours that stay apart from each other on a light and on a dark page (after Sasha
#: Trubetskoy's list of 20 distinct colours, with the palest ones deepened so that no point
#: disappears into either background); every point also gets a thin outline.
PALETTE = [
    "#808080", "#9a6324", "#808000", "#469990", "#1fb8d9", "#8fb92f", "#3cb44b", "#4363d8",
    "#e6194b", "#f58231", "#911eb4", "#f032e6", "#d4b000", "#2f3c9e", "#a0302a", "#ef8fb0",
    "#a58be0", "#5fd0a0", "#c08a5a", "#000000",
]  # fmt: skip

#: Built-in methods keep these colours on every page of every report (the papers' order).
CANONICAL = [
    "bicubic", "sc", "ksvd", "ne_nnls", "ne_lle", "gr", "anr", "aplus",
    "srcnn", "srcnn_955", "espcn", "fsrcnn",
]  # fmt: skip


def colour_map(methods: list[str]) -> dict[str, str]:
    """One colour per method, fixed for the whole report and distinct for up to 20 methods.

    Built-ins (not their variants) have their own slot of :data:`PALETTE` whatever else is
    shown; every other method (a variant, a plugin, a ``--model`` network) takes the first
    slot no shown method holds, in name order. Past 20 methods colours repeat.
    """
    methods = sorted(dict.fromkeys(methods))
    taken = {m: CANONICAL.index(m) for m in methods if m in CANONICAL}
    free = [i for i in range(len(CANONICAL), len(PALETTE))] + [
        i for i in range(len(CANONICAL)) if i not in taken.values()
    ]
    colours = {m: PALETTE[i] for m, i in taken.items()}
    for n, method in enumerate(m for m in methods if m not in taken):
        colours[method] = PALETTE[free[n % len(free)]] if n < len(free) else PALETTE[n % len(PALETTE)]
    return colours


def method_colour(method: str, order: list[str]) -> str:
    """The colour of ``method`` among ``order`` (see :func:`colour_map`)."""
    return colour_map([*order, method])[method]


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def scatter_svg(section: Section, colours: dict[str, str], width: int = 560, height: int = 340) -> str:
    """Seconds (log axis) against mean PSNR, one point per method, Pareto front marked.

    A row measured on only part of the set (``n/N``) is drawn hollow and kept off the front.
    A row whose cells were timed several times carries a horizontal whisker from the mean of
    the fastest calls to the mean of the slowest (:attr:`SummaryRow.spread`).
    Labels never overlap each other or a point: each goes beside its point where there is
    room, else a number goes there and the label is listed under the plot.
    """
    points = [r for r in section.rows if r.psnr is not None and r.seconds is not None and r.seconds > 0]
    if not points:
        return ""
    left, right, top, bottom = 58, 150, 16, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    log_t = [math.log10(r.seconds) for r in points]
    # The whiskers stay inside the plot too.
    log_t += [math.log10(v) for r in points for v in (_spread(r) or ()) if v > 0]
    lo_t, hi_t = math.floor(min(log_t) - 0.15), math.ceil(max(log_t) + 0.15)
    if hi_t - lo_t < 1:
        hi_t = lo_t + 1
    psnrs = [r.psnr for r in points]
    step = _nice_step(max(max(psnrs) - min(psnrs), 0.5))
    lo_p = math.floor((min(psnrs) - 0.2 * step) / step) * step
    hi_p = math.ceil((max(psnrs) + 0.2 * step) / step) * step

    def x(seconds: float) -> float:
        return left + (math.log10(seconds) - lo_t) / (hi_t - lo_t) * plot_w

    def y(psnr: float) -> float:
        return top + (hi_p - psnr) / (hi_p - lo_p) * plot_h

    title = f"{section.dataset} x{section.scale}, protocol {section.protocol}: time vs PSNR"
    parts = [
        f'<title>{escape(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>',
    ]
    for decade in range(lo_t, hi_t + 1):
        for mult in (1, 2, 5):
            value = mult * 10.0**decade
            if not (10.0**lo_t <= value <= 10.0**hi_t):
                continue
            px = x(value)
            major = mult == 1
            parts.append(
                f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h}" '
                f'class="{"grid-major" if major else "grid-minor"}"/>'
            )
            if major or (hi_t - lo_t) <= 2:
                text = f"{value:g}"
                parts.append(f'<text x="{px:.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="middle">{text}</text>')
    value = lo_p
    while value <= hi_p + 1e-9:
        py = y(value)
        parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" class="grid-major"/>')
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" class="tick" text-anchor="end">{value:.{1 if step < 1 else 0}f}</text>')
        value += step
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" class="axis-label" text-anchor="middle">'
        "seconds per image (log scale)</text>"
    )
    parts.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" class="axis-label" '
        'text-anchor="middle">mean PSNR (dB)</text>'
    )
    front = sorted((r for r in points if r.pareto), key=lambda r: r.seconds)
    if len(front) > 1:
        path = " ".join(f"{x(r.seconds):.1f},{y(r.psnr):.1f}" for r in front)
        parts.append(f'<polyline points="{path}" class="pareto"/>')
    placed: list[tuple[float, float, float, float]] = []
    # Labels keep off every point too, not only off each other.
    dots = [(x(r.seconds) - 7, x(r.seconds) + 7, y(r.psnr) - 7, y(r.psnr) + 7) for r in points]
    bounds = (left, top, left + plot_w + right - 4, top + plot_h)
    legend: list[tuple[str, str, str]] = []
    for r in sorted(points, key=lambda r: (-r.psnr, r.label)):
        px, py = x(r.seconds), y(r.psnr)
        colour = colours.get(r.method, PALETTE[0])
        partial = not getattr(r, "complete", True)
        text = r.label + (f" ({r.images}/{r.total})" if partial else "")
        tip = f"{text}: {r.psnr:.2f} dB, {r.seconds:.3g} s"
        spread = _spread(r)
        whisker = ""
        if spread is not None:
            tip += f" ({spread[0]:.3g}–{spread[1]:.3g} s over the repeated calls)"
            x0, x1 = x(max(spread[0], 10.0**lo_t)), x(max(spread[1], 10.0**lo_t))
            whisker = (f'<path d="M{x0:.1f},{py:.1f}H{x1:.1f}M{x0:.1f},{py - 3:.1f}v6M{x1:.1f},{py - 3:.1f}v6" '
                       f'class="whisker" stroke="{colour}"/>')  # fmt: skip
        spot = _label_position(px, py, text, placed, dots, bounds, strict=True)
        if spot is None:  # no room: a number beside the point, the label under the plot
            number = str(len(legend) + 1)
            spot = _label_position(px, py, number, placed, dots, bounds, strict=True)
            legend.append((number if spot else "", colour, tip))
            text = number if spot else ""
        label = ""
        if spot is not None:
            lx, ly = spot
            leader = ""
            if abs(ly - (py + 4)) > 1 or lx < px:
                # From the point to the label's near end (its left end, or its right end when
                # the label sits left of the point).
                end = lx - 2 if lx > px else lx + _label_width(text)
                leader = f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{end:.1f}" y2="{ly - 4:.1f}" class="leader"/>'
            label = f'{leader}<text x="{lx:.1f}" y="{ly:.1f}" class="point-label">{escape(text)}</text>'
        fill = f'fill="none" stroke="{colour}" stroke-width="2.5"' if partial else f'fill="{colour}"'
        parts.append(
            f'<g class="point{" on-front" if r.pareto else ""}{" partial" if partial else ""}">'
            f'<title>{escape(tip)}</title>{whisker}{label}'
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{6 if r.pareto else 5}" {fill}/></g>'
        )
    total_height = height
    for number, colour, tip in legend:
        parts.append(
            f'<g class="legend-row"><circle cx="{left + 5}" cy="{total_height + 2}" r="4" fill="{colour}"/>'
            f'<text x="{left + 14}" y="{total_height + 6}" class="point-label">'
            f"{escape(f'{number}: ' if number else '')}{escape(tip)}</text></g>"
        )
        total_height += 16
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_height}" width="{width}" '
        f'height="{total_height}" role="img" aria-label="{escape(title)}" class="scatter">'
    )
    return "\n".join([head, *parts, "</svg>"])


def _spread(row: Any) -> tuple[float, float] | None:
    """A row's (fastest, slowest) repeated-call means; None where it has none to draw."""
    spread = getattr(row, "spread", None)
    if spread is None or not (spread[0] > 0 and spread[1] > 0):
        return None
    return spread


#: Approximate advance widths at 12 px in a sans-serif face, generous rather than tight: a
#: label measured too short is a label that overlaps its neighbour ("SRCNNANR").
_WIDE = set("MWmw@%")
_NARROW = set("iljI.,:;'|!() ")


def _label_width(text: str, size: float = 12.0) -> float:
    width = 0.0
    for char in text:
        if char in _WIDE:
            width += 11.0
        elif char in _NARROW:
            width += 4.0
        elif char.isupper():
            width += 8.6
        else:
            width += 7.0
    return width * size / 12.0 + 3


def _label_position(
    px: float, py: float, text: str, placed: list[tuple[float, float, float, float]],
    dots: list[tuple[float, float, float, float]], bounds: tuple[float, float, float, float],
    *, strict: bool = False,
) -> tuple[float, float] | None:
    """Put a label beside its point where it overlaps no other label and no point.

    Right of the point first, nudged up or down a line at a time; then left of it. With
    ``strict`` None when there is no such place; otherwise the label goes right of the
    point regardless.
    """
    width, height = _label_width(text), 14.0
    obstacles = placed + dots
    for step in range(17):
        dy = (step + 1) // 2 * 13.0 * (1 if step % 2 else -1)
        for side in (1, -1):
            lx = px + 9 if side > 0 else px - 9 - width
            ly = py + 4 + dy
            box = (lx, lx + width, ly - height + 3, ly + 4)
            inside = bounds[0] <= box[0] and box[1] <= bounds[2] and bounds[1] <= box[2] and box[3] <= bounds[3] + 20
            clash = any(
                box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in obstacles
            )
            if inside and not clash:
                placed.append(box)
                return lx, ly
    if strict:
        return None
    placed.append((px + 9, px + 9 + width, py - 9, py + 7))
    return px + 9, py + 4


def curve_svg(
    runs: list[list[float]], *, width: int = 200, height: int = 42, window_db: float = 1.0,
    max_points: int = 120,
) -> str:
    """A sparkline of held-out PSNR per epoch across a chain of training runs.

    Each run gets an equal share of the width (runs range from ten CPU epochs to a thousand
    GPU ones, so neither epochs nor seconds make a readable common axis) and a faint line
    marks where one run hands over to the next. The vertical axis spans the best value and
    at most ``window_db`` below it, so the first epochs of a seeded run, far below, do not
    flatten the part that matters; lower points sit on the bottom edge.
    """
    runs = [run for run in runs if run]
    if not runs:
        return ""
    values = [v for run in runs for v in run]
    hi = max(values)
    lo = max(min(values), hi - window_db)
    if hi - lo < 0.05:
        lo = hi - 0.05
    left, right, top, bottom = 36, 4, 4, 4
    plot_w, plot_h = width - left - right, height - top - bottom
    share = plot_w / len(runs)

    def y(value: float) -> float:
        return top + (hi - max(value, lo)) / (hi - lo) * plot_h

    title = (
        f"held-out PSNR per epoch over {len(runs)} run{'s' if len(runs) > 1 else ''}: "
        f"first {runs[0][0]:.3f} dB, last {runs[-1][-1]:.3f} dB, best {hi:.3f} dB"
    )
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}" class="curve">'
        ),
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>',
        f'<text x="{left - 3}" y="{top + 8}" class="curve-tick" text-anchor="end">{hi:.2f}</text>',
        f'<text x="{left - 3}" y="{top + plot_h}" class="curve-tick" text-anchor="end">{lo:.2f}</text>',
    ]
    for index, run in enumerate(runs):
        x0 = left + index * share
        if index:
            parts.append(f'<line x1="{x0:.1f}" y1="{top}" x2="{x0:.1f}" y2="{top + plot_h}" class="run-edge"/>')
        # Evenly spaced epochs, always keeping the last (what was shipped or handed on).
        count = min(len(run), max_points)
        picks = sorted({round(i * (len(run) - 1) / max(count - 1, 1)) for i in range(count)})
        span = max(len(run) - 1, 1)
        points = " ".join(
            f"{x0 + 1 + (share - 2) * (i / span if len(run) > 1 else 1):.1f},{y(run[i]):.1f}" for i in picks
        )
        parts.append(f'<polyline points="{points}" class="curve-line"/>')
    parts.append(f'<circle cx="{left + plot_w - 1:.1f}" cy="{y(runs[-1][-1]):.1f}" r="2.2" class="curve-end"/>')
    parts.append("</svg>")
    return "\n".join(parts)
