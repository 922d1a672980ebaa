"""The goal tree as a picture for a phone: an outline, one row per objective, coloured by how it is doing.

A node-and-edge diagram of a company's goals is unreadable at 360 points wide, so the tree is drawn as an
indented outline (what a file browser does): each row an objective, its owner, a progress bar in the colour
of its track (green on track, orange at risk, red off track) and its percentage; levels below the ones shown
are folded into a grey row ("+37 人 · 111 个目标"). The caller decides what is shown and folded
(``handlers.goals.tree``); this module lays it out and draws it with Pillow, in the CJK font
``cards.chart_font`` registers (the bundled Noto Sans CJK), as an 8-bit PNG (a fixed palette of its few
colours and their anti-aliasing shades: a third of the bytes of a true-colour PNG).

At ``WIDTH`` pixels the image is shown about 2.2 times smaller on a phone, so no text is smaller than 22 px
(10 points there). Drawing is synchronous and takes a few milliseconds: the handler runs it in a thread.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from cards.snapshot_chart import font_file, missing_glyphs

if TYPE_CHECKING:
    from PIL import Image, ImageDraw
    from PIL.ImageFont import FreeTypeFont, ImageFont

log = logging.getLogger(__name__)

WIDTH = 720
MARGIN = 24
INDENT = 30
ROW = 96
FOLDED = 44
LEGEND = 64
HEAD = 112
TITLE_PX = 30
TEXT_PX = 24
SMALL_PX = 22
BAR_H = 8
MAX_ROWS = 40
"""A taller outline is no longer read on a phone: the caller folds levels to stay under this."""
SHADES = 8
"""Steps from the background to each colour in the palette: enough for the anti-aliased edges of text."""

TRACK_COLOURS = {"on_track": "#2ea043", "at_risk": "#ff8800", "off_track": "#f54a45"}
BLUE = "#3370ff"
DARK = "#1f2329"
GREY = "#646a73"
LINE = "#dee0e3"
TRACK_BG = "#e8eaed"
WHITE = "#ffffff"


@dataclass(frozen=True)
class TreeRow:
    """One row of the outline, every word already in the reader's language."""

    depth: int
    title: str
    detail: str = ""
    """The second line: owner, counts, coverage."""
    percent: int | None = None
    """None: a folded row (no bar)."""
    track: str | None = None
    """``on_track``, ``at_risk`` or ``off_track``."""


@dataclass(frozen=True)
class TreePicture:
    title: str
    subtitle: str
    rows: tuple[TreeRow, ...]
    legend: tuple[str, str, str]
    """The words for on track, at risk, off track."""


_font_lock = threading.Lock()


@lru_cache(maxsize=8)
def _font(size: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    found = font_file()
    with _font_lock:
        if found is None:
            return ImageFont.load_default(size)
        return ImageFont.truetype(found.path, size, index=found.index, layout_engine=ImageFont.Layout.BASIC)


def _width(text: str, size: int) -> float:
    return float(_font(size).getlength(text))


def _clip(text: str, size: int, width: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` pixels (binary search: titles can be long)."""
    if _width(text, size) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(text[:mid] + "…", size) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _row_height(row: TreeRow) -> int:
    return FOLDED if row.percent is None else ROW


def height_of(pic: TreePicture) -> int:
    return HEAD + sum(_row_height(r) for r in pic.rows[:MAX_ROWS]) + LEGEND


def texts_of(pic: TreePicture) -> list[str]:
    """Every word the picture writes (a test proves the font has a glyph for each)."""
    out = [pic.title, pic.subtitle, *pic.legend]
    for row in pic.rows[:MAX_ROWS]:
        out += [row.title, row.detail]
    return [t for t in out if t]


def render_png(pic: TreePicture) -> bytes:
    """The outline as a PNG (synchronous: call it in a worker thread)."""
    from PIL import Image, ImageDraw

    missing = missing_glyphs(texts_of(pic))
    if missing:
        log.warning(
            "okr tree: characters without a glyph in the font", extra={"chars": "".join(sorted(missing))}
        )
    rows = pic.rows[:MAX_ROWS]
    height = height_of(pic)
    img = Image.new("RGB", (WIDTH, height), WHITE)
    draw = ImageDraw.Draw(img)
    inner = WIDTH - 2 * MARGIN
    draw.rectangle((0, 0, WIDTH, HEAD - 16), fill=_rgb(BLUE))
    draw.text((MARGIN, 14), _clip(pic.title, TITLE_PX, inner), font=_font(TITLE_PX), fill=_rgb(WHITE))
    draw.text((MARGIN, 56), _clip(pic.subtitle, SMALL_PX, inner), font=_font(SMALL_PX), fill=_rgb(WHITE))
    y = HEAD
    last_at_depth: dict[int, int] = {}
    for row in rows:
        x = MARGIN + row.depth * INDENT
        if row.depth > 0:
            # the elbow from the parent's column to this row, and the parent's line down to here
            px = MARGIN + (row.depth - 1) * INDENT + 8
            top = last_at_depth.get(row.depth - 1, y)
            draw.line((px, top + 32, px, y + 20), fill=_rgb(LINE), width=2)
            draw.line((px, y + 20, x - 4, y + 20), fill=_rgb(LINE), width=2)
        last_at_depth[row.depth] = y
        for deeper in [d for d in last_at_depth if d > row.depth]:
            del last_at_depth[deeper]
        right = WIDTH - MARGIN
        if row.percent is None:
            draw.text(
                (x, y + 6), _clip(row.title, SMALL_PX, right - x), font=_font(SMALL_PX), fill=_rgb(GREY)
            )
            y += FOLDED
            continue
        colour = TRACK_COLOURS.get(row.track or "", GREY)
        draw.ellipse((x, y + 12, x + 16, y + 28), fill=_rgb(colour))
        percent = f"{row.percent}%"
        pw = _width(percent, TEXT_PX)
        draw.text((right - pw, y + 6), percent, font=_font(TEXT_PX), fill=_rgb(colour))
        title_x = x + 24
        draw.text(
            (title_x, y + 6),
            _clip(row.title, TEXT_PX, right - pw - 12 - title_x),
            font=_font(TEXT_PX),
            fill=_rgb(DARK),
        )
        if row.detail:
            draw.text(
                (title_x, y + 38),
                _clip(row.detail, SMALL_PX, right - title_x),
                font=_font(SMALL_PX),
                fill=_rgb(GREY),
            )
        bar_y = y + ROW - 18
        draw.rounded_rectangle((title_x, bar_y, right, bar_y + BAR_H), BAR_H // 2, fill=_rgb(TRACK_BG))
        filled = title_x + (right - title_x) * max(0, min(row.percent, 100)) / 100
        if row.percent > 0:
            draw.rounded_rectangle((title_x, bar_y, filled, bar_y + BAR_H), BAR_H // 2, fill=_rgb(colour))
        y += ROW
    _legend(draw, pic.legend, y + 14)
    buf = io.BytesIO()
    img.quantize(palette=_palette(), dither=Image.Dither.NONE).save(buf, "PNG")
    return buf.getvalue()


@lru_cache(maxsize=1)
def _palette() -> Image.Image:
    """The picture's few colours, each in ``SHADES`` steps from its background: an 8-bit PNG a third the
    size of a true-colour one, with the text's edges as smooth."""
    from PIL import Image

    pairs = [(DARK, WHITE), (GREY, WHITE), (WHITE, BLUE), (BLUE, WHITE), (LINE, WHITE), (TRACK_BG, WHITE)]
    pairs += [(c, WHITE) for c in TRACK_COLOURS.values()]
    colours: list[int] = []
    for fg, bg in pairs:
        front, back = _rgb(fg), _rgb(bg)
        for k in range(SHADES):
            colours += [round(b + (f - b) * k / (SHADES - 1)) for f, b in zip(front, back, strict=True)]
    palette = Image.new("P", (1, 1))
    palette.putpalette(colours + [0] * (768 - len(colours)))
    return palette


def _legend(draw: ImageDraw.ImageDraw, words: Sequence[str], y: float) -> None:
    x = float(MARGIN)
    for key, word in zip(("on_track", "at_risk", "off_track"), words, strict=False):
        draw.ellipse((x, y + 5, x + 14, y + 19), fill=_rgb(TRACK_COLOURS[key]))
        draw.text((x + 20, y), word, font=_font(SMALL_PX), fill=_rgb(GREY))
        x += 20 + _width(word, SMALL_PX) + 28
