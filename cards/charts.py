"""The digest's trend chart: a small PNG rendered with matplotlib's Agg backend.

matplotlib is CPU-bound and blocking, so ``trend_chart_png`` renders in a worker thread. It uses the
object-oriented API (a private ``Figure`` with its own Agg canvas, never ``pyplot``), which keeps renders in
different threads from sharing global state. The chart carries no words, only dates and percentages: a
server without CJK fonts would otherwise draw empty boxes for Chinese labels; the card's legend line
names the series in the reader's language instead.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH_PX = 800
HEIGHT_PX = 360
DPI = 100
SERIES_COLOURS = ("#3370ff", "#ff8800")
"""Blue, orange: the card's legend refers to the series by these colours."""


@dataclass(frozen=True)
class Series:
    values: Sequence[float | None]
    """One value per day, 0..1, None where there was nothing to measure (drawn as a gap)."""


def render_trend_png(
    days: Sequence[date], series: Sequence[Series], *, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX
) -> bytes:
    """Synchronous render; call ``trend_chart_png`` from async code."""
    # Imported here: matplotlib costs ~45 MB, paid only by a process that draws a chart.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(len(days)))
    for colour, s in zip(SERIES_COLOURS, series, strict=False):
        ys = [float("nan") if v is None else v * 100 for v in s.values]
        ax.plot(xs, ys, color=colour, marker="o", markersize=3, linewidth=2)
    ax.set_ylim(0, 105)
    ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    step = max(1, len(days) // 6)
    ticks = xs[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([days[i].strftime("%m-%d") for i in ticks])
    if xs:
        ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.grid(True, axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


async def trend_chart_png(
    days: Sequence[date], series: Sequence[Series], *, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX
) -> bytes:
    return await asyncio.to_thread(
        render_trend_png, list(days), list(series), width_px=width_px, height_px=height_px
    )
