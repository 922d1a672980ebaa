"""Cycle kickoff: preview → confirm → broadcast → acknowledgement, and every way to get it wrong."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from bot.app.kickoff_cli import KickoffFailed, kickoff_from_cli
from bot.app.service import Service
from cards.actions import unpack
from cards.flow_actions import GoalsEdit, KickoffAck, KickoffCancel, KickoffConfirm, KickoffTeamGoals
from cards.kickoff import KickoffConfirmOverlap, KickoffStop
from cards.model import Card, Fields
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
    assert values["周期"] == "2026-01-01 至 2026-03-31"
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
    assert (answer.toast or "").startswith("只有 HR 管理员可以启动或取消考核周期。")
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
    assert answer.toast == (
        "周期 2026-Q1 已经启动过（当前进行中），不能重复启动。要开始新周期，请换一个代码，例如下一个季度。"
    )
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
    await kickoff_from_cli(service, code="2026-Q1", departments=["研发部"], hr_user_id="hr", allow_past=True)
    assert (await say(service, "emp1", "/cancelcycle 2026-Q1")).toast_kind == "error"
    assert (await _cycle(service, "2026-Q1")).status == "active"
    # an active cycle has reached people: the command asks first, naming how many
    await say(service, "hr", "/cancelcycle 2026-Q1")
    await service.outbox.drain()
    ask = last_to(recorder, "hr")
    assert "确认取消进行中的周期 2026-Q1" in ask.header.title and "这 3 人已经收到启动通知" in text_of(ask)
    assert (await _cycle(service, "2026-Q1")).status == "active"
    stop = button(ask, KickoffStop)
    assert (await click(service, "mgr", stop)).toast_kind == "error"
    assert (await click(service, "hr", stop)).toast == "周期 2026-Q1 已取消。"
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
    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
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
    line = await kickoff_from_cli(service, code="2026-Q2", departments=[], hr_user_id="hr", allow_past=True)
    assert line.startswith("周期 2026-Q2（2026-04-01 至 2026-06-30）已启动：8 人参与")
    await service.outbox.drain()
    assert {d.recipient for d in recorder.sent} == {p.platform_user_id for p in org.everyone}
    with pytest.raises(KickoffFailed, match="HR"):
        await kickoff_from_cli(service, code="2026-Q3", departments=[], hr_user_id="emp1")
    with pytest.raises(KickoffFailed, match="市场部"):
        await kickoff_from_cli(service, code="2026-Q3", departments=["市场部"], hr_user_id=None)


async def test_team_goals_overview_for_managers_only(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
    await service.outbox.drain()
    team = button(last_to(recorder, "mgr"), KickoffTeamGoals)
    assert (await click(service, "emp1", team)).toast == "这个周期里没有你的直属下属。"
    await click(service, "mgr", team)
    await service.outbox.drain()
    overview = last_to(recorder, "mgr")
    assert "张三" in text_of(overview) and "李四" in text_of(overview) and "未提交" in text_of(overview)


def _fields(card: Card) -> dict[str, str]:
    return {kv.label: kv.value for el in card.elements if isinstance(el, Fields) for kv in el.items}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("2027-Q5", "“2027-Q5”不是有效的周期：季度写作 2026-Q1 至 2026-Q4"),
        ("2026-H3 研发部", "不是有效的周期"),
        ("2026-13", "不是有效的周期"),
        ("onboarding 研发部", "“onboarding”不是季度、半年、月份或年份，无法推算起止日期。请在代码后写明日期"),
        ("onboarding 2027-03-01~2027-01-04", "结束日期 2027-01-04 早于开始日期 2027-03-01"),
        ("onboarding 2027-02-30~2027-03-31", "不是有效的日期范围"),
        ("onboarding 2027-01-04 研发部", "“2027-01-04”不是有效的日期范围"),
        ("onboarding 2027-01-01~2028-06-30", "超过一年"),
        ("2207-Q1", "开始日期 2207-01-01 在一年以后"),
    ],
)
async def test_bad_cycle_name_or_dates_refused_in_chat_and_cli(
    service: Service, org: Org, recorder: RecordingAdapter, args: str, expected: str
) -> None:
    """Issue 15 #5: ``/kickoff 2027-Q5`` used to become an open-ended cycle for everyone."""
    answer = await say(service, "hr", f"/kickoff {args}")
    assert answer.toast_kind == "error" and expected in (answer.toast or "")
    code, _, rest = args.partition(" ")
    dates = rest.split(" ")[0] if rest[:1].isdigit() else None
    with pytest.raises(KickoffFailed, match=expected[:8]):
        await kickoff_from_cli(service, code=code, departments=[], hr_user_id="hr", dates=dates)
    assert await _count(service, Cycle) == 0
    assert await _count(service, CycleParticipant) == 0


async def test_preview_shows_dates_and_headcount_and_warns_on_a_past_period(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await say(service, "hr", "/kickoff 2027q1 研发部")  # typed loosely, stored canonically
    await service.outbox.drain()
    future = last_to(recorder, "hr")
    assert _fields(future)["周期"] == "2027-01-01 至 2027-03-31" and _fields(future)["涉及人数"] == "3"
    assert future.header.colour == "orange" and "已于" not in text_of(future)
    assert "范围内的 3 人会立即收到启动通知" in text_of(future)
    assert (await _cycle(service, "2027-Q1")).ends_on == date(2027, 3, 31)

    # a custom code with its own dates
    await say(service, "hr", "/kickoff onboarding-2027 2027-1-4~2027-03-31 销售部")
    await service.outbox.drain()
    assert _fields(last_to(recorder, "hr"))["周期"] == "2027-01-04 至 2027-03-31"

    # the clock says 2026-11-24: Q1 is over
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    past = last_to(recorder, "hr")
    assert past.header.colour == "red"
    assert "这个周期已于 2026-03-31 结束" in text_of(past)
    # a warning, not a refusal: HR may confirm what they have now seen
    assert (await click(service, "hr", confirm)).toast_kind == "success"

    # the CLI has no preview to warn on: it wants the flag
    with pytest.raises(KickoffFailed, match="--allow-past"):
        await kickoff_from_cli(service, code="2026-Q2", departments=[], hr_user_id="hr")
    async with service.factory() as s:
        assert await s.scalar(select(Cycle).where(Cycle.code == "2026-Q2")) is None


async def test_overlap_with_an_active_cycle_needs_an_explicit_override(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
    await service.outbox.drain()
    recorder.clear()

    # the same people in the same days: no plain "start", a red "start anyway" and the reason
    await say(service, "hr", "/kickoff 2026-12 研发部")
    await service.outbox.drain()
    preview = last_to(recorder, "hr")
    assert preview.header.colour == "red"
    assert "与进行中的周期重叠：** 2026-Q4（2026-10-01 至 2026-12-31，3 人）" in text_of(preview)
    assert "/cancelcycle 2026-Q4" in text_of(preview)
    assert not any(isinstance(unpack(b.value), KickoffConfirm) for b in preview.buttons())
    anyway = button(preview, KickoffConfirmOverlap)

    # other people, or other days: no overlap
    await say(service, "hr", "/kickoff 2026-11 销售部")
    await service.outbox.drain()
    assert "重叠" not in text_of(last_to(recorder, "hr"))
    await say(service, "hr", "/kickoff 2027-01 研发部")
    await service.outbox.drain()
    assert "重叠" not in text_of(last_to(recorder, "hr"))

    # a plain confirm (a preview from before the other cycle started) is stopped, not broadcast
    plain = await click(service, "hr", KickoffConfirm(cycle_id=anyway.cycle_id))
    assert plain.toast_kind == "warning" and "尚未启动" in (plain.toast or "")
    assert (await _cycle(service, "2026-12")).status == "draft"
    await service.outbox.drain()
    assert [d.recipient for d in recorder.sent] == ["hr"] * 3

    # the CLI refuses too, and says which flag overrides
    with pytest.raises(KickoffFailed, match="--allow-overlap"):
        await kickoff_from_cli(service, code="2026-12", departments=["研发部"], hr_user_id="hr")

    assert (await click(service, "hr", anyway)).toast_kind == "success"
    assert (await _cycle(service, "2026-12")).status == "active"
    async with service.factory() as s:
        started = await s.scalar(
            select(AuditLog).where(AuditLog.action == "cycle.active", AuditLog.entity_id == anyway.cycle_id)
        )
    assert started is not None and started.detail["overlap_override"] == ["2026-Q4"]
    assert started.actor_id == org.hr.id and started.detail["from"] == "draft"
    line = await kickoff_from_cli(
        service,
        code="2026-W",
        dates="2026-12-01~2026-12-20",
        departments=["研发部"],
        hr_user_id="hr",
        allow_overlap=True,
    )
    assert "2026-12-01 至 2026-12-20" in line


async def test_cancelcycle_without_a_code_lists_what_can_be_cancelled(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 15 #13: ``/cancelcycle`` alone answered "没有找到周期 —"."""
    answer = await say(service, "hr", "/cancelcycle")
    await service.outbox.drain()
    assert "目前没有可以取消的周期" in text_of(last_to(recorder, "hr")) and answer.toast_kind != "error"
    assert "没有找到周期 2026-Q4，目前也没有可以取消的周期" in (
        (await say(service, "hr", "/cancelcycle 2026-Q4")).toast or ""
    )

    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
    await _preview(service, recorder, "2027-Q1")
    await say(service, "hr", "/cancelcycle")
    await service.outbox.drain()
    listing = text_of(last_to(recorder, "hr"))
    assert "用法：/cancelcycle 周期代码" in listing
    assert "**2027-Q1** · 待确认 · 2027-01-01 至 2027-03-31" in listing
    assert "**2026-Q4** · 进行中 · 2026-10-01 至 2026-12-31 · 3 人" in listing
    wrong = await say(service, "hr", "/cancelcycle 2026-Q5")
    assert wrong.toast == "没有找到周期 2026-Q5。可以取消的周期：2027-Q1、2026-Q4。"
    # a draft has reached nobody: cancelled at once, however the code is typed
    assert (await say(service, "hr", "/cancelcycle 2027q1")).toast == "周期 2027-Q1 已取消。"
    assert (await _cycle(service, "2027-Q1")).status == "cancelled"
    again = await say(service, "hr", "/cancelcycle 2027-Q1")
    assert again.toast == (
        "周期 2027-Q1 当前已取消，无法取消。只有待确认或进行中的周期可以取消，发送 /cancelcycle 查看。"
    )


async def test_every_kickoff_and_cancel_move_is_audited_with_who(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Issue 20 #1: each state change is one ``cycle.<state>`` row naming the actor, by chat or CLI."""
    confirm = await _preview(service, recorder, "2026-Q1 研发部")
    await click(service, "hr", KickoffCancel(cycle_id=confirm.cycle_id))
    confirm = await _preview(service, recorder, "2026-Q1 研发部")  # cancelled → draft again
    await click(service, "hr", confirm)
    await say(service, "hr", "/cancelcycle 2026-Q1")
    await service.outbox.drain()
    await click(service, "hr", button(last_to(recorder, "hr"), KickoffStop))
    await kickoff_from_cli(service, code="2026-Q2", departments=["研发部"], hr_user_id="hr", allow_past=True)
    async with service.factory() as s:
        rows = list(await s.scalars(select(AuditLog).where(AuditLog.entity == "cycle").order_by(AuditLog.id)))
    moves = [
        (r.action, r.detail.get("code"), r.detail.get("from"), r.detail.get("via"), r.actor_id)
        for r in rows
        if r.action != "cycle.previewed"
    ]
    hr = org.hr.id
    assert moves == [
        ("cycle.draft", "2026-Q1", None, "chat", hr),
        ("cycle.cancelled", "2026-Q1", "draft", "chat", hr),
        ("cycle.draft", "2026-Q1", "cancelled", "chat", hr),
        ("cycle.active", "2026-Q1", "draft", "chat", hr),
        ("cycle.cancelled", "2026-Q1", "active", "chat", hr),
        ("cycle.draft", "2026-Q2", None, "cli", hr),
        ("cycle.active", "2026-Q2", "draft", "cli", hr),
    ]
