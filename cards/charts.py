"""The digest's trend chart: a small PNG, laid out for a phone card, rendered with matplotlib's Agg backend.

People look at a chart rather than read it, on a phone, so the layout is in *card points*: the figure is
``CARD_WIDTH_PT`` wide, the width a phone card shows an image at, and every word on it is at least
``MIN_FONT_PT`` at that width; the pixel size only sets the sharpness. The chart names its series in a
legend, in the reader's language (the caller passes the words), in the CJK font from ``cards.chart_font``.

Sparse data is the normal case (check-ins come every two weeks, action items fall due on a few days): a line
through a handful of days is a few dots on an empty grid, so below ``DENSE_SHARE`` of days with data the
chart draws bars for the days that have data, each with its value; with no data at all it draws the
caller's "not enough data yet" note instead of axes.

matplotlib is CPU-bound and blocking, so ``trend_chart_png`` renders in a worker thread. It uses the
object-oriented API (a private ``Figure`` with its own Agg canvas, never ``pyplot``), which keeps renders in
different threads from sharing global state.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from cards.chart_font import chart_families

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CARD_WIDTH_PT = 320
"""The width a phone card shows a chart at (a 375-pt screen less the card's margins), in points."""
MIN_FONT_PT = 10
"""No word or number on a chart is smaller than this at card width."""
WIDTH_PX = 800
HEIGHT_PX = 500
SERIES_COLOURS = ("#3370ff", "#ff8800")
"""Blue, orange."""
DENSE_SHARE = 0.5
"""Lines when at least this share of days has data; bars for the days with data below it."""
MAX_DATE_LABELS = 7
"""At most this many dates under the axis ("11-12" at 10 pt is a seventh of the plot's width)."""
MAX_VALUE_LABELS = 8
"""Bars carry their value as text while there are at most this many of them."""
ZERO_STUB = 1.5
"""A 0 % bar is drawn this high (in percent) so that a zero is visible, not confused with no data."""
GREY = "#646a73"
NO_LINE_START = frozenset("，。、；：！？）》」』,.;:!?)")
"""Punctuation that stays at the end of a line rather than start the next one."""


@dataclass(frozen=True)
class Series:
    values: Sequence[float | None]
    """One value per day, 0..1, None where there was nothing to measure."""
    label: str = ""
    """The series' name in the legend, in the reader's language."""


def _any_on(series: Sequence[Series], i: int) -> bool:
    return any(i < len(s.values) and s.values[i] is not None for s in series)


def has_data(series: Sequence[Series]) -> bool:
    return any(v is not None for s in series for v in s.values)


def _font(size: float) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=chart_families(), size=size)


def _figure(width_px: int, height_px: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width_in = CARD_WIDTH_PT / 72
    fig = Figure(figsize=(width_in, width_in * height_px / width_px), dpi=width_px / width_in)
    FigureCanvasAgg(fig)
    return fig


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def wrap_note(text: str, columns: int) -> str:
    """Break ``text`` into lines of at most ``columns`` (a CJK character counts two): matplotlib wraps only
    at spaces, and a Chinese sentence has none. Latin words stay whole; any CJK character may start a line."""
    tokens = re.findall(
        r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+|\s+", text
    )
    lines: list[str] = []
    line = ""
    for token in tokens:
        if line and _width(line + token.rstrip()) > columns and token not in NO_LINE_START:
            lines.append(line.rstrip())
            line = "" if token.isspace() else token
        elif not (token.isspace() and not line):
            line += token
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def _empty(fig: Figure, note: str) -> None:
    size = MIN_FONT_PT + 2
    columns = int((CARD_WIDTH_PT - 60) / (size / 2))
    fig.text(
        0.5,
        0.5,
        wrap_note(note, columns),
        ha="center",
        va="center",
        color=GREY,
        linespacing=1.6,
        fontproperties=_font(size),
        bbox={"boxstyle": "round,pad=0.8", "facecolor": "#f5f6f7", "edgecolor": "#dee0e3"},
    )


def _style_axes(ax: Any, top: float) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.set_ylim(0, top)
    ax.set_yticks([0, 50, 100])
    ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.grid(True, axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="both", labelsize=MIN_FONT_PT, labelfontfamily=chart_families(), length=3)


def _lines(ax: Any, days: Sequence[date], series: Sequence[Series]) -> list[Any]:
    xs = list(range(len(days)))
    handles = []
    for colour, s in zip(SERIES_COLOURS, series, strict=False):
        ys = [math.nan if v is None else v * 100 for v in s.values]
        (line,) = ax.plot(xs, ys, color=colour, marker="o", markersize=4, linewidth=2, label=s.label)
        handles.append(line)
    step = max(1, math.ceil(len(days) / (MAX_DATE_LABELS - 1)))
    ticks = xs[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([days[i].strftime("%m-%d") for i in ticks])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    return handles


def _value(s: Series, i: int) -> float | None:
    return s.values[i] if i < len(s.values) else None


def _bars(ax: Any, days: Sequence[date], series: Sequence[Series]) -> list[Any]:
    """Only the days with data, side by side; on a day only one series has data its bar stands centred."""
    shown = [i for i in range(len(days)) if _any_on(series, i)]
    drawn = list(zip(SERIES_COLOURS, series, strict=False))
    width = 0.8 / max(1, len(drawn))
    placed: list[list[tuple[float, float]]] = [[] for _ in drawn]
    for g, i in enumerate(shown):
        present = [(k, v) for k, (_, s) in enumerate(drawn) if (v := _value(s, i)) is not None]
        for slot, (k, value) in enumerate(present):
            placed[k].append((g + width * (slot - (len(present) - 1) / 2), value * 100))
    handles = []
    for (colour, s), bars in zip(drawn, placed, strict=True):
        xs = [x for x, _ in bars]
        heights = [max(v, ZERO_STUB) for _, v in bars]
        handles.append(ax.bar(xs, heights, width=width * 0.92, color=colour, label=s.label))
    every = [bar for bars in placed for bar in bars]
    if len(every) <= MAX_VALUE_LABELS:
        for x, v in every:
            ax.text(
                x,
                max(v, ZERO_STUB) + 2,
                f"{v:.0f}%",
                ha="center",
                va="bottom",
                color=GREY,
                fontproperties=_font(MIN_FONT_PT),
            )
    step = math.ceil(len(shown) / MAX_DATE_LABELS)
    ticks = list(range(len(shown)))[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([days[shown[g]].strftime("%m-%d") for g in ticks])
    ax.set_xlim(-0.6, max(len(shown), 3) - 0.4)
    return handles


def is_dense(days: Sequence[date], series: Sequence[Series]) -> bool:
    """Whether enough days have data for lines to read as a trend."""
    if not days:
        return False
    with_data = sum(1 for i in range(len(days)) if _any_on(series, i))
    return with_data / len(days) >= DENSE_SHARE


def trend_figure(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    empty_note: str = "",
    width_px: int = WIDTH_PX,
    height_px: int = HEIGHT_PX,
) -> Figure:
    """The chart as a matplotlib ``Figure`` (tests inspect it; ``render_trend_png`` saves it)."""
    fig = _figure(width_px, height_px)
    if not has_data(series):
        _empty(fig, empty_note)
        return fig
    ax = fig.add_subplot(1, 1, 1)
    dense = is_dense(days, series)
    handles = _lines(ax, days, series) if dense else _bars(ax, days, series)
    _style_axes(ax, 105 if dense else 118)
    if any(s.label for s in series):
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncol=len(handles),
            frameon=False,
            prop=_font(MIN_FONT_PT),
            handlelength=1.2,
            borderaxespad=0.2,
        )
    fig.tight_layout(pad=0.6)
    return fig


def render_trend_png(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    empty_note: str = "",
    width_px: int = WIDTH_PX,
    height_px: int = HEIGHT_PX,
) -> bytes:
    """Synchronous render; call ``trend_chart_png`` from async code."""
    fig = trend_figure(days, series, empty_note=empty_note, width_px=width_px, height_px=height_px)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


async def trend_chart_png(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    empty_note: str = "",
    width_px: int = WIDTH_PX,
    height_px: int = HEIGHT_PX,
) -> bytes:
    return await asyncio.to_thread(
        render_trend_png,
        list(days),
        list(series),
        empty_note=empty_note,
        width_px=width_px,
        height_px=height_px,
    )
