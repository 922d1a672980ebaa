"""The digest card's wording, from plain figures (issue 15 #15): no-data lines that say so, comparisons
that appear whenever the earlier value exists, risks that agree with the numbers above, nudges that name
the item."""

from __future__ import annotations

from datetime import date

from cards.catalogue import Translator
from cards.digest import DigestView, Figure, Named, Overdue, digest_card, figure_text, nudge_label, risk_lines
from cards.model import Markdown

T = Translator("zh-CN")
EN = Translator("en")
DAY = date(2026, 11, 24)


def view(**kw: object) -> DigestView:
    base: dict[str, object] = {
        "day": DAY,
        "scope_label": "全公司",
        "period_days": 14,
        "figures": [Figure("checkin", 0.9, None, None, done=9, total=10)],
        "overdue_total": 0,
        "overdue": [],
    }
    base.update(kw)
    return DigestView(**base)  # type: ignore[arg-type]


def test_response_time_without_data_says_there_is_none() -> None:
    fig = Figure("response", None, None, None, kind="hours", lower_is_better=True, done=0)
    assert figure_text(T, fig, compare_company=True) == "暂无数据：本期新建的行动项还没有人回应"
    assert figure_text(EN, fig, compare_company=True).startswith("no data:")


def test_short_response_times_read_in_minutes() -> None:
    fig = Figure("response", 0.2, 1.5, None, kind="hours", lower_is_better=True, done=3)
    assert figure_text(T, fig, compare_company=False) == "12 分钟（3 项） · 较上期 ↓1.3 小时"


def test_the_previous_value_shows_even_when_this_period_has_none() -> None:
    fig = Figure("fulfilment", None, 0.5, 0.4, done=0, total=0)
    assert figure_text(T, fig, compare_company=True) == "暂无数据：本期没有到期的行动项 · 上期 50% · 公司 40%"


def test_a_rounding_difference_reads_as_unchanged() -> None:
    fig = Figure("checkin", 0.6667, 0.6665, None, done=2, total=3)
    assert figure_text(T, fig, compare_company=False) == "67%（2/3） · 与上期持平"


def test_risks_list_what_is_shown_above_and_nothing_when_all_is_well() -> None:
    good = view(figures=[Figure("checkin", 0.9, 0.8, None, done=9, total=10)])
    assert risk_lines(T, good) == []
    [risks] = [e for e in digest_card(T, good).elements if isinstance(e, Markdown) and "风险" in e.text]
    assert risks.text.endswith("- 暂无")
    bad = view(
        figures=[Figure("checkin", 0.5, None, None, done=1, total=2), Figure("evidence", None, None, None)],
        overdue_total=7,
        overdue=[Overdue(3, "李四", "客户回访报告", date(2026, 11, 1), 23)],
    )
    assert risk_lines(T, bad) == [
        "- 7 项行动项逾期，最久的已逾期 23 天（见上方列表）",
        "- 签到完成率只有 50%，低于 80%",
    ]


def test_nudge_buttons_name_who_and_what_within_twenty_characters() -> None:
    short = Overdue(3, "李四", "客户回访报告", date(2026, 11, 1), 23)
    assert nudge_label(T, short) == "催办 李四：客户回访报告"
    long = Overdue(
        4, "欧阳娜娜", "整理并提交第四季度华东区全部客户的回访记录和改进清单", date(2026, 11, 1), 2
    )
    label = nudge_label(T, long)
    assert len(label) == 20 and label.startswith("催办 欧阳娜娜：整理并提交") and label.endswith("…")
    card = digest_card(T, view(overdue_total=2, overdue=[short, long]))
    assert [b.label for b in card.buttons()] == [nudge_label(T, short), label]


def test_expired_evidence_counts_only_where_the_team_keeps_non_responders_unnamed() -> None:
    kw: dict[str, object] = {
        "expired_total": 3,
        "expired": [Named("李四", 2), Named("张三", 1)],
        "expired_since": date(2026, 11, 23),
    }
    assert risk_lines(T, view(**kw)) == ["- 照片证据请求过期未交：3 个（11-23 以来）：李四(2)、张三"]
    assert risk_lines(T, view(name_nonresponders=False, **kw)) == [
        "- 照片证据请求过期未交：3 个（11-23 以来）"
    ]


def test_without_a_chart_the_card_says_why() -> None:
    card = digest_card(T, view(trend_days=30))
    assert "近 30 天还没有到期的签到或行动项" in str(card.model_dump())
