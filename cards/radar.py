"""The feedback radar: self vs peers vs manager on the peer-feedback dimensions, as a square PNG.

Rendered with matplotlib's object-oriented API on a private Agg canvas (never ``pyplot``), in a worker
thread, like ``cards.charts``. Axes are numbered, not named: a server without CJK fonts would draw boxes for
Chinese labels, so the card lists "1 = 响应速度 …" and names the colours in the reader's language.
Cards stay clear of storage: this module only returns PNG bytes; the peer-feedback flow stores them in the
content-addressed media store, so the card carries only its sha256.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Sequence

SIZE_PX = 480
DPI = 100
SCALE_MAX = 5
RADAR_COLOURS = ("#3370ff", "#ff8800", "#2ea043")
"""Self blue, peers orange, manager green: the card's legend names the series by these colours."""


def render_radar_png(
    dimensions: int, series: Sequence[Sequence[float | None] | None], *, size_px: int = SIZE_PX
) -> bytes:
    """Synchronous render of up to three series over ``dimensions`` axes (1..5); None series are skipped,
    None values are drawn at the centre. Call ``radar_png`` from async code."""
    # Imported here: matplotlib costs ~45 MB, paid only by a process that draws a chart.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.projections.polar import PolarAxes

    if dimensions < 3:
        raise ValueError("a radar needs at least three dimensions")
    fig = Figure(figsize=(size_px / DPI, size_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1, projection="polar")
    assert isinstance(ax, PolarAxes)
    angles = [2 * math.pi * i / dimensions for i in range(dimensions)]
    closed = [*angles, angles[0]]
    for colour, values in zip(RADAR_COLOURS, series, strict=False):
        if values is None:
            continue
        ys = [0.0 if v is None else float(v) for v in values]
        ys.append(ys[0])
        ax.plot(closed, ys, color=colour, linewidth=2)
        ax.fill(closed, ys, color=colour, alpha=0.15)
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_xticks(angles)
    ax.set_xticklabels([str(i + 1) for i in range(dimensions)])
    ax.set_ylim(0, SCALE_MAX)
    ax.set_yticks(range(1, SCALE_MAX + 1))
    ax.set_yticklabels([str(i) for i in range(1, SCALE_MAX + 1)], fontsize=7)
    ax.grid(True, alpha=0.4)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.9, bottom=0.1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


async def radar_png(
    dimensions: int, series: Sequence[Sequence[float | None] | None], *, size_px: int = SIZE_PX
) -> bytes:
    return await asyncio.to_thread(
        render_radar_png, dimensions, [list(s) if s is not None else None for s in series], size_px=size_px
    )
