"""The growth snapshot's image and PDF are readable (issue 20 #4): Chinese renders, no glyph is missing.

Three independent checks, so a missing font cannot slip through one blind spot: the font's own character
map covers every character the picture writes; on the JPEG, distinct Chinese characters draw distinct
shapes and none draws the font's "missing glyph" box; in the PDF, every character the picture writes is in
the character map of an embedded CJK font, and matplotlib warned about no missing glyph."""

from __future__ import annotations

import io
import re
import warnings
import zlib
from datetime import date

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image as PILImage

from cards.catalogue import Translator
from cards.snapshot import GoalFigure, SnapshotView, picture, snapshot_card
from cards.snapshot_chart import _text_mask, layout, missing_glyphs, render_jpeg, render_pdf

NAME = "张三丰"
PRIVATE_USE = "\ue000"
"""A code point no font draws: what "missing" looks like in this font."""


def full_view() -> SnapshotView:
    return SnapshotView(
        month="2026-09",
        name=NAME,
        first_day=date(2026, 9, 1),
        last_day=date(2026, 9, 30),
        checkins_due=3,
        checkins_on_time=2,
        evidence=3,
        ratings={"meets": 1, "improve": 1, "unrated": 1},
        actions_done=2,
        actions_overdue=2,
        kudos=2,
        kudos_points=4,
        streak=1,
        goals=(GoalFigure("提升交付质量，减少返工", 50), GoalFigure("完成客户访谈 20 次", 100)),
        goal_progress=70,
        peers={"responsiveness": 4.0, "quality": 3.67, "collaboration": 4.33, "ownership": 3.0},
        self_scores={"responsiveness": 5.0, "quality": 4.0, "collaboration": 4.0, "ownership": 4.0},
        peer_answers=3,
    )


def empty_view() -> SnapshotView:
    return SnapshotView(month="2026-09", name=NAME, first_day=date(2026, 9, 1), last_day=date(2026, 9, 30))


VIEWS = [full_view, empty_view]


def written(locale: str, make: object) -> list[str]:
    assert callable(make)
    return layout(picture(Translator(locale), make())).texts()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("make", VIEWS)
def test_the_font_has_every_character_the_picture_writes(locale: str, make: object) -> None:
    texts = written(locale, make)
    assert any(NAME in t for t in texts)
    assert missing_glyphs(texts) == set()


def test_the_glyph_check_sees_a_missing_character() -> None:
    assert missing_glyphs([f"成长{PRIVATE_USE}"]) == {PRIVATE_USE}


def _ink(mask: PILImage.Image) -> np.ndarray:
    return np.asarray(mask) > 96


def test_chinese_characters_on_the_image_are_real_glyphs_not_boxes() -> None:
    """Each CJK character of the Chinese picture, rasterised exactly as the card draws text: distinct shapes,
    none of them the font's missing-glyph box."""
    chars = sorted({ch for t in written("zh-CN", full_view) for ch in t if "\u4e00" <= ch <= "\u9fff"})
    assert len(chars) > 20
    tofu = _ink(_text_mask(PRIVATE_USE, 40, "la")[0])
    shapes = {ch: _ink(_text_mask(ch, 40, "la")[0]) for ch in chars}
    for ch, shape in shapes.items():
        assert shape.any(), f"{ch} drew nothing"
        assert not (shape.shape == tofu.shape and bool((shape == tofu).all())), f"{ch} is a box"
    seen: dict[bytes, str] = {}
    for ch, shape in shapes.items():
        key = shape.tobytes() + bytes(str(shape.shape), "ascii")
        assert key not in seen, f"{ch} and {seen.get(key)} render identically"
        seen[key] = ch


@pytest.mark.parametrize("make", VIEWS)
def test_the_card_image_is_a_jpeg_with_ink_where_the_text_is(make: object) -> None:
    assert callable(make)
    data = render_jpeg(picture(Translator("zh-CN"), make()))
    with PILImage.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.width == 720
        pixels = np.asarray(img.convert("RGB")).astype(int)
    header = pixels[:100]
    white_text = int(((header > 200).all(axis=2)).sum())
    assert white_text > 500, "the title in the blue band drew no white text"


def _stream(pdf: bytes, ref: bytes) -> bytes:
    found = re.search(rb"\n" + ref + rb" 0 obj\s*<<(.*?)>>\s*stream\r?\n", pdf, re.S)
    assert found is not None
    raw = pdf[found.end() : pdf.index(b"endstream", found.end())]
    return zlib.decompress(raw.rstrip(b"\r\n")) if b"FlateDecode" in found.group(1) else raw


BFRANGE = re.compile(rb"<([0-9a-f]+)>\s*<([0-9a-f]+)>\s*(\[[^\]]*\]|<[0-9a-f]+>)")


def _utf16(token: bytes) -> str:
    return bytes.fromhex(token.decode()).decode("utf-16-be")


def _written_with(pdf: bytes, family: bytes) -> set[str]:
    """The characters the PDF writes in embedded fonts named ``family``: read from each Type0 font's
    ToUnicode map (what a reader extracts as text), for fonts whose embedded file is really that font."""
    out: set[str] = set()
    for font in re.finditer(rb"/Subtype /Type0 /BaseFont /([^\s/]+)(.*?)>>", pdf, re.S):
        if family not in font.group(1):
            continue
        ref = re.search(rb"/ToUnicode (\d+) 0 R", font.group(2))
        assert ref is not None, "a Type0 font without a ToUnicode map: its text cannot be read back"
        cmap = _stream(pdf, ref.group(1))
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
            for lo, hi, dst in re.findall(
                rb"<([0-9a-f]+)>\s*<([0-9a-f]+)>\s*(\[[^\]]*\]|<[0-9a-f]+>)", block
            ):
                if dst.startswith(b"["):
                    out.update(_utf16(t) for t in re.findall(rb"<([0-9a-f]+)>", dst))
                else:
                    first = ord(_utf16(dst[1:-1]))
                    out.update(chr(first + i) for i in range(int(hi, 16) - int(lo, 16) + 1))
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
            out.update(_utf16(dst) for _, dst in re.findall(rb"<([0-9a-f]+)>\s*<([0-9a-f]+)>", block))
    return {ch for text in out for ch in text}


def _embedded_font_names(pdf: bytes) -> set[str]:
    names = set()
    for ref in re.findall(rb"/FontFile2 (\d+) 0 R", pdf):
        names.add(TTFont(io.BytesIO(_stream(pdf, ref)))["name"].getDebugName(4) or "?")
    return names


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("make", VIEWS)
def test_the_pdf_embeds_a_cjk_font_with_every_character(locale: str, make: object) -> None:
    assert callable(make)
    pic = picture(Translator(locale), make())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf = render_pdf(pic)
    assert pdf.startswith(b"%PDF")
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    assert _embedded_font_names(pdf) == {"Noto Sans CJK SC"}
    needed = {ch for t in layout(pic).texts() for ch in t if not ch.isspace()}
    missing = needed - _written_with(pdf, b"NotoSansCJK")
    assert missing == set(), f"not written in the embedded CJK font: {sorted(missing)}"


def test_the_pdf_check_fails_on_a_character_the_font_lacks() -> None:
    """The checks above are not vacuous: a character no font has is warned about and is not written in
    the CJK font."""
    pic = picture(Translator("zh-CN"), full_view())
    broken = pic.__class__(**{**pic.__dict__, "title": f"成长{PRIVATE_USE}"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf = render_pdf(broken)
    assert any("missing from font" in str(w.message) for w in caught)
    written = _written_with(pdf, b"NotoSansCJK")
    assert "成" in written
    assert PRIVATE_USE not in written


def test_the_card_repeats_the_figures_in_text() -> None:
    card = snapshot_card(
        Translator("zh-CN"), full_view(), media_id="a" * 64, pdf_url="https://x/s/t", pdf_hours=72
    )
    text = card.model_dump_json()
    assert "2026年9月成长快照" in card.header.title
    assert "2 / 3" in text and "完成 2" in text and "https://x/s/t" in text
    english = snapshot_card(Translator("en"), full_view(), media_id=None)
    assert "September 2026" in english.header.title
    assert "/snapshot" in english.model_dump_json()
