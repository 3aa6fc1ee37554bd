"""Charts drawn on the server as inline SVG (no script, readable by screen readers).

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words
what it shows; the pages put the same numbers in a table beside it. Colours come from a
colour-blind-safe palette, and every series is also told apart by its label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

PALETTE = ("#3366cc", "#d55e00", "#009e73", "#cc79a7", "#7a5af8", "#8c6d1f", "#0072b2")
"""Series colours (the Okabe-Ito hues, darkened for contrast on white)."""

WIDTH = 640


def colour(index: int) -> str:
    """The colour of the ``index``-th series."""
    return PALETTE[index % len(PALETTE)]


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2g}"


def _svg(height: int, title: str, desc: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>{body}</svg>")


def units_over_time(points: Sequence[tuple[datetime, Mapping[str, int]]],
                    groups: Sequence[str]) -> Markup:
    """Units per group (y) at each results run (x), oldest first; one line per group."""
    height, left, right, top, bottom = 240, 64, 16, 12, 36
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    top_value = _nice_ceiling(max((max(p.values(), default=0) for _, p in points), default=0))
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        if len(points) == 1:
            return left + plot_w / 2
        return left + plot_w * (moment - first).total_seconds() / span

    def y(value: float) -> float:
        return top + plot_h * (1 - value / top_value)

    parts = []
    for step in range(5):
        value = top_value * step / 4
        parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}"/><text class="tick" x="{left - 6}" '
                     f'y="{y(value) + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    for moment, anchor in ((first, "start"), (last, "end")):
        parts.append(f'<text class="tick" x="{x(moment):.1f}" y="{height - 12}" '
                     f'text-anchor="{anchor if len(points) > 1 else "middle"}">'
                     f'{moment:%Y-%m-%d %H:%M} UTC</text>')
        if len(points) == 1:
            break
    for index, group in enumerate(groups):
        coords = [(x(moment), y(counts.get(group, 0))) for moment, counts in points]
        line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline fill="none" stroke="{colour(index)}" stroke-width="2.5" '
                     f'points="{line}"/>')
        parts.extend(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour(index)}"/>'
                     for cx, cy in coords[-1:])
    latest = ", ".join(f"{g} {points[-1][1].get(g, 0):,}" for g in groups)
    desc = (f"{len(points)} results runs from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} "
            f"UTC; latest units: {latest}.")
    return _svg(height, "Units per group over time", desc, "".join(parts))


@dataclass(frozen=True, slots=True)
class EffectRow:
    """One treatment's effect on one metric: estimate and interval (relative, as fractions)."""

    label: str
    estimate: float
    low: float
    high: float


def effects(rows: Sequence[EffectRow], title: str) -> Markup:
    """One row per treatment: the interval as a bar, the estimate as a dot, the zero line."""
    row_h, top, bottom, label_w, right = 40, 8, 32, 200, 24
    height = top + bottom + row_h * len(rows)
    reach = max((max(abs(r.low), abs(r.high), abs(r.estimate)) for r in rows), default=0.0)
    reach = _nice_ceiling(reach * 1.05) if reach > 0 else 0.01
    plot_w = WIDTH - label_w - right

    def x(value: float) -> float:
        return label_w + plot_w * (value + reach) / (2 * reach)

    parts = [f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top}" '
             f'y2="{height - bottom + 4}"/>']
    for value, anchor in ((-reach, "start"), (0.0, "middle"), (reach, "end")):
        parts.append(f'<text class="tick" x="{x(value):.1f}" y="{height - 10}" '
                     f'text-anchor="{anchor}">{value:+.0%}</text>' if value else
                     f'<text class="tick" x="{x(0):.1f}" y="{height - 10}" '
                     f'text-anchor="middle">0</text>')
    sentences = []
    for index, row in enumerate(rows):
        middle = top + row_h * index + row_h / 2
        kind = "up" if row.low > 0 else "down" if row.high < 0 else "flat"
        parts.append(
            f'<text class="label" x="{label_w - 10}" y="{middle + 4:.1f}" text-anchor="end">'
            f'{escape(row.label)}</text>'
            f'<line class="interval {kind}" x1="{x(row.low):.1f}" x2="{x(row.high):.1f}" '
            f'y1="{middle:.1f}" y2="{middle:.1f}"/>'
            f'<circle class="estimate {kind}" cx="{x(row.estimate):.1f}" cy="{middle:.1f}" '
            f'r="5"/>')
        sentences.append(f"{row.label}: {row.estimate:+.2%} "
                         f"(interval {row.low:+.2%} to {row.high:+.2%})")
    return _svg(height, title, "; ".join(sentences) + ".", "".join(parts))
