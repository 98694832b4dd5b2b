"""Charts as inline SVG, drawn on the server: no JavaScript library, no CDN, works offline.

Pure functions from numbers to markup. Every chart is an ``<svg role="img">``
with a ``<title>`` and a ``<desc>`` (screen readers announce them); pages put
the same figures in a table beside it. Colours are the Okabe–Ito palette
(distinguishable with the common colour-vision deficiencies), and lines also
differ by dash pattern, so no series is told apart by colour alone. All text
is escaped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

#: Okabe–Ito colours, darkest first; each has at least 3:1 contrast on white.
PALETTE = ("#0072B2", "#D55E00", "#007A5A", "#B1457F", "#000000", "#8A6100")
DASHES = ("", "7 3", "2 3", "9 3 2 3", "4 4", "1 3")
TEXT = "#1a1a1a"
GRID = "#d0d0d0"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name for the legend and (x, y) points in ascending x.

    ``style`` picks its colour and dash (default: its place in the chart), so a
    series keeps its look in every chart that shows it.
    """

    name: str
    points: Sequence[tuple[float, float]]
    style: int | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: its label, its value and the text shown at its end."""

    label: str
    value: float
    text: str


def _num(value: float) -> str:
    """A coordinate with at most 2 decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 up to at least ``maximum`` (1, 2 or 5 times a power of ten)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    top = math.ceil(maximum / step - 1e-9) * step
    return [i * step for i in range(round(top / step) + 1)]


def time_ticks(start: float, end: float, count: int = 6) -> list[tuple[float, str]]:
    """Ticks for epoch seconds between ``start`` and ``end``, at round times, labelled in UTC."""
    span = max(1.0, end - start)
    step = next((s for s in _TIME_STEPS if span / s <= count), None)
    if step is None:
        step = 86400 * max(1, math.ceil(span / count / 86400))
    first = math.ceil(start / step) * step
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%d %b"
    if span > 86400 and step < 86400:
        fmt = "%d %b %H:%M"
    ticks = []
    tick = first
    while tick <= end + 1e-9:
        ticks.append((float(tick), datetime.fromtimestamp(tick, UTC).strftime(fmt)))
        tick += step
    return ticks


def _header(chart_id: str, width: int, height: int, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'class="chart" {FONT}>',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]


@dataclass(frozen=True, slots=True)
class _Plot:
    """Where a line chart's plot area is and how values map onto it."""

    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_top: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (value - lo) / (hi - lo) * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - value / self.y_top * self.height


def _axes(
    plot: _Plot,
    y_ticks: Sequence[float],
    y_format: Callable[[float], str],
    x_ticks: Sequence[tuple[float, str]],
) -> list[str]:
    """Horizontal grid lines with their values, x ticks within range, the x axis."""
    left, right, bottom = plot.left, plot.left + plot.width, plot.bottom
    out = []
    for tick in y_ticks:
        y = plot.y(tick)
        out.append(
            f'<line x1="{_num(left)}" x2="{_num(right)}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" fill="{TEXT}">'
            f"{escape(y_format(tick))}</text>"
        )
    lo, hi = plot.x_range
    for x, label in x_ticks:
        if lo <= x <= hi:
            out.append(
                f'<line x1="{_num(plot.x(x))}" x2="{_num(plot.x(x))}" y1="{_num(bottom)}" '
                f'y2="{_num(bottom + 5)}" stroke="{TEXT}"/>'
            )
            out.append(
                f'<text x="{_num(plot.x(x))}" y="{_num(bottom + 18)}" text-anchor="middle" '
                f'fill="{TEXT}">{escape(label)}</text>'
            )
    out.append(
        f'<line x1="{_num(left)}" x2="{_num(right)}" y1="{_num(bottom)}" y2="{_num(bottom)}" '
        f'stroke="{TEXT}"/>'
    )
    return out


def _guides(plot: _Plot, guides: Sequence[tuple[float, str]]) -> list[str]:
    """Labelled dashed horizontal reference lines."""
    out = []
    for value, label in guides:
        y = plot.y(value)
        out.append(
            f'<line x1="{_num(plot.left)}" x2="{_num(plot.left + plot.width)}" y1="{_num(y)}" '
            f'y2="{_num(y)}" stroke="{TEXT}" stroke-dasharray="3 5" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{_num(plot.left + 4)}" y="{_num(y - 4)}" fill="{TEXT}">'
            f"{escape(label)}</text>"
        )
    return out


def _line(plot: _Plot, line: Series, color: str, dash_attr: str, step: bool) -> list[str]:
    """One series: a dot for a single point, else a path (a staircase when ``step``)."""
    points = [(plot.x(x), plot.y(y)) for x, y in line.points]
    if len(points) == 1:
        (x, y) = points[0]
        return [f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{color}"/>']
    if not points:
        return []
    path = [f"M{_num(points[0][0])} {_num(points[0][1])}"]
    for (_, y0), (x1, y1) in itertools.pairwise(points):
        if step and y1 != y0:
            path.append(f"H{_num(x1)} V{_num(y1)}")
        else:
            path.append(f"L{_num(x1)} {_num(y1)}")
    return [
        f'<path d="{" ".join(path)}" fill="none" stroke="{color}" '
        f'stroke-width="2.25" stroke-linejoin="round"{dash_attr}>'
        f"<title>{escape(line.name)}</title></path>"
    ]


def line_chart(
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    description: str,
    x_ticks: Sequence[tuple[float, str]] = (),
    x_range: tuple[float, float] | None = None,
    y_max: float | None = None,
    y_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    guides: Sequence[tuple[float, str]] = (),
    step: bool = False,
    width: int = 560,
    height: int = 300,
) -> str:
    """Lines over a shared x axis, y from 0; ``step`` draws a staircase (cumulative counts).

    ``guides`` are labelled horizontal reference lines (e.g. a cohort's 50 %).
    The legend (below the plot, in columns) shows each line's colour and dash.
    """
    left, right, top = 64, 16, 14
    plot_w = width - left - right
    columns = max(1, plot_w // 190)
    legend_rows = math.ceil(len(series) / columns) if series else 0
    plot_h = height - top - (34 + 20 * legend_rows)
    xs = [x for s in series for x, _ in s.points]
    lo, hi = x_range if x_range else ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    peak = max([y for s in series for _, y in s.points] + [g for g, _ in guides] + [0.0])
    ticks = nice_ticks(y_max if y_max is not None else peak)
    plot = _Plot(left, top, plot_w, plot_h, (lo, hi), max(ticks[-1], y_max or 0.0, 1e-9))
    out = _header(chart_id, width, height, title, description)
    out += _axes(plot, ticks, y_format, x_ticks)
    out += _guides(plot, guides)
    for index, line in enumerate(series):
        look = index if line.style is None else line.style
        color, dash = PALETTE[look % len(PALETTE)], DASHES[look % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out += _line(plot, line, color, dash_attr, step)
        col, row = index % columns, index // columns
        lx, ly = left + col * (plot_w / columns), top + plot_h + 36 + row * 20
        out.append(
            f'<line x1="{_num(lx)}" x2="{_num(lx + 26)}" y1="{_num(ly - 4)}" y2="{_num(ly - 4)}" '
            f'stroke="{color}" stroke-width="2.25"{dash_attr}/>'
        )
        out.append(
            f'<text x="{_num(lx + 32)}" y="{_num(ly)}" fill="{TEXT}">{escape(line.name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    title: str,
    description: str,
    maximum: float | None = None,
    width: int = 560,
    label_width: int = 110,
    bar_height: int = 22,
) -> str:
    """Horizontal bars, one per row, scaled to ``maximum`` (default: the largest value)."""
    gap, top = 8, 8
    height = top * 2 + max(1, len(bars)) * (bar_height + gap)
    text_room = 150
    plot_w = width - label_width - text_room
    scale_max = maximum if maximum is not None else max([b.value for b in bars] + [0.0])
    out = _header(chart_id, width, height, title, description)
    if not bars:
        out.append(f'<text x="{label_width}" y="{top + 15}" fill="{TEXT}">No data yet</text>')
    for index, bar in enumerate(bars):
        y = top + index * (bar_height + gap)
        length = 0.0 if scale_max <= 0 else max(0.0, bar.value) / scale_max * plot_w
        color = PALETTE[index % len(PALETTE)]
        out.append(
            f'<text x="{label_width - 8}" y="{_num(y + bar_height * 0.7)}" text-anchor="end" '
            f'fill="{TEXT}">{escape(bar.label)}</text>'
        )
        out.append(
            f'<rect x="{label_width}" y="{y}" width="{_num(length)}" height="{bar_height}" '
            f'fill="{color}"><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>'
        )
        out.append(
            f'<text x="{_num(label_width + length + 6)}" y="{_num(y + bar_height * 0.7)}" '
            f'fill="{TEXT}">{escape(bar.text)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
