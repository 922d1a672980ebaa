"""Cycle kickoff: preview → confirm → broadcast → acknowledgement, and every way to get it wrong."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from bot.app.kickoff_cli import KickoffFailed, kickoff_from_cli
from bot.app.service import Service
from cards.flow_actions import GoalsEdit, KickoffAck, KickoffCancel, KickoffConfirm, KickoffTeamGoals
from storage.models import AuditLog, Cycle, CycleParticipant, OutboxMessage
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, say, text_of


async def _count(service: Service, model: type) -> int:
    async with service.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def _cycle(service: Service, code: str) -> Cycle:
    async with service.factory() as s:
        cycle = await s.scalar(select(Cycle).where(Cycle.code == code))
        assert cycle is not None
        return cycle


async def _preview(service: Service, recorder: RecordingAdapter, args: str) -> KickoffConfirm:
    await say(service, "hr", f"/kickoff {args}")
    await service.outbox.drain()
    return button(last_to(recorder, "hr"), KickoffConfirm)


async def test_preview_shows_headcount_and_sends_nothing_else(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    preview = last_to(recorder, "hr")
    assert "2026-Q1" in preview.header.title
    values = {kv.label: kv.value for el in preview.elements if el.kind == "fields" for kv in el.items}
    assert values["涉及人数"] == "3"  # manager, emp1, emp2
    assert values["其中管理者"] == "1"
    assert "研发部" in values["范围"]
    assert button(preview, KickoffCancel).cycle_id == confirm.cycle_id
    assert [d.recipient for d in recorder.sent] == ["hr"]
    cycle = await _cycle(service, "2026-Q1")
    assert cycle.status == "draft" and cycle.scope == [org.rnd.id]
    assert (cycle.starts_on, cycle.ends_on) == (date(2026, 1, 1), date(2026, 3, 31))


async def test_confirm_broadcasts_to_scope_with_manager_button(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    recorder.clear()
    answer = await click(service, "hr", confirm, message_ref="preview-1")
    await service.outbox.drain()
    assert answer.toast and "3" in answer.toast

    cycle = await _cycle(service, "2026-Q1")
    assert cycle.status == "active" and cycle.started_by_id == org.hr.id and cycle.started_at is not None
    async with service.factory() as s:
        people = set(
            await s.scalars(select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == cycle.id))
        )
    assert people == {org.manager.id, org.emp1.id, org.emp2.id}

    emp1_card, emp2_card, mgr_card = (
        last_to(recorder, "emp1"),
        last_to(recorder, "emp2"),
        last_to(recorder, "mgr"),
    )
    assert button(emp1_card, KickoffAck).cycle_id == cycle.id
    assert button(emp1_card, GoalsEdit).cycle_id == cycle.id
    assert not any(b.value.startswith("kickoff.team") for b in emp1_card.buttons())
    assert button(mgr_card, KickoffTeamGoals).cycle_id == cycle.id
    assert "Performance cycle" in emp2_card.header.title  # English for the English speaker
    assert "2026-01-01" in text_of(emp1_card)
    assert recorder.to("seller") == [] and recorder.to("smgr") == []

    # one broadcast row per (group, locale): staff zh, staff en, managers zh
    async with service.factory() as s:
        rows = list(
            await s.scalars(select(OutboxMessage).where(OutboxMessage.card_key == f"kickoff:{cycle.id}"))
        )
    assert sorted(sorted(r.recipients) for r in rows) == [["emp1"], ["emp2"], ["mgr"]]

    # the preview card is updated in place: buttons disabled, who/when noted
    updated = last_update(recorder, "hr")
    assert all(b.disabled for b in updated.buttons())
    assert "陈人事" in text_of(updated)


async def test_only_hr_admins_can_kick_off_or_confirm(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    answer = await say(service, "mgr", "/kickoff 2026-Q1")
    assert answer.toast == "只有 HR 管理员可以启动或取消考核周期。"
    assert await _count(service, Cycle) == 0

    confirm = await _preview(service, recorder, "2026-Q1")
    answer = await click(service, "mgr", confirm)
    assert answer.toast_kind == "error" and "HR" in (answer.toast or "")
    assert (await _cycle(service, "2026-Q1")).status == "draft"
    assert await _count(service, CycleParticipant) == 0


async def test_duplicate_kickoff_refused_clearly(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    confirm = await _preview(service, recorder, "2026-Q1")
    await click(service, "hr", confirm)
    participants = await _count(service, CycleParticipant)
    assert participants == len(org.everyone)

    answer = await say(service, "hr", "/kickoff 2026-Q1 销售部")
    assert answer.toast == "周期 2026-Q1 已经启动过（当前状态：active），不能重复启动。"
    assert await _count(service, Cycle) == 1
    assert (await _cycle(service, "2026-Q1")).scope == []

    with pytest.raises(KickoffFailed, match="2026-Q1"):
        await kickoff_from_cli(service, code="2026-Q1", departments=[], hr_user_id="hr")


async def test_double_tap_confirm_changes_nothing(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    await click(service, "hr", confirm)
    outbox_rows = await _count(service, OutboxMessage)
    second = await click(service, "hr", confirm)
    assert second.toast == "这张卡片已经处理过了。"
    assert await _count(service, OutboxMessage) == outbox_rows
    assert await _count(service, CycleParticipant) == 3


async def test_bad_input_is_refused(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    assert "找不到这些部门：市场部" in (
        (await say(service, "hr", "/kickoff 2026-Q1 研发部,市场部")).toast or ""
    )
    assert "不合法" in ((await say(service, "hr", "/kickoff 2026/Q1")).toast or "")
    assert "用法" in ((await say(service, "hr", "/kickoff")).toast or "")
    assert await _count(service, Cycle) == 0


async def test_cancel_preview_and_restart(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    cancel = button(last_to(recorder, "hr"), KickoffCancel)
    assert (await click(service, "mgr", cancel)).toast_kind == "error"
    assert (await _cycle(service, "2026-Q1")).status == "draft"
    await click(service, "hr", cancel)
    assert (await _cycle(service, "2026-Q1")).status == "cancelled"
    assert (await click(service, "hr", confirm)).toast == "这张卡片已经处理过了。"
    assert await _count(service, CycleParticipant) == 0
    # a cancelled code may be previewed and started again
    confirm2 = await _preview(service, recorder, "2026-Q1 销售部")
    assert confirm2.cycle_id == confirm.cycle_id
    await click(service, "hr", confirm2)
    assert (await _cycle(service, "2026-Q1")).status == "active"
    assert await _count(service, CycleParticipant) == 2


async def test_cancel_command(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    await kickoff_from_cli(service, code="2026-Q1", departments=["研发部"], hr_user_id="hr")
    assert (await say(service, "emp1", "/cancelcycle 2026-Q1")).toast_kind == "error"
    assert (await _cycle(service, "2026-Q1")).status == "active"
    await say(service, "hr", "/cancelcycle 2026-Q1")
    assert (await _cycle(service, "2026-Q1")).status == "cancelled"
    assert "无法取消" in ((await say(service, "hr", "/cancelcycle 2026-Q1")).toast or "")
    # started again with another scope: the participants follow the new scope
    confirm = await _preview(service, recorder, "2026-Q1 销售部")
    await click(service, "hr", confirm)
    async with service.factory() as s:
        people = set(await s.scalars(select(CycleParticipant.person_id)))
    assert people == {org.sales_manager.id, org.seller.id}


async def test_acknowledgement_tracked_per_person(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q1", departments=["研发部"], hr_user_id="hr")
    await service.outbox.drain()
    ack = button(last_to(recorder, "emp1"), KickoffAck)

    await click(service, "emp1", ack, message_ref="k-emp1")
    await service.outbox.drain()
    async with service.factory() as s:
        acked = dict(
            (await s.execute(select(CycleParticipant.person_id, CycleParticipant.acknowledged_at))).all()
        )
    assert acked[org.emp1.id] is not None and acked[org.emp2.id] is None and acked[org.manager.id] is None
    card = last_update(recorder, "emp1")
    assert not has_enabled(card, KickoffAck) and has_enabled(card, GoalsEdit)
    assert "张三" in text_of(card)

    assert (await click(service, "emp1", ack)).toast == "这张卡片已经处理过了。"
    assert (await click(service, "seller", ack)).toast == "你不在这个周期的范围内。"
    async with service.factory() as s:
        assert (
            await s.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "cycle.acknowledged")
            )
            == 1
        )


async def test_cli_kickoff_whole_company(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    line = await kickoff_from_cli(service, code="2026-Q2", departments=[], hr_user_id="hr")
    assert line.startswith("周期 2026-Q2 已启动：8 人参与")
    await service.outbox.drain()
    assert {d.recipient for d in recorder.sent} == {p.platform_user_id for p in org.everyone}
    with pytest.raises(KickoffFailed, match="HR"):
        await kickoff_from_cli(service, code="2026-Q3", departments=[], hr_user_id="emp1")
    with pytest.raises(KickoffFailed, match="市场部"):
        await kickoff_from_cli(service, code="2026-Q3", departments=["市场部"], hr_user_id=None)


async def test_team_goals_overview_for_managers_only(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q1", departments=["研发部"], hr_user_id="hr")
    await service.outbox.drain()
    team = button(last_to(recorder, "mgr"), KickoffTeamGoals)
    assert (await click(service, "emp1", team)).toast == "这个周期里没有你的直属下属。"
    await click(service, "mgr", team)
    await service.outbox.drain()
    overview = last_to(recorder, "mgr")
    assert "张三" in text_of(overview) and "李四" in text_of(overview) and "未提交" in text_of(overview)
