"""Server-rendered SVG bar charts, readable without colour and without JavaScript.

One series per chart, drawn in the text colour (`currentColor`), every bar labelled by text
and carrying a `<title>`; the chart is an image with a name (`role="img"`, `aria-label`) and
the page prints the same numbers as a table, so nothing depends on seeing the bars.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH = 720
BAR_GAP = 0.2


def column_chart(label: str, points: list[tuple[str, int]], *, height: int = 220) -> Markup:
    """Vertical bars over time; the axis names the first, middle and last period."""
    top = max((value for _, value in points), default=0) or 1
    left, plot_h = 48, height - 48
    slot = (WIDTH - left - 8) / max(len(points), 1)
    parts = [_open(label, WIDTH, height)]
    for fraction in (0.0, 0.5, 1.0):  # gridlines with their values
        y = 12 + plot_h * (1 - fraction)
        parts.append(f'<line x1="{left}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="currentColor" stroke-opacity="0.25" stroke-dasharray="3 3"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="12" fill="currentColor">{round(top * fraction)}</text>')
    for index, (name, value) in enumerate(points):
        bar_h = plot_h * value / top
        x = left + index * slot + slot * BAR_GAP / 2
        y = 12 + plot_h - bar_h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot * (1 - BAR_GAP), 1):.1f}" '
                     f'height="{bar_h:.1f}" fill="currentColor">'
                     f'<title>{escape(name)}: {value}</title></rect>')
    for index in sorted({0, len(points) // 2, len(points) - 1}):
        if 0 <= index < len(points):
            x = left + (index + 0.5) * slot
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" '
                         f'font-size="12" fill="currentColor">{escape(points[index][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(label: str, points: list[tuple[str, int]]) -> Markup:
    """Horizontal bars, each with its name on the left and its number at its end."""
    row, left = 26, 200
    height = row * max(len(points), 1) + 8
    top = max((value for _, value in points), default=0) or 1
    span = WIDTH - left - 64
    parts = [_open(label, WIDTH, height)]
    for index, (name, value) in enumerate(points):
        y = 4 + index * row
        width = span * value / top
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="13" '
                     f'fill="currentColor">{escape(_short(name))}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{max(width, 1):.1f}" '
                     f'height="{row - 10}" fill="currentColor">'
                     f'<title>{escape(name)}: {value}</title></rect>')
        parts.append(f'<text x="{left + width + 6:.1f}" y="{y + 16}" font-size="13" '
                     f'fill="currentColor">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(label: str, width: int, height: int) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">')


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
