"""Threshold alerts: crossing and not crossing, the people behind the number, who gets them, and the weekly
throttle (a second alert the same week is suppressed, the next week's is sent).

Week 2026-W47 (Nov 16-22) is checked over the last 14 days: Nov 9-22 (Shanghai).
研发部: check-ins 11-19 张三 submitted, 李四 missed → 1/2 = 50% (target 90%);
        A1 张三 deadline 11-10 with photo, A2 李四 deadline 11-12 without → evidence 1/2 = 50% (< 85%);
        A4 张三 created 11-16 00:00, first response 11-20 00:00 → 96 h (> 48 h).
销售部: 周销售 11-20 submitted → 1/1; nothing crosses.
Week 2026-W48 (window Nov 16-29): the check-ins of 11-19 again 1/2; A1/A2 fall outside; A4 still 96 h.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.app.service import Service
from cards.model import Card, Markdown
from handlers.insights.alerts import check_thresholds
from storage.models import ActionItem, CheckIn, Evidence, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import run_job


def utc(mo: int, d: int, h: int = 8) -> datetime:
    return datetime(2026, mo, d, h, tzinfo=UTC)


async def seed(service: Service, org: Org) -> None:
    async with service.factory() as s, s.begin():
        for person, status in ((org.emp1, "submitted"), (org.emp2, "missed"), (org.seller, "submitted")):
            due = utc(11, 19 if person is not org.seller else 20)
            s.add(CheckIn(person_id=person.id, period=due.date().isoformat(), status=status, due_at=due))
        a1 = ActionItem(
            owner_id=org.emp1.id,
            source="manual",
            deliverable="A1",
            deadline=date(2026, 11, 10),
            evidence_required=True,
            created_at=utc(11, 1),
        )
        a2 = ActionItem(
            owner_id=org.emp2.id,
            source="manual",
            deliverable="A2",
            deadline=date(2026, 11, 12),
            evidence_required=True,
            created_at=utc(11, 1),
        )
        a4 = ActionItem(
            owner_id=org.emp1.id,
            source="manual",
            deliverable="A4",
            deadline=date(2026, 12, 20),
            created_at=utc(11, 16, 0),
            first_response_at=utc(11, 20, 0),
        )
        s.add_all([a1, a2, a4])
        await s.flush()
        s.add(
            Evidence(
                person_id=org.emp1.id,
                action_item_id=a1.id,
                file_path="x",
                sha256="a" * 64,
                size=1,
                mime="image/png",
                received_at=utc(11, 9),
            )
        )


def body(card: Card) -> str:
    return "\n".join(el.text for el in card.elements if isinstance(el, Markdown))


async def alerts(service: Service, who: Person, week: str) -> int:
    return await run_job(service, who, lambda ctx: check_thresholds(ctx, week=week))


async def test_crossed_figures_name_threshold_value_and_people(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    assert await alerts(service, org.manager, "2026-W47") == 1
    assert await alerts(service, org.sales_manager, "2026-W47") == 0  # 销售部 is fine
    assert await alerts(service, org.emp1, "2026-W47") == 0  # heads and HRBPs only
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    assert card.header.title == "指标预警：研发部"
    assert card.header.subtitle == "统计区间 2026-11-09 至 2026-11-22"
    assert body(card).splitlines() == [
        "**证据完整率** 为 50%，低于阈值 85%",
        "缺少照片证据的有 1 人：李四",
        "**平均响应时长** 为 96.0 小时，高于阈值 48.0 小时",
        "首次响应超过阈值的有 1 人：张三",
        "**签到完成率** 为 50%，低于阈值 90%",
        "未完成签到的有 1 人：李四",
    ]
    assert recorder.to("smgr") == [] and recorder.to("emp1") == []


async def test_figures_on_the_right_side_of_their_threshold_send_nothing(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    cfg = service.settings.thresholds.model_copy(
        update={"evidence_completeness": 0.5, "response_hours": 96.0, "checkin_completion": 0.5}
    )
    service.dispatcher.settings = service.settings.model_copy(update={"thresholds": cfg})
    assert await alerts(service, org.manager, "2026-W47") == 0  # 50% is not below 50%; 96 h not above 96 h
    await service.outbox.drain()
    assert recorder.to("mgr") == []


async def test_one_alert_per_department_and_figure_a_week(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed(service, org)
    assert await alerts(service, org.hrbp, "2026-W47") == 1  # the HRBP hears about 研发部 too
    assert await alerts(service, org.hrbp, "2026-W47") == 0  # the same week again: suppressed
    assert await alerts(service, org.manager, "2026-W47") == 1  # each reader once
    assert await alerts(service, org.hrbp, "2026-W48") == 1  # next week: sent again
    await service.outbox.drain()
    first, second = recorder.to("hrbp")
    assert "证据完整率" in body(first)
    assert body(second).splitlines()[0] == "**平均响应时长** 为 96.0 小时，高于阈值 48.0 小时"
    assert "证据完整率" not in body(second)  # no photo-required items fell due in W48's window
