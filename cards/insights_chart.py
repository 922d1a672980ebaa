"""The department brief's trend chart: the health figures of the last months against their thresholds.

Two panels on one phone-width PNG: the rates (check-in completion, evidence completeness) with their
thresholds as dashed lines of the same colour, and the average response time in hours with its ceiling.
A month without data is a gap, not a zero. Words come from the caller, in the reader's language; the CJK
font is ``cards.chart_font``'s, and matplotlib runs in a worker thread (object API, no ``pyplot``), as in
``cards.charts``.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cards.chart_font import chart_families
from cards.charts import CARD_WIDTH_PT, GREY, MIN_FONT_PT, SERIES_COLOURS, WIDTH_PX

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HEIGHT_PX = 640
RED = "#f54a45"


@dataclass(frozen=True)
class Line:
    values: Sequence[float | None]
    """One value per month (a rate 0..1, or hours), None where there was nothing to measure."""
    label: str
    threshold: float | None = None


@dataclass(frozen=True)
class BriefChart:
    months: Sequence[str]
    """The x labels, oldest first (``06``, ``07``… or ``2026-06``)."""
    rates: Sequence[Line]
    hours: Line
    threshold_label: str
    """The legend word for the dashed lines ("threshold")."""


def has_data(chart: BriefChart) -> bool:
    return any(v is not None for line in (*chart.rates, chart.hours) for v in line.values)


def _font(size: float) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=chart_families(), size=size)


def _style(ax: Any, months: Sequence[str]) -> None:
    ax.set_xticks(list(range(len(months))))
    ax.set_xticklabels(list(months))
    ax.set_xlim(-0.4, len(months) - 0.6)
    ax.grid(True, axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="both", labelsize=MIN_FONT_PT, labelfontfamily=chart_families(), length=3)


def _plot(ax: Any, line: Line, colour: str, scale: float) -> list[Any]:
    xs = list(range(len(line.values)))
    ys = [math.nan if v is None else v * scale for v in line.values]
    (drawn,) = ax.plot(xs, ys, color=colour, marker="o", markersize=4, linewidth=2, label=line.label)
    if line.threshold is not None:
        ax.axhline(line.threshold * scale, color=colour, linestyle="--", linewidth=1.2, alpha=0.8)
    return [drawn]


def brief_figure(chart: BriefChart, *, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> Figure:
    """The chart as a matplotlib ``Figure`` (tests inspect it; ``render_brief_png`` saves it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import PercentFormatter

    width_in = CARD_WIDTH_PT / 72
    fig = Figure(figsize=(width_in, width_in * height_px / width_px), dpi=width_px / width_in)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    handles: list[Any] = []
    for colour, line in zip(SERIES_COLOURS, chart.rates, strict=False):
        handles += _plot(top, line, colour, 100)
    top.set_ylim(0, 105)
    top.set_yticks([0, 50, 100])
    top.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    _style(top, chart.months)
    handles.append(Line2D([], [], color=GREY, linestyle="--", linewidth=1.2, label=chart.threshold_label))
    top.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=len(handles),
        frameon=False,
        prop=_font(MIN_FONT_PT),
        handlelength=1.2,
        borderaxespad=0.2,
    )
    _plot(bottom, chart.hours, RED, 1)
    known = [v for v in chart.hours.values if v is not None]
    ceiling = max([*known, chart.hours.threshold or 0.0, 1.0])
    bottom.set_ylim(0, ceiling * 1.2)
    bottom.set_title(chart.hours.label, loc="left", fontproperties=_font(MIN_FONT_PT), color=GREY)
    _style(bottom, chart.months)
    fig.tight_layout(pad=0.6)
    return fig


def render_brief_png(chart: BriefChart, *, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """Synchronous render; call ``brief_chart_png`` from async code."""
    fig = brief_figure(chart, width_px=width_px, height_px=height_px)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


async def brief_chart_png(chart: BriefChart) -> bytes:
    return await asyncio.to_thread(render_brief_png, chart)
