"""Charts a person can read on a phone card (issue 15 #15): Chinese without tofu, words >= 10 pt at card
width, a legend, a radar that names its axes, sparse data as bars, no data as a note. Pixel checks, so a
missing font or an empty grid fails here rather than on a leader's phone."""

from __future__ import annotations

import io
import itertools
import logging
import warnings
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image as PILImage

from cards import chart_font
from cards.chart_font import chart_families, has_cjk_font
from cards.charts import (
    CARD_WIDTH_PT,
    HEIGHT_PX,
    MIN_FONT_PT,
    SERIES_COLOURS,
    WIDTH_PX,
    Series,
    render_trend_png,
    trend_figure,
    wrap_note,
)
from cards.radar import RADAR_COLOURS, SIZE_PX, radar_figure, render_radar_png

DAYS = [date(2026, 10, 25) + timedelta(days=i) for i in range(30)]
LABELS = ("签到完成率", "承诺兑现率")
DIMS = ["响应速度", "交付质量", "协作", "担当"]


def sparse() -> list[Series]:
    """What a fresh team's month looks like: a check-in day or two, one deadline."""
    checkin: list[float | None] = [None] * 30
    fulfilment: list[float | None] = [None] * 30
    checkin[18], checkin[25] = 0.5, 1.0
    fulfilment[21] = 0.0
    return [Series(checkin, LABELS[0]), Series(fulfilment, LABELS[1])]


def dense() -> list[Series]:
    return [
        Series([0.5 + 0.4 * ((i % 7) / 7) for i in range(30)], LABELS[0]),
        Series([None if i % 4 == 0 else 0.3 + 0.02 * i for i in range(30)], LABELS[1]),
    ]


def rgb(png: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB")).astype(int)


def pixels_near(image: np.ndarray, colour: str, tolerance: int = 40) -> int:
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image - target).sum(axis=2) < tolerance).sum())


def ink(image: np.ndarray) -> int:
    """Pixels clearly darker than the white background."""
    return int((image.sum(axis=2) < 600).sum())


def texts(fig: Figure) -> Iterator[Text]:
    fig.canvas.draw()
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip():
            yield t


@pytest.fixture
def font_warnings() -> Iterator[list[str]]:
    """Every 'Glyph … missing from font(s)' warning matplotlib gives while a test renders."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out: list[str] = []
        yield out
        out += [str(w.message) for w in caught if "missing from font" in str(w.message)]


# ------------------------------------------------------------------ tofu


def glyph(ch: str) -> np.ndarray:
    """``ch`` rendered alone, large, in the charts' font, cropped to its ink."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.font_manager import FontProperties

    fig = Figure(figsize=(1, 1), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.text(
        0.5,
        0.5,
        ch,
        ha="center",
        va="center",
        fontproperties=FontProperties(family=chart_families(), size=48),
    )
    canvas.draw()
    grey = np.asarray(canvas.buffer_rgba())[:, :, :3].sum(axis=2) < 384
    rows, cols = np.nonzero(grey)
    assert rows.size, f"{ch!r} drew nothing"
    return grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def test_chinese_glyphs_are_real_glyphs_not_boxes(font_warnings: list[str]) -> None:
    """Tofu is one box for every missing character: distinct characters must draw distinct shapes."""
    assert has_cjk_font(), "no CJK font: the noto-cjk-sans-otc dependency is missing"
    chars = "签到完成率承诺兑现"
    shapes = [glyph(ch) for ch in chars]
    for i in range(len(chars)):
        for j in range(i + 1, len(chars)):
            same = shapes[i].shape == shapes[j].shape and bool((shapes[i] == shapes[j]).all())
            assert not same, f"{chars[i]} and {chars[j]} render identically (tofu)"
    assert font_warnings == []


def test_charts_with_chinese_words_miss_no_glyph(font_warnings: list[str]) -> None:
    render_trend_png(DAYS, sparse())
    render_trend_png(DAYS, dense())
    render_trend_png(DAYS, [Series([None] * 30, LABELS[0])], empty_note="近 30 天还没有到期的签到或行动项。")
    render_radar_png(
        4,
        [[4, 3, 5, 2], [2, 2.5, 3, None], [3, 3, 4, 4]],
        labels=DIMS,
        series_names=["自评", "协作者", "经理"],
    )
    assert font_warnings == []


def test_a_missing_cjk_font_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(chart_font, "CJK_FAMILIES", ("No Such CJK Font",))
    monkeypatch.setattr(chart_font, "_resolved", None)
    with caplog.at_level(logging.WARNING, logger="cards.chart_font"):
        assert chart_families() == ["DejaVu Sans"]
        assert chart_families() == ["DejaVu Sans"]
    [record] = [r for r in caplog.records if "no CJK font" in r.getMessage()]
    assert "noto-cjk-sans-otc" in record.getMessage()
    monkeypatch.setattr(chart_font, "_resolved", None)


# ------------------------------------------------------------------ readable at card width


@pytest.mark.parametrize(
    "fig",
    [
        pytest.param(lambda: trend_figure(DAYS, sparse()), id="trend-sparse"),
        pytest.param(lambda: trend_figure(DAYS, dense()), id="trend-dense"),
        pytest.param(
            lambda: trend_figure(DAYS, [Series([None] * 30)], empty_note="暂无数据"), id="trend-empty"
        ),
        pytest.param(
            lambda: radar_figure(
                4, [[4, 3, 5, 2], [2, 3, 3, 4]], labels=DIMS, series_names=["自评", "协作者"]
            ),
            id="radar",
        ),
    ],
)
def test_every_word_is_at_least_10_pt_at_card_width(fig: object) -> None:
    figure = fig()  # type: ignore[operator]
    assert figure.get_figwidth() * 72 == pytest.approx(CARD_WIDTH_PT)
    sizes = {t.get_text(): t.get_fontsize() for t in texts(figure)}
    assert sizes, "the chart has no words at all"
    assert {k: v for k, v in sizes.items() if v < MIN_FONT_PT} == {}


def test_words_stay_inside_the_picture() -> None:
    for figure in (
        trend_figure(DAYS, sparse()),
        radar_figure(
            4, [[4, 3, 5, 2], None], labels=["Responsiveness", "Quality", "Collaboration", "Ownership"]
        ),
    ):
        box = figure.bbox
        for t in texts(figure):
            extent = t.get_window_extent()
            assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, f"{t.get_text()!r} is cut off"


@pytest.mark.parametrize("every", [1, 2, 3])
def test_date_labels_never_overlap(every: int) -> None:
    """Ten scattered days with data (a real digest fixture) once printed "10-2911-01" under the bars."""
    values: list[float | None] = [0.5 if i % 3 == 0 else None for i in range(30)]
    series = [
        Series(values[::every] + [None] * (30 - len(values[::every])), LABELS[0]),
        Series(values, LABELS[1]),
    ]
    fig = trend_figure(DAYS, series)
    fig.canvas.draw()
    extents = sorted(
        (t.get_window_extent().x0, t.get_window_extent().x1)
        for t in fig.axes[0].get_xticklabels()
        if t.get_text()
    )
    assert len(extents) >= 2
    for (_, right), (left, _) in itertools.pairwise(extents):
        assert left > right, "date labels overlap"


def test_the_trend_chart_has_a_legend_naming_its_series() -> None:
    fig = trend_figure(DAYS, dense())
    [ax] = fig.axes
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == list(LABELS)


def test_the_radar_names_its_dimensions_on_the_axes_and_has_a_legend() -> None:
    fig = radar_figure(
        4, [[4, 3, 5, 2], [2, 3, 3, 4], None], labels=DIMS, series_names=["自评", "协作者", "经理"]
    )
    words = {t.get_text() for t in texts(fig)}
    assert set(DIMS) <= words
    assert not {"1", "2", "3", "4"} & {t.get_text() for t in fig.axes[0].get_xticklabels()}
    [legend] = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["自评", "协作者"]  # the None series is not listed
    png = render_radar_png(4, [[4, 3, 5, 2], [2, 3, 3, 4]], labels=DIMS, series_names=["自评", "协作者"])
    with PILImage.open(io.BytesIO(png)) as img:
        assert img.size == (SIZE_PX, SIZE_PX)
    image = rgb(png)
    assert pixels_near(image, RADAR_COLOURS[0]) > 500 and pixels_near(image, RADAR_COLOURS[1]) > 500


# ------------------------------------------------------------------ sparse and empty


def test_sparse_data_is_drawn_as_bars_with_their_values() -> None:
    """Three data points in 30 days were three dots on an empty grid; now they are bars a person can read."""
    fig = trend_figure(DAYS, sparse())
    [ax] = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3
    assert {t.get_text() for t in ax.texts} == {"50%", "100%", "0%"}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["11-12", "11-15", "11-19"]
    image = rgb(render_trend_png(DAYS, sparse()))
    assert image.shape[:2] == (HEIGHT_PX, WIDTH_PX)
    assert pixels_near(image, SERIES_COLOURS[0]) > 3000  # two real bars, not two dots
    assert pixels_near(image, SERIES_COLOURS[1]) > 100  # a 0 % bar is still visible


def test_dense_data_is_drawn_as_lines() -> None:
    fig = trend_figure(DAYS, dense())
    [ax] = fig.axes
    assert len(ax.get_lines()) == 2 and not ax.patches[1:]
    image = rgb(render_trend_png(DAYS, dense()))
    assert pixels_near(image, SERIES_COLOURS[0]) > 2000 and pixels_near(image, SERIES_COLOURS[1]) > 2000


def test_no_data_draws_the_note_not_an_empty_grid() -> None:
    note = "近 30 天还没有到期的签到或行动项，有数据后这里会显示趋势。"
    fig = trend_figure(
        DAYS, [Series([None] * 30, LABELS[0]), Series([None] * 30, LABELS[1])], empty_note=note
    )
    assert fig.axes == []
    assert "".join(t.get_text() for t in texts(fig)).replace("\n", "") == note
    image = rgb(render_trend_png(DAYS, [Series([None] * 30, LABELS[0])], empty_note=note))
    assert ink(image) > 2000  # the words are there


def test_an_old_style_empty_grid_would_fail_the_pixel_check() -> None:
    """The check above is not vacuous: a bare grid (what sparse data used to look like) has next to no ink
    in the series colours."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(CARD_WIDTH_PT / 72, 200 / 72), dpi=WIDTH_PX / (CARD_WIDTH_PT / 72))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(30))
    ys = [np.nan] * 30
    ys[18], ys[25] = 50, 100
    ax.plot(xs, ys, color=SERIES_COLOURS[0], marker="o", markersize=3, linewidth=2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert pixels_near(rgb(buf.getvalue()), SERIES_COLOURS[0]) < 3000


def test_chinese_notes_wrap_without_spaces() -> None:
    assert wrap_note("近三十天还没有数据", 8) == "近三十天\n还没有数\n据"
    assert wrap_note("no data yet at all", 8) == "no data\nyet at\nall"
