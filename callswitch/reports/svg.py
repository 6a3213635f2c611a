"""Small server-side SVG charts for the HTML report: horizontal bars, a funnel and a heat map.

Rendered here (about 150 lines) rather than with a charting library: the report stays one file that
works offline and in a mail client (no JavaScript), needs no new dependency and no vendored asset with
its own licence, and the output is deterministic (testable with string checks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

BAR = "#2f6fb3"
BAR_ALT = "#3c9a5f"
GRID = "#d9dee5"
TEXT = "#1f2933"
MUTED = "#6b7785"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    items: Sequence[tuple[str, float | None, str]],
    *,
    title: str,
    max_value: float | None = None,
    color: str = BAR,
    label_chars: int = 42,
    width: int = 720,
) -> str:
    """Horizontal bars: (label, value, text shown after the bar) per item, top to bottom."""
    row_h, label_w, text_w, top = 26, 7 * min(label_chars, 42) + 10, 190, 30
    plot_w = max(100, width - label_w - text_w)
    values = [v for _, v, _ in items if v is not None]
    top_value = max_value if max_value is not None else max(values, default=0.0)
    height = top + row_h * max(1, len(items)) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<text x="0" y="16" font-size="14" font-weight="bold" fill="{TEXT}">{escape(title)}</text>']
    if not items:
        out.append(f'<text x="0" y="{top + 16}" fill="{MUTED}">no data</text>')
    for i, (label, value, note) in enumerate(items):
        y = top + i * row_h
        bar_w = 0.0 if not value or top_value <= 0 else plot_w * min(value, top_value) / top_value
        out.append(f'<g><title>{escape(label)}: {escape(note)}</title>'
                   f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="{TEXT}">'
                   f"{escape(_short(label, label_chars))}</text>"
                   f'<rect x="{label_w}" y="{y + 4}" width="{plot_w}" height="{row_h - 8}" fill="{GRID}" '
                   'opacity="0.35"/>'
                   f'<rect x="{label_w}" y="{y + 4}" width="{bar_w:.1f}" height="{row_h - 8}" fill="{color}"/>'
                   f'<text x="{label_w + plot_w + 6}" y="{y + 16}" fill="{TEXT}">{escape(note)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def funnel_chart(steps: Sequence[tuple[str, int, float | None]], *, title: str = "Funnel", width: int = 720) -> str:
    """Centred bars, one per step: (step label, requests that reached it, share of all requests)."""
    row_h, top = 34, 30
    height = top + row_h * max(1, len(steps)) + 10
    first = steps[0][1] if steps else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<text x="0" y="16" font-size="14" font-weight="bold" fill="{TEXT}">{escape(title)}</text>']
    plot_w, label_w = width - 260, 150
    for i, (label, n, share) in enumerate(steps):
        y = top + i * row_h
        w = 0.0 if first <= 0 else plot_w * n / first
        x = label_w + (plot_w - w) / 2
        pct = "-" if share is None else f"{share * 100:.1f}%"
        out.append(f'<text x="{label_w - 8}" y="{y + 20}" text-anchor="end" fill="{TEXT}">{escape(label)}</text>'
                   f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{BAR}"/>'
                   f'<text x="{label_w + plot_w + 8}" y="{y + 20}" fill="{TEXT}">{n} ({pct})</text>')
    out.append("</svg>")
    return "".join(out)


def heatmap_chart(
    grid: Mapping[tuple[int, int], int], *, title: str, note: Callable[[int, int, int], str] | None = None
) -> str:
    """Weekday (1 = Monday) x hour (0..23) cells shaded by count; the count is printed in each cell."""
    cell_w, cell_h, left, top = 28, 24, 40, 46
    width, height = left + 24 * cell_w + 10, top + 7 * cell_h + 10
    peak = max(grid.values(), default=0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
           f"<title>{escape(title)}</title>",
           f'<text x="0" y="16" font-size="14" font-weight="bold" fill="{TEXT}">{escape(title)}</text>']
    for h in range(24):
        out.append(f'<text x="{left + h * cell_w + cell_w / 2}" y="{top - 6}" text-anchor="middle" '
                   f'fill="{MUTED}">{h}</text>')
    for d in range(1, 8):
        y = top + (d - 1) * cell_h
        out.append(f'<text x="{left - 6}" y="{y + cell_h / 2 + 4}" text-anchor="end" fill="{TEXT}">'
                   f"{WEEKDAYS[d - 1]}</text>")
        for h in range(24):
            n = grid.get((d, h), 0)
            opacity = 0.0 if peak == 0 else 0.08 + 0.92 * n / peak
            tip = note(d, h, n) if note else f"{WEEKDAYS[d - 1]} {h:02d}:00: {n}"
            fill = "#ffffff" if opacity > 0.55 else TEXT
            out.append(f'<g><title>{escape(tip)}</title>'
                       f'<rect x="{left + h * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                       f'fill="{BAR}" fill-opacity="{opacity:.2f}" stroke="{GRID}" stroke-width="0.5"/>'
                       + (f'<text x="{left + h * cell_w + (cell_w - 2) / 2}" y="{y + cell_h / 2 + 3}" '
                          f'text-anchor="middle" fill="{fill}">{n}</text>' if n else "")
                       + "</g>")
    out.append("</svg>")
    return "".join(out)
