"""The key-result parser (issue 17 items 1 and 8): real-looking Chinese and English lines into typed targets,
the lines it must refuse (and why), the line splitter, and ``format_kr`` reading back the same."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from handlers.goals.kr_parse import (
    KrRefusal,
    KrRefused,
    Milestone,
    format_kr,
    parse_kr,
    split_lines,
)
from handlers.goals.progress import KrKind

REF = date(2026, 1, 1)
"""The cycle's first day: year-less dates count from here."""

N, D, DL = KrKind.NUMBER, KrKind.DATE, KrKind.DELIVERABLE

# line → the fields that matter (anything not named keeps the ParsedKr default)
READ: list[tuple[str, dict[str, Any]]] = [
    # numbers: from … to …
    ("NPS 从 32 提高到 40", {"kind": N, "start": 32, "target": 40, "unit": None}),
    ("流失率从 5% 降到 3%", {"kind": N, "start": 5, "target": 3, "unit": "%"}),
    ("转化率由 12% 提升至 18%", {"kind": N, "start": 12, "target": 18, "unit": "%"}),
    ("P1 故障从 4 次降到 1 次", {"kind": N, "start": 4, "target": 1, "unit": "次"}),
    ("P95 延迟从 800ms 降到 200ms", {"kind": N, "start": 800, "target": 200, "unit": "ms"}),
    ("客单价 3,200 → 4,000 元", {"kind": N, "start": 3200, "target": 4000, "unit": "元"}),
    ("华东区收入从 8000 万元提高到 1.2 亿元", {"kind": N, "start": 0.8, "target": 1.2, "unit": "亿元"}),
    ("NPS：32 -> 40", {"kind": N, "start": 32, "target": 40}),
    ("Increase NPS from 32 to 40", {"kind": N, "start": 32, "target": 40}),
    ("Reduce churn from 5% to 3%", {"kind": N, "start": 5, "target": 3, "unit": "%"}),
    ("P95 latency from 800 ms to 200 ms", {"kind": N, "start": 800, "target": 200, "unit": "ms"}),
    # numbers: a level to reach, with where it stands now
    (
        "流失率降到 3%（当前 5%）",
        {"kind": N, "start": 5, "target": 3, "current": 5, "title": "流失率降到 3%"},
    ),
    ("NPS 提高到 40（现 32）", {"kind": N, "start": 32, "target": 40, "current": 32}),
    ("客诉 ≤ 3 起（目前 9 起）", {"kind": N, "start": 9, "target": 3, "unit": "起"}),
    ("首响时长控制在 30 分钟以内，当前 45 分钟", {"kind": N, "start": 45, "target": 30, "unit": "分钟"}),
    ("Reduce churn to 3% (currently 5%)", {"kind": N, "start": 5, "target": 3, "current": 5}),
    # numbers: counts and amounts from zero
    ("客户拜访 ≥ 60 次", {"kind": N, "start": 0, "target": 60, "unit": "次"}),
    ("签约 20 家客户", {"kind": N, "start": 0, "target": 20, "unit": "家"}),
    ("收入 500 万元", {"kind": N, "target": 500, "unit": "万元"}),
    ("测试覆盖率达到 80%", {"kind": N, "target": 80, "unit": "%"}),
    ("至少完成 12 场客户培训", {"kind": N, "target": 12, "unit": "场"}),
    ("新增付费用户 5000 人以上", {"kind": N, "target": 5000, "unit": "人"}),
    ("招聘 3 名后端工程师", {"kind": N, "target": 3, "unit": "名"}),
    ("30 天内签约 20 家客户", {"kind": N, "target": 20, "unit": "家"}),
    ("收入 ≥ 500 万元（当前 120 万元）", {"kind": N, "start": 0, "target": 500, "current": 120}),
    ("Sign 20 new customers", {"kind": N, "target": 20, "unit": "customers"}),
    ("Customer visits >= 60", {"kind": N, "target": 60, "unit": None}),
    ("Revenue $500k", {"kind": N, "target": 500_000, "unit": "$"}),
    ("Hire at least 2 senior engineers", {"kind": N, "target": 2, "unit": "engineers"}),
    ("全角：签约２０家客户", {"kind": N, "target": 20, "unit": "家"}),
    # numbers with a deadline
    ("3 月 31 日前签约 20 家客户", {"kind": N, "target": 20, "deadline": date(2026, 3, 31)}),
    (
        "签约 20 家客户 截止 6/30",
        {"kind": N, "target": 20, "deadline": date(2026, 6, 30), "title": "签约 20 家客户"},
    ),
    (
        "12 月 20 日前把支付回调失败率从 0.8% 降到 0.1%",
        {"kind": N, "start": 0.8, "target": 0.1, "unit": "%", "deadline": date(2026, 12, 20)},
    ),
    ("Q3 结束前 NPS 从 32 提高到 40", {"kind": N, "start": 32, "target": 40, "deadline": date(2026, 9, 30)}),
    ("Sign 20 customers by June 30", {"kind": N, "target": 20, "deadline": date(2026, 6, 30)}),
    ("Close 8 deals, due 2026-05-15", {"kind": N, "target": 8, "deadline": date(2026, 5, 15)}),
    # weights
    ("签约 20 家客户 [30%]", {"kind": N, "target": 20, "weight": 30, "title": "签约 20 家客户"}),
    ("【权重 40%】NPS 从 32 提高到 40", {"kind": N, "weight": 40, "title": "NPS 从 32 提高到 40"}),
    # dates
    ("3 月 31 日前上线计费系统", {"kind": D, "target_date": date(2026, 3, 31), "what": "上线计费系统"}),
    ("2026-06-30 前完成迁移", {"kind": D, "target_date": date(2026, 6, 30), "what": "完成迁移"}),
    ("3 月底前全量", {"kind": D, "target_date": date(2026, 3, 31), "what": "全量"}),
    ("6/30 前完成等保测评", {"kind": D, "target_date": date(2026, 6, 30), "what": "完成等保测评"}),
    (
        "截止 3 月 31 日完成迁移",
        {"kind": D, "target_date": date(2026, 3, 31), "title": "截止 3 月 31 日完成迁移"},
    ),
    ("年底前通过 ISO 27001 认证", {"kind": D, "target_date": date(2026, 12, 31)}),
    ("Launch billing by March 31", {"kind": D, "target_date": date(2026, 3, 31), "what": "Launch billing"}),
    ("Finish the migration by end of June", {"kind": D, "target_date": date(2026, 6, 30)}),
    (
        "6 月 30 日前上线会员系统（里程碑：设计 4/15, 开发 5/31, 上线）",
        {
            "kind": D,
            "milestones": (
                Milestone("设计", date(2026, 4, 15)),
                Milestone("开发", date(2026, 5, 31)),
                Milestone("上线", None),
            ),
        },
    ),
    # deliverables
    ("交付：迁移方案文档", {"kind": DL, "what": "迁移方案文档", "title": "交付：迁移方案文档"}),
    ("完成《数据安全规范》", {"kind": DL, "what": "《数据安全规范》"}),
    ("发布“新人上手指南”", {"kind": DL}),
    ("Deliver: migration plan", {"kind": DL, "what": "migration plan"}),
    ("交付：续约预警看板 截止 3/31", {"kind": DL, "deadline": date(2026, 3, 31), "what": "续约预警看板"}),
    ("4 月 30 日前交付《迁移方案》", {"kind": DL, "deadline": date(2026, 4, 30)}),
    (
        "交付：迁移方案文档（里程碑：设计, 开发, 上线） [20%]",
        {
            "kind": DL,
            "weight": 20,
            "milestones": (Milestone("设计"), Milestone("开发"), Milestone("上线")),
            "title": "交付：迁移方案文档",
        },
    ),
]

REFUSED: list[tuple[str, KrRefusal]] = [
    ("提升客户满意度", KrRefusal.NO_TARGET),
    ("客户满意度有明显提升", KrRefusal.NO_TARGET),
    ("进一步加强团队沟通协作能力", KrRefusal.NO_TARGET),
    ("通过 ISO 27001 认证", KrRefusal.NO_TARGET),  # a standard's number is not a target
    ("完成 2/3 的迁移", KrRefusal.NO_TARGET),  # a fraction, not a date
    ("上线 v2 版本", KrRefusal.NO_TARGET),
    ("交付：", KrRefusal.NO_TARGET),
    ("Improve customer satisfaction", KrRefusal.NO_TARGET),
    ("流失率降到 3%", KrRefusal.NO_START),
    ("P1 故障 ≤ 1 次", KrRefusal.NO_START),
    ("NPS 提高到 40", KrRefusal.NO_START),
    ("Reduce churn to 3%", KrRefusal.NO_START),
    ("流失率降到 3%（当前 2%）", KrRefusal.DIRECTION),
    ("NPS 从 40 提高到 40", KrRefusal.DIRECTION),
    ("培训 3 场，覆盖 50 人", KrRefusal.TWO_TARGETS),
    ("从 5% 提高到 30 人", KrRefusal.UNITS),
    ("签约 20 家客户，收入 ≥ 500 万元", KrRefusal.TWO_TARGETS),
    ("3 月 1 日到 3 月 31 日完成迁移", KrRefusal.TWO_TARGETS),
    ("2 月 30 日前上线", KrRefusal.BAD_DATE),
    ("13 月 1 日前上线", KrRefusal.BAD_DATE),
    ("签约 20 家 截止 下个月", KrRefusal.BAD_DATE),
    ("2025-06-30 前完成迁移", KrRefusal.PAST_DATE),
    ("签约 20 家 截止 2025-12-31", KrRefusal.PAST_DATE),
    ("签约 20 家 [0%]", KrRefusal.BAD_WEIGHT),
    ("签约 20 家 [30%] [40%]", KrRefusal.BAD_WEIGHT),
    ("签约 20 家（里程碑：一期, 二期）", KrRefusal.MILESTONES_ON_NUMBER),
    ("签约" + "很多客户" * 60, KrRefusal.TOO_LONG),
]


@pytest.mark.parametrize(("line", "expected"), READ, ids=[line for line, _ in READ])
def test_reads(line: str, expected: dict[str, Any]) -> None:
    kr = parse_kr(line, REF)
    for name, value in expected.items():
        assert getattr(kr, name) == value, (name, getattr(kr, name))


@pytest.mark.parametrize(("line", "reason"), REFUSED, ids=[line[:30] for line, _ in REFUSED])
def test_refuses(line: str, reason: KrRefusal) -> None:
    with pytest.raises(KrRefused) as refused:
        parse_kr(line, REF)
    assert refused.value.reason == reason


def test_a_year_less_date_is_the_next_one_and_leap_days_wait() -> None:
    q4 = date(2026, 10, 1)
    assert parse_kr("1 月 15 日前完成年度盘点", q4).target_date == date(2027, 1, 15)
    assert parse_kr("12 月 15 日前完成年度盘点", q4).target_date == date(2026, 12, 15)
    assert parse_kr("2 月 29 日前上线", q4).target_date == date(2028, 2, 29)
    assert parse_kr("Q1 末完成迁移", q4).target_date == date(2027, 3, 31)


@pytest.mark.parametrize("line", [line for line, _ in READ])
def test_format_reads_back_the_same(line: str) -> None:
    kr = parse_kr(line, REF)
    again = parse_kr(format_kr(kr), REF)
    for name in (
        "kind",
        "unit",
        "start",
        "target",
        "target_date",
        "deadline",
        "milestones",
        "weight",
        "title",
    ):
        assert getattr(again, name) == getattr(kr, name), (name, format_kr(kr))


def test_split_lines_takes_lines_semicolons_and_bullets() -> None:
    text = (
        "1. NPS 从 32 提高到 40\n2、签约 20 家客户；- 交付：迁移方案\n\n  KR4: 3 月 31 日前上线\n"
        "1.5 小时内响应 ≥ 90%"
    )
    assert split_lines(text) == [
        "NPS 从 32 提高到 40",
        "签约 20 家客户",
        "交付：迁移方案",
        "3 月 31 日前上线",
        "1.5 小时内响应 ≥ 90%",
    ]
    assert split_lines("") == [] and split_lines(" \n ；") == []
