"""The feedback radar: self vs peers vs manager on the peer-feedback dimensions, as a square PNG.

Rendered with matplotlib's object-oriented API on a private Agg canvas (never ``pyplot``), in a worker
thread, like ``cards.charts``, and laid out like it for a phone card: ``CARD_WIDTH_PT`` square, no word
smaller than ``MIN_FONT_PT`` at that width. Each axis carries its dimension's name and a legend names the
series, in the reader's language and the CJK font from ``cards.chart_font`` (a person should not have to
match "1" to a key below the picture).
Cards stay clear of storage: this module only returns PNG bytes; the peer-feedback flow stores them in the
content-addressed media store, so the card carries only its sha256.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cards.chart_font import chart_families
from cards.charts import CARD_WIDTH_PT, GREY, MIN_FONT_PT

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZE_PX = 800
"""Pixel width and height; the layout itself is ``cards.charts.CARD_WIDTH_PT`` points square."""
SCALE_MAX = 5
LABEL_RADIUS = 1.08
"""Dimension names sit this far out, as a share of the circle's radius."""
RADAR_COLOURS = ("#3370ff", "#ff8800", "#2ea043")
"""Self blue, peers orange, manager green."""


def radar_figure(
    dimensions: int,
    series: Sequence[Sequence[float | None] | None],
    *,
    size_px: int = SIZE_PX,
    labels: Sequence[str] | None = None,
    series_names: Sequence[str] | None = None,
) -> Figure:
    """The radar as a matplotlib ``Figure`` (tests inspect it; ``render_radar_png`` saves it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.projections.polar import PolarAxes

    if dimensions < 3:
        raise ValueError("a radar needs at least three dimensions")
    if labels is not None and len(labels) != dimensions:
        raise ValueError("one label per dimension")
    families = chart_families()
    side_in = CARD_WIDTH_PT / 72
    fig = Figure(figsize=(side_in, side_in), dpi=size_px / side_in)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1, projection="polar")
    assert isinstance(ax, PolarAxes)
    angles = [2 * math.pi * i / dimensions for i in range(dimensions)]
    closed = [*angles, angles[0]]
    handles, names = [], []
    for i, (colour, values) in enumerate(zip(RADAR_COLOURS, series, strict=False)):
        if values is None:
            continue
        ys = [0.0 if v is None else float(v) for v in values]
        ys.append(ys[0])
        (line,) = ax.plot(closed, ys, color=colour, linewidth=2, marker="o", markersize=3)
        ax.fill(closed, ys, color=colour, alpha=0.12)
        handles.append(line)
        names.append(series_names[i] if series_names is not None and i < len(series_names) else "")
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_xticks(angles)
    ax.set_xticklabels([])
    names_on_axes = list(labels) if labels is not None else [str(i + 1) for i in range(dimensions)]
    axis_font = FontProperties(family=families, size=MIN_FONT_PT + 1)
    side_labels = []
    for angle, name in zip(angles, names_on_axes, strict=True):
        across = math.sin(angle)
        text = ax.text(
            angle,
            SCALE_MAX * LABEL_RADIUS,
            name,
            ha="left" if across > 0.1 else "right" if across < -0.1 else "center",
            va="bottom" if math.cos(angle) > 0.1 else "top" if math.cos(angle) < -0.1 else "center",
            fontproperties=axis_font,
        )
        if abs(across) > 0.1:
            side_labels.append(text)
    ax.set_ylim(0, SCALE_MAX)
    ax.set_yticks(range(1, SCALE_MAX + 1))
    ax.set_yticklabels([str(i) for i in range(1, SCALE_MAX + 1)])
    ax.set_rlabel_position(180 / dimensions)
    ax.tick_params(axis="y", labelsize=MIN_FONT_PT, labelcolor=GREY, labelfontfamily=families)
    ax.grid(True, alpha=0.4)
    if any(names):
        fig.legend(
            handles=handles,
            labels=names,
            loc="lower center",
            ncol=len(handles),
            frameon=False,
            prop=FontProperties(family=families, size=MIN_FONT_PT),
            handlelength=1.2,
        )
    side = _side_margin(fig, side_labels)
    fig.subplots_adjust(left=side, right=1 - side, top=0.86, bottom=0.2 if any(names) else 0.14)
    return fig


def _side_margin(fig: Figure, side_labels: Sequence[Any]) -> float:
    """The share of the width to keep free on each side so that the longest name beside the circle fits
    (English dimension names are long; the circle shrinks rather than a name being cut)."""
    widest = max((t.get_window_extent().width for t in side_labels), default=0.0) / fig.bbox.width
    pad = 4 / CARD_WIDTH_PT
    radius = (0.5 - widest - pad) / LABEL_RADIUS
    return min(0.32, max(0.14, 0.5 - radius))


def render_radar_png(
    dimensions: int,
    series: Sequence[Sequence[float | None] | None],
    *,
    size_px: int = SIZE_PX,
    labels: Sequence[str] | None = None,
    series_names: Sequence[str] | None = None,
) -> bytes:
    """Synchronous render of up to three series over ``dimensions`` axes (1..5); None series are skipped,
    None values are drawn at the centre. ``labels`` name the axes, ``series_names`` the legend entries (in
    ``RADAR_COLOURS`` order), both in the reader's language. Call ``radar_png`` from async code."""
    fig = radar_figure(dimensions, series, size_px=size_px, labels=labels, series_names=series_names)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


async def radar_png(
    dimensions: int,
    series: Sequence[Sequence[float | None] | None],
    *,
    size_px: int = SIZE_PX,
    labels: Sequence[str] | None = None,
    series_names: Sequence[str] | None = None,
) -> bytes:
    return await asyncio.to_thread(
        render_radar_png,
        dimensions,
        [list(s) if s is not None else None for s in series],
        size_px=size_px,
        labels=list(labels) if labels is not None else None,
        series_names=list(series_names) if series_names is not None else None,
    )
