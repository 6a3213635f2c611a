"""The HTML report's charts, drawn with matplotlib as inline SVG: bar panels, the funnel and the heat map.

matplotlib is imported on the first chart drawn, not when this module is, so ``callswitch serve`` and the
daemon's memory pay for it only once somebody asks for a report. Each function returns one ``<svg>``
element ready to be put into an HTML page:

* text stays text (``svg.fonttype: none``): titles, labels and figures can be searched, copied and read
  by a screen reader, and the page needs no font file;
* no JavaScript, no raster image, no external reference (the only links are ``#id`` references inside
  the same ``<svg>``);
* deterministic: no date or creator in the metadata, a fixed ``svg.hashsalt``, the fonts matplotlib
  ships for the layout; every ``id`` is prefixed with the chart's key so several charts can share a page.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BLUE = "#2f6fb3"
LIGHT_BLUE = "#9cc0e6"
GREEN = "#3c9a5f"
TEXT = "#1f2933"
MUTED = "#6b7785"
GRID = "#d9dee5"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WIDTH = 11.0  # inches: 792 pt = 1056 CSS px, the width of the report's column

# rcParams for every chart (matplotlib keeps them global: drawing is serialised under _LOCK). Keys typed Any:
# matplotlib's stubs want a Literal of every rcParam name.
_STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "callswitch",  # clip path and marker ids from a hash of their content, not a random one
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: the same layout on every machine
    "font.size": 10,
    "text.parse_math": False,  # labels are data: a page address with two "$" is not a formula
    "text.color": TEXT,
    "axes.labelcolor": TEXT,
    "axes.edgecolor": GRID,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": MUTED,
    "ytick.labelcolor": TEXT,
    "legend.frameon": False,
    "figure.facecolor": "white",
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_LOCK = threading.Lock()
_PREFIX_RE = re.compile(r'(\bid="|href="#|clip-path="url\(#)')


@dataclass(frozen=True)
class Series:
    """One set of bars in a panel: a value per row (None: nothing to show) and the text after each bar."""

    name: str
    values: Sequence[float | None]
    texts: Sequence[str]
    color: str = BLUE


@dataclass(frozen=True)
class Panel:
    """One axes of a bar chart; the rows (labels) are shared by every panel of the chart."""

    title: str
    xlabel: str
    series: Sequence[Series]
    percent: bool = False  # values are shares 0..1, drawn on a 0..100 % axis


def _render(key: str, size: tuple[float, float], draw: Callable[[Figure], None]) -> str:
    """Draw one figure and return it as an ``<svg>`` element whose ids all start with ``key-``.

    ``draw`` places the axes itself (fixed margins in inches): matplotlib's constrained layout would fit
    them for us but doubles the drawing time.
    """
    import matplotlib
    from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, no global figures

    with _LOCK, matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=size)
        draw(fig)
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata=_METADATA)
    text = out.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and DOCTYPE: not allowed inside HTML
    return _PREFIX_RE.sub(lambda m: f"{m.group(1)}{key}-", text).strip()


def _margins(fig: Figure, left: float, right: float, top: float, bottom: float, gap: float = 0.0,
             panels: int = 1) -> None:
    """Place the axes grid: margins and the gap between panels in inches."""
    width, height = fig.get_size_inches()
    panel = (width - left - right - gap * (panels - 1)) / panels
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, wspace=gap / panel)


def _text_width(text: str, size: float) -> float:
    """How wide matplotlib lays out ``text`` at ``size`` points in the current font, in inches."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return float(width) / 72


def _no_data(ax: Axes) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, "no data", ha="center", va="center", color=MUTED, fontsize=12, transform=ax.transAxes)


def bar_chart(key: str, labels: Sequence[str], panels: Sequence[Panel]) -> str:
    """Horizontal bars, one row per label (top to bottom), one panel per figure side by side.

    A panel with two series draws them as a pair of thin bars per row, with a legend. Long labels should be
    shortened by the caller: the left margin is as wide as the longest label.
    """
    top = 0.4 if any(p.title or len(p.series) > 1 for p in panels) else 0.15  # titles and legends
    bottom = 0.55  # tick labels and the axis label
    height = top + bottom + 0.36 * max(1, len(labels))

    def draw(fig: Figure) -> None:
        label_width = max((_text_width(label, _STYLE["font.size"]) for label in labels), default=0.0)
        _margins(fig, left=label_width + 0.15, right=0.1, top=top, bottom=bottom, gap=0.4, panels=len(panels))
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            if panel.title:
                ax.set_title(panel.title)
            if not labels:
                _no_data(ax)
                continue
            _draw_panel(ax, labels, panel)
        if labels:
            axes[0].set_yticks(range(len(labels)), labels)
            axes[0].invert_yaxis()  # first row at the top (the panels share the y axis)
        for ax in axes:
            ax.tick_params(axis="y", length=0)

    return _render(key, (WIDTH, height), draw)


def _draw_panel(ax: Axes, labels: Sequence[str], panel: Panel) -> None:
    n = len(panel.series)
    thickness = 0.7 / n
    top = 0.0
    for i, s in enumerate(panel.series):
        offsets = [r - 0.35 + thickness * (i + 0.5) for r in range(len(labels))]
        values = [0.0 if v is None else float(v) for v in s.values]
        bars = ax.barh(offsets, values, height=thickness * 0.92, color=s.color, label=s.name)
        ax.bar_label(bars, labels=list(s.texts), padding=3, fontsize=9, color=TEXT)
        top = max(top, *values)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(panel.xlabel, color=MUTED)
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    if panel.percent:
        ax.set_xlim(0, 1.22)  # room for the text after a 100 % bar
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    else:
        ax.set_xlim(0, (top or 1.0) * 1.25)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    if n > 1:  # above the panel, right of its title
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, fontsize=9, ncols=n)


def heatmap(
    key: str, grid: Mapping[tuple[int, int], int], *, xlabel: str = "hour of day", cmap: str = "Blues"
) -> str:
    """Weekday (1 = Monday, top row) x hour (0..23) cells shaded by count, each non-zero count printed.

    The text of the cell weekday ``d``, hour ``h`` is in a group with the id ``{key}-cell-{d}-{h}``.
    """
    import numpy as np

    values = np.zeros((7, 24))
    for (d, h), n in grid.items():
        values[d - 1, h] = n
    peak = float(values.max())

    def draw(fig: Figure) -> None:
        _margins(fig, left=0.5, right=0.1, top=0.1, bottom=0.5)  # the labels are short: weekdays, hours
        ax = fig.subplots()
        ax.pcolormesh(np.ma.masked_equal(values, 0), cmap=cmap, vmin=0, vmax=max(peak, 1.0) * 1.15,
                      edgecolors="white", linewidth=1.5)
        ax.set_facecolor("#f5f7f9")  # hours without requests
        ax.set_xlim(0, 24)
        ax.set_ylim(7, 0)  # Monday at the top
        ax.set_xticks([h + 0.5 for h in range(24)], [str(h) for h in range(24)])
        ax.set_yticks([d + 0.5 for d in range(7)], list(WEEKDAYS))
        ax.tick_params(length=0)
        ax.set_xlabel(xlabel, color=MUTED)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        for (d, h), n in sorted(grid.items()):
            if n:
                dark = n > 0.55 * peak
                ax.text(h + 0.5, d - 0.5, str(n), ha="center", va="center", fontsize=9,
                        color="white" if dark else TEXT, gid=f"cell-{d}-{h}")
        if peak == 0:
            ax.text(12, 3.5, "no data", ha="center", va="center", color=MUTED, fontsize=12)

    return _render(key, (WIDTH, 3.1), draw)
