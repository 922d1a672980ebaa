"""The monthly growth snapshot as a picture: one layout, drawn twice — a JPEG for the card, a PDF to keep.

Why not matplotlib for the card image, as the digest does: the snapshot goes to everyone on the same morning,
and a matplotlib figure costs 50-100 ms to draw and encode, 10,000 people a quarter of an hour of CPU. The
card is boxes, bars, one polygon and text, so ``layout`` computes it once as a list of primitives
(``Scene``) and two small backends draw them: Pillow straight onto a bitmap for the card (a few ms, in a
process pool for a whole wave: ``render_jpeg`` is a plain top-level function of picklable data), and
matplotlib's PDF backend for ``/snapshot`` (vector text, the CJK font embedded as a TrueType subset, so the
PDF is searchable and prints sharp). JPEG, not PNG: Pillow's PNG filter pass alone costs ~12 ms on this
card; a JPEG at quality 85 encodes in ~1.5 ms (~80 KB) and the text stays clean.

Both backends write in the font ``cards.chart_font`` registers (the bundled Noto Sans CJK, simplified
Chinese face): Pillow opens the same file and face index matplotlib resolved. ``missing_glyphs`` answers
from that face's character map, so a test (and the caller) can prove no word fell back to an empty box.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from cards.chart_font import chart_families

if TYPE_CHECKING:
    from PIL import Image
    from PIL.ImageFont import FreeTypeFont, ImageFont

log = logging.getLogger(__name__)

WIDTH = 720
"""Pixels (and PDF points): the card's width; the height follows the content."""
MARGIN = 28
BLUE = "#3370ff"
ORANGE = "#ff8800"
DARK = "#1f2329"
GREY = "#646a73"
LIGHT = "#f5f6f7"
TRACK = "#e8eaed"
RED = "#f54a45"
GREEN = "#2ea043"
WHITE = "#ffffff"
JPEG_QUALITY = 85
RADAR_SCALE = 5

Anchor = Literal["la", "ra", "ma"]
"""Pillow's anchors: left/right/middle, at the top of the ascender."""


# ------------------------------------------------------------------ what to draw (filled by cards.snapshot)
@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    detail: str = ""
    alert: bool = False
    """The detail line is drawn in red (overdue actions, missed check-ins)."""


@dataclass(frozen=True)
class GoalBar:
    title: str
    progress: int | None


@dataclass(frozen=True)
class RadarPicture:
    heading: str
    labels: tuple[str, ...]
    peers: tuple[float, ...]
    self_scores: tuple[float, ...] | None
    legend: tuple[str, str]
    """Names of the peers' and the self series."""


@dataclass(frozen=True)
class SnapshotPicture:
    """Every word already in the reader's language: this module lays out, it does not translate."""

    title: str
    subtitle: str
    tiles: tuple[Tile, ...]
    goals_heading: str
    goals: tuple[GoalBar, ...]
    no_goals: str
    overall: str
    radar: RadarPicture | None = None
    footer: str = ""


# ------------------------------------------------------------------ the scene
@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: int
    colour: str
    anchor: Anchor = "la"


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    colour: str
    radius: float = 0


@dataclass(frozen=True)
class Shape:
    points: tuple[tuple[float, float], ...]
    outline: str
    fill: str | None = None
    width: int = 2


@dataclass
class Scene:
    width: int
    height: int = 0
    items: list[Text | Box | Shape] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [i.text for i in self.items if isinstance(i, Text)]


# ------------------------------------------------------------------ the font
@dataclass(frozen=True)
class FontFile:
    path: str
    index: int


@lru_cache(maxsize=1)
def font_file() -> FontFile | None:
    """The file and face matplotlib resolved for the charts' CJK family (None: no CJK font here)."""
    from matplotlib import font_manager

    family = chart_families()[0]
    for entry in font_manager.fontManager.ttflist:
        if entry.name == family:
            return FontFile(entry.fname, int(getattr(entry, "index", 0) or 0))
    return None


_font_lock = threading.Lock()


@lru_cache(maxsize=16)
def _pil_font(size: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    found = font_file()
    with _font_lock:
        if found is None:
            return ImageFont.load_default(size)
        return ImageFont.truetype(found.path, size, index=found.index, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=1)
def _cmap() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    found = font_file()
    if found is None:
        return frozenset()
    font = TTFont(found.path, fontNumber=found.index, lazy=True)
    return frozenset(font.getBestCmap() or {})


def missing_glyphs(texts: Sequence[str]) -> set[str]:
    """Characters of ``texts`` the font cannot draw (they would show as empty boxes)."""
    cmap = _cmap()
    return {ch for text in texts for ch in text if not ch.isspace() and ord(ch) not in cmap}


@lru_cache(maxsize=8192)
def text_width(text: str, size: int) -> float:
    return float(_pil_font(size).getlength(text))


def clip_to(text: str, size: int, width: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` pixels at ``size``."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


# ------------------------------------------------------------------ layout
def layout(pic: SnapshotPicture) -> Scene:
    scene = Scene(WIDTH)
    add = scene.items.append
    inner = WIDTH - 2 * MARGIN
    add(Box(0, 0, WIDTH, 108, BLUE))
    add(Text(MARGIN, 22, clip_to(pic.title, 32, inner), 32, WHITE))
    add(Text(MARGIN, 68, clip_to(pic.subtitle, 18, inner), 18, WHITE))
    y = 128.0
    columns = 3
    gap = 12
    tile_w = (inner - gap * (columns - 1)) / columns
    tile_h = 112
    for i, tile in enumerate(pic.tiles):
        col, row = i % columns, i // columns
        x = MARGIN + col * (tile_w + gap)
        top = y + row * (tile_h + gap)
        add(Box(x, top, x + tile_w, top + tile_h, LIGHT, radius=10))
        add(Text(x + 14, top + 12, clip_to(tile.label, 17, tile_w - 28), 17, GREY))
        add(Text(x + 14, top + 40, clip_to(tile.value, 32, tile_w - 28), 32, DARK))
        if tile.detail:
            add(
                Text(x + 14, top + 84, clip_to(tile.detail, 14, tile_w - 28), 14, RED if tile.alert else GREY)
            )
    rows = math.ceil(len(pic.tiles) / columns)
    y += rows * (tile_h + gap) + 12
    add(Text(MARGIN, y, clip_to(pic.goals_heading, 22, inner), 22, DARK))
    add(Text(WIDTH - MARGIN, y + 4, clip_to(pic.overall, 18, inner / 2), 18, BLUE, "ra"))
    y += 40
    if not pic.goals:
        add(Text(MARGIN, y, clip_to(pic.no_goals, 17, inner), 17, GREY))
        y += 34
    for goal in pic.goals:
        percent = "—" if goal.progress is None else f"{goal.progress}%"
        add(Text(MARGIN, y, clip_to(goal.title, 17, inner - 70), 17, DARK))
        add(Text(WIDTH - MARGIN, y, percent, 17, GREY, "ra"))
        y += 28
        add(Box(MARGIN, y, WIDTH - MARGIN, y + 12, TRACK, radius=6))
        if goal.progress:
            add(Box(MARGIN, y, MARGIN + inner * min(goal.progress, 100) / 100, y + 12, BLUE, radius=6))
        y += 26
    if pic.radar is not None:
        y = _radar(scene, pic.radar, y + 10)
    if pic.footer:
        add(Text(MARGIN, y + 6, clip_to(pic.footer, 14, inner), 14, GREY))
        y += 30
    scene.height = int(y + 16)
    return scene


def _radar(scene: Scene, radar: RadarPicture, y: float) -> float:
    add = scene.items.append
    add(Text(MARGIN, y, clip_to(radar.heading, 22, WIDTH - 2 * MARGIN), 22, DARK))
    radius = 120.0
    cx, cy = WIDTH / 2, y + 60 + radius
    n = len(radar.labels)

    def point(i: int, value: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        r = radius * max(0.0, min(value, RADAR_SCALE)) / RADAR_SCALE
        return (cx + r * math.cos(angle), cy + r * math.sin(angle))

    for level in range(1, RADAR_SCALE + 1):
        add(Shape(tuple(point(i, level) for i in range(n)), TRACK, width=1))
    for i, label in enumerate(radar.labels):
        add(Shape((point(i, 0), point(i, RADAR_SCALE)), TRACK, width=1))
        lx, ly = point(i, RADAR_SCALE * 1.18)
        across = math.cos(-math.pi / 2 + 2 * math.pi * i / n)
        anchor: Anchor = "la" if across > 0.1 else "ra" if across < -0.1 else "ma"
        add(Text(lx, ly - 10, clip_to(label, 16, 150), 16, DARK, anchor))
    add(Shape(tuple(point(i, v) for i, v in enumerate(radar.peers)), ORANGE, fill="#ffe7cc", width=3))
    if radar.self_scores is not None:
        add(Shape(tuple(point(i, v) for i, v in enumerate(radar.self_scores)), BLUE, width=3))
    legend_y = cy + radius + 40
    x = float(MARGIN)
    for colour, name in ((ORANGE, radar.legend[0]), (BLUE, radar.legend[1])):
        if colour == BLUE and radar.self_scores is None:
            break
        add(Box(x, legend_y + 4, x + 16, legend_y + 20, colour, radius=3))
        add(Text(x + 24, legend_y, name, 16, DARK))
        x += 24 + text_width(name, 16) + 24
    return legend_y + 36


# ------------------------------------------------------------------ backends
def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@lru_cache(maxsize=4096)
def _text_mask(text: str, size: int, anchor: Anchor) -> tuple[Image.Image, tuple[int, int]]:
    """``text`` drawn once as an alpha mask, and where its corner sits relative to the anchor point.

    Most words on a snapshot are the same for everyone (labels, headings, units, small numbers): a wave of
    10,000 cards rasterises each of them once and pastes it after that."""
    from PIL import Image, ImageDraw

    font = _pil_font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor=anchor)
    return mask, (left, top)


def render_jpeg(pic: SnapshotPicture) -> bytes:
    """The card image (synchronous and picklable: a worker thread or a process pool runs it)."""
    from PIL import Image, ImageDraw

    scene = layout(pic)
    missing = missing_glyphs(scene.texts())
    if missing:
        log.warning(
            "snapshot: characters without a glyph in the font", extra={"chars": "".join(sorted(missing))}
        )
    img = Image.new("RGB", (scene.width, scene.height), WHITE)
    draw = ImageDraw.Draw(img)
    for item in scene.items:
        if isinstance(item, Box):
            box = (item.x0, item.y0, item.x1, item.y1)
            if item.radius:
                draw.rounded_rectangle(box, item.radius, fill=_rgb(item.colour))
            else:
                draw.rectangle(box, fill=_rgb(item.colour))
        elif isinstance(item, Shape):
            points = list(item.points)
            if len(points) > 2:
                draw.polygon(points, fill=_rgb(item.fill) if item.fill else None)
                draw.line([*points, points[0]], fill=_rgb(item.outline), width=item.width, joint="curve")
            else:
                draw.line(points, fill=_rgb(item.outline), width=item.width)
        else:
            mask, (left, top) = _text_mask(item.text, item.size, item.anchor)
            img.paste(_rgb(item.colour), (round(item.x) + left, round(item.y) + top), mask)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=2)
    return buf.getvalue()


_pdf_lock = threading.Lock()
"""``pdf.fonttype`` is a global matplotlib setting: one PDF at a time sets it and saves."""


def render_pdf(pic: SnapshotPicture) -> bytes:
    """The same layout as a one-page PDF with vector text in the embedded CJK font (synchronous)."""
    import matplotlib
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import FancyBboxPatch, Polygon, Rectangle

    scene = layout(pic)
    w, h = scene.width, scene.height
    fig = Figure(figsize=(w / 72, h / 72), dpi=72)
    FigureCanvasPdf(fig)
    families = chart_families()

    def fx(x: float) -> float:
        return x / w

    def fy(y: float) -> float:
        return 1 - y / h

    for item in scene.items:
        artist: Any
        if isinstance(item, Box):
            if item.radius:
                artist = FancyBboxPatch(
                    (fx(item.x0), fy(item.y1)),
                    fx(item.x1 - item.x0),
                    (item.y1 - item.y0) / h,
                    boxstyle=f"round,pad=0,rounding_size={item.radius / w}",
                    facecolor=item.colour,
                    edgecolor="none",
                    transform=fig.transFigure,
                )
            else:
                artist = Rectangle(
                    (fx(item.x0), fy(item.y1)),
                    fx(item.x1 - item.x0),
                    (item.y1 - item.y0) / h,
                    facecolor=item.colour,
                    edgecolor="none",
                    transform=fig.transFigure,
                )
            fig.add_artist(artist)
        elif isinstance(item, Shape):
            artist = Polygon(
                [(fx(x), fy(y)) for x, y in item.points],
                closed=len(item.points) > 2,
                facecolor=item.fill or "none",
                edgecolor=item.outline,
                linewidth=item.width * 0.75,
                transform=fig.transFigure,
            )
            fig.add_artist(artist)
        else:
            fig.text(
                fx(item.x),
                fy(item.y),
                item.text,
                ha={"la": "left", "ra": "right", "ma": "center"}[item.anchor],
                va="top",
                color=item.colour,
                fontproperties=FontProperties(family=families, size=item.size),
            )
    buf = io.BytesIO()
    with _pdf_lock, matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(buf, format="pdf", dpi=72)
    return buf.getvalue()
