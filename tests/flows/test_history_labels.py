"""``/history`` names each record's status in its own words (issue 15 #12): an overdue action item is not
"待填写", one waiting for sign-off is not "已完成"."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.app.service import Service
from storage.models import CheckIn
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import last_to, say, text_of
from tests.support.flows2 import add_item

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai.


async def test_history_labels_check_ins_and_action_items_in_their_own_words(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async with service.factory() as s, s.begin():
        for period, status in (("2026-11-20", "open"), ("2026-11-06", "acknowledged")):
            due = datetime.fromisoformat(period).replace(hour=8, tzinfo=UTC)
            s.add(CheckIn(person_id=org.emp1.id, period=period, status=status, due_at=due, progress={}))
    await add_item(service, org.emp1, deadline=date(2026, 11, 20), deliverable="逾期的周报", status="open")
    await add_item(service, org.emp1, deadline=date(2026, 11, 30), deliverable="进行中的方案", status="open")
    await add_item(service, org.emp1, deadline=date(2026, 11, 21), deliverable="等验收的报告", status="done")
    await add_item(
        service, org.emp1, deadline=date(2026, 11, 19), deliverable="退回的清单", status="returned"
    )
    await add_item(
        service, org.emp1, deadline=date(2026, 11, 18), deliverable="验收的总结", status="accepted"
    )

    await say(service, "emp1", "/history")
    await service.outbox.drain()
    card = text_of(last_to(recorder, "emp1"))
    assert "2026-11-20 · 待填写" in card  # an open check-in does wait for the person
    assert "2026-11-06 · 经理已阅" in card
    assert "逾期的周报 · 2026-11-20 · 已逾期 4 天" in card
    assert "进行中的方案 · 2026-11-30 · 进行中" in card
    assert "等验收的报告 · 2026-11-21 · 已完成，待验收" in card
    assert "退回的清单 · 2026-11-19 · 已逾期 5 天" in card  # returned and past its deadline: overdue
    assert "验收的总结 · 2026-11-18 · 已验收" in card

    await say(service, "mgr", "/history @张三")
    await service.outbox.drain()
    assert "已逾期 4 天" in text_of(last_to(recorder, "mgr"))
