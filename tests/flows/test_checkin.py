"""Check-in: open (scheduler contract), submit/edit, chat replies, manager answer, reminder, missed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.app.kickoff_cli import kickoff_from_cli
from bot.app.service import Service
from bot.core.context import Context
from cards.flow_actions import (
    CheckinAck,
    CheckinAnswer,
    CheckinEdit,
    CheckinFollowup,
    CheckinSubmit,
    GoalsSubmit,
)
from cards.snooze import Snooze
from handlers.checkin.checkin import build_checkin_form, close_missed_checkin, open_checkin, remind_checkin
from storage.models import AuditLog, CheckIn, Cycle, Goal, KeyResult, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import button, click, has_enabled, last_to, last_update, run_as, say, text_of

DUE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


async def _open(service: Service, person: Person, period: str = "2026-11-27") -> CheckIn | None:
    async def fn(ctx: Context) -> CheckIn | None:
        return await open_checkin(ctx, period=period, due_at=DUE)

    return await run_as(service, person.id, fn)


async def _get(service: Service, checkin_id: int) -> CheckIn:
    async with service.factory() as s:
        row = await s.get(CheckIn, checkin_id)
        assert row is not None
        return row


async def _goal_ids(service: Service, person: Person) -> list[int]:
    async with service.factory() as s:
        return list(
            await s.scalars(select(Goal.id).where(Goal.person_id == person.id).order_by(Goal.position))
        )


async def test_open_is_idempotent_and_card_has_goals_and_snooze(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await kickoff_from_cli(service, code="2026-Q4", departments=["研发部"], hr_user_id="hr")
    async with service.factory() as s:
        cycle_id = await s.scalar(select(Cycle.id).where(Cycle.code == "2026-Q4"))
    await click(
        service,
        "emp1",
        GoalsSubmit(cycle_id=cycle_id or 0),
        {
            "objective_1": "上线计费",
            "key_results_1": "3 月 31 日前上线计费系统",
            "weight_1": "70",
            "objective_2": "带新人",
            "key_results_2": "新人 2 人通过试用期",
            "weight_2": "30",
        },
    )
    await service.outbox.drain()
    recorder.clear()

    checkin = await _open(service, org.emp1)
    assert checkin is not None and checkin.status == "open" and checkin.cycle_id == cycle_id
    assert await _open(service, org.emp1) is None
    await service.outbox.drain()
    cards = recorder.to("emp1")
    assert len(cards) == 1
    card = cards[0]
    goal_ids = await _goal_ids(service, org.emp1)
    async with service.factory() as s:
        kr_ids = list(
            await s.scalars(
                select(KeyResult.id).where(KeyResult.goal_id.in_(goal_ids)).order_by(KeyResult.goal_id)
            )
        )
    names = [i.name for i in card.forms()[0].inputs]  # one per key result
    assert names == [f"kr_{kr_ids[0]}", f"kr_{kr_ids[1]}", "note", "obstacles", "support"]
    assert button(card, CheckinSubmit).checkin_id == checkin.id
    snooze = button(card, Snooze)
    assert (snooze.flow, snooze.ref_id) == ("checkin", checkin.id)

    # the form builder (chat-collected answers on WeCom/DingTalk) rebuilds the same form server-side
    async def build(ctx: Context) -> list[str]:
        return [i.name for i in (await build_checkin_form(ctx, CheckinSubmit(checkin_id=checkin.id))).inputs]

    assert await run_as(service, org.emp1.id, build) == names


async def test_submit_ack_and_edit_after_answer_refused(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _open(service, org.emp1)
    assert checkin is not None
    submit = CheckinSubmit(checkin_id=checkin.id)

    answer = await click(service, "emp1", submit, {"goal_overall": "150"})
    assert answer.toast_kind == "error" and (await _get(service, checkin.id)).status == "open"
    answer = await click(service, "emp2", submit, {"goal_overall": "50"})
    assert (answer.toast or "").startswith("Only the person it belongs to can fill in or change this.")

    await click(
        service,
        "emp1",
        submit,
        {"goal_overall": "60", "obstacles": "接口文档缺失", "support": "协调后端"},
        message_ref="ci-1",
    )
    await service.outbox.drain()
    row = await _get(service, checkin.id)
    assert (row.status, row.progress, row.obstacles, row.support) == (
        "submitted",
        {"overall": 60},
        "接口文档缺失",
        "协调后端",
    )
    mine = last_update(recorder, "emp1")
    assert has_enabled(mine, CheckinEdit) and "60%" in text_of(mine)
    summary = last_to(recorder, "mgr")
    assert "张三" in summary.header.title and "接口文档缺失" in text_of(summary)
    reply = button(summary, CheckinAnswer)
    ack = {"decision": "acknowledged"}

    # edit while unanswered: allowed, the manager's card is updated in place
    await click(service, "emp1", CheckinEdit(checkin_id=checkin.id), message_ref="ci-1")
    await click(service, "emp1", submit, {"goal_overall": "70", "obstacles": "接口文档已补齐"})
    await service.outbox.drain()
    assert (await _get(service, checkin.id)).progress == {"overall": 70}
    assert "接口文档已补齐" in text_of(last_update(recorder, "mgr"))

    # wrong approver
    for who in ("emp2", "smgr", "emp1"):
        assert (await click(service, who, reply, ack)).toast_kind == "error", who
    assert (await _get(service, checkin.id)).status == "submitted"

    await click(service, "mgr", reply, ack, message_ref="mgr-card")
    await service.outbox.drain()
    row = await _get(service, checkin.id)
    assert (row.status, row.answered_by_id) == (
        "acknowledged",
        org.manager.id,
    ) and row.answered_at is not None
    decided = last_update(recorder, "mgr")
    assert all(b.disabled for b in decided.buttons()) and not decided.forms() and "王经理" in text_of(decided)
    told = last_to(recorder, "emp1")
    assert "王经理 已阅你的进度对话" in text_of(told)
    assert not has_enabled(last_update(recorder, "emp1"), CheckinEdit)

    # double tap, late follow-up, and edits after the answer change nothing
    assert (await click(service, "mgr", reply, ack)).toast == "这张卡片已经处理过了。"
    assert (
        await click(service, "mgr", CheckinFollowup(checkin_id=checkin.id))
    ).toast == "这张卡片已经处理过了。"
    answer = await click(service, "emp1", submit, {"goal_overall": "10"})
    assert answer.toast == "上级已经回复了这次进度对话，不能再修改。"
    assert (await click(service, "emp1", CheckinEdit(checkin_id=checkin.id))).toast_kind == "error"
    row = await _get(service, checkin.id)
    assert (row.status, row.progress) == ("acknowledged", {"overall": 70})


async def test_vague_comment_bounced_once_then_accepted(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    checkin = await _open(service, org.emp2)  # English speaker, Chinese manager
    assert checkin is not None
    await click(service, "emp2", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "40"})
    answer_payload = CheckinAnswer(checkin_id=checkin.id)

    answer = await click(service, "mgr", answer_payload, {"decision": "followup", "comment": "注意细节"})
    await service.outbox.drain()
    assert answer.toast_kind == "warning" and "多久一次" in (answer.toast or "")
    assert (await _get(service, checkin.id)).status == "submitted"
    bounced = last_update(recorder, "mgr")
    assert has_enabled(bounced, CheckinAnswer) and "注意细节" in text_of(bounced)

    concrete = "每周三 10 点一起过一遍上周的测试用例"
    await click(service, "mgr", answer_payload, {"decision": "followup", "comment": concrete})
    await service.outbox.drain()
    row = await _get(service, checkin.id)
    assert (row.status, row.manager_comment) == ("followup", concrete)
    told = last_to(recorder, "emp2")
    assert "follow-up 1:1" in text_of(told) and concrete in text_of(told)
    async with service.factory() as s:
        actions = list(await s.scalars(select(AuditLog.action).where(AuditLog.entity == "checkin_comment")))
    assert actions == ["vague.bounced"]


async def test_second_vague_comment_is_saved_as_written(service: Service, org: Org) -> None:
    checkin = await _open(service, org.emp1)
    assert checkin is not None
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "40"})
    await click(service, "mgr", CheckinAnswer(checkin_id=checkin.id), {"comment": "improve communication"})
    assert (await _get(service, checkin.id)).status == "submitted"
    await click(service, "mgr", CheckinAnswer(checkin_id=checkin.id), {"comment": "improve communication"})
    row = await _get(service, checkin.id)
    assert (row.status, row.manager_comment) == ("acknowledged", "improve communication")


async def test_text_reply_attaches_to_the_right_checkin(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    old = await _open(service, org.emp1, "2026-11-13")
    assert old is not None
    await click(service, "emp1", CheckinSubmit(checkin_id=old.id), {"goal_overall": "20"})
    await click(service, "mgr", CheckinAck(checkin_id=old.id))
    current = await _open(service, org.emp1, "2026-11-27")
    other = await _open(service, org.emp2, "2026-11-27")
    assert current is not None and other is not None
    await service.outbox.drain()
    recorder.clear()

    said = "联调卡在支付回调，需要运维开白名单"
    await say(service, "emp1", said)
    await service.outbox.drain()
    row = await _get(service, current.id)
    assert (row.status, row.obstacles, row.progress) == ("open", None, {"note": said})
    assert (await _get(service, old.id)).progress == {"overall": 20}
    assert (await _get(service, other.id)).progress == {}
    assert last_to(recorder, "emp1").header.title == "请回答（1/3）"

    # abandoning the questions keeps the message; the next one is added to it and the questions come back
    await say(service, "emp1", "/cancel")
    await say(service, "emp1", "白名单已开，明天继续")
    await say(service, "emp1", "50")
    await say(service, "emp1", "跳过")
    await say(service, "emp1", "跳过")
    await service.outbox.drain()
    row = await _get(service, current.id)
    note = f"{said}\n白名单已开，明天继续"
    assert (row.status, row.progress, row.obstacles) == ("submitted", {"overall": 50, "note": note}, None)
    assert "白名单已开" in text_of(last_to(recorder, "mgr"))

    # with nothing open, text is not swallowed: the person gets the help card
    await click(service, "mgr", CheckinAck(checkin_id=current.id))
    recorder.clear()
    await say(service, "emp1", "还有一件事")
    await service.outbox.drain()
    assert "帮助" in last_to(recorder, "emp1").header.title
    assert (await _get(service, current.id)).progress == {"overall": 50, "note": note}


async def test_reminder_once_then_missed(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    checkin = await _open(service, org.emp1)
    assert checkin is not None

    async def remind(ctx: Context) -> bool:
        return await remind_checkin(ctx, checkin.id)

    async def close(ctx: Context) -> bool:
        return await close_missed_checkin(ctx, checkin.id)

    assert await run_as(service, org.emp1.id, remind) is True
    assert await run_as(service, org.emp1.id, remind) is False
    assert await run_as(service, org.emp2.id, remind) is False  # someone else's check-in
    await service.outbox.drain()
    cards = recorder.to("emp1")
    assert len(cards) == 2 and cards[1].header.title.startswith("提醒")
    assert (await _get(service, checkin.id)).reminded_at is not None

    assert await run_as(service, org.emp1.id, close) is True
    assert await run_as(service, org.emp1.id, close) is False
    await service.outbox.drain()
    assert (await _get(service, checkin.id)).status == "missed"
    assert "错过" in last_update(recorder, "emp1").header.title
    assert (
        await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "50"})
    ).toast_kind == "error"
    assert (await say(service, "emp1", "补交一下")).toast is None  # not attached to a missed check-in
    assert (await _get(service, checkin.id)).obstacles is None


async def test_no_reminder_or_missed_after_submit(service: Service, org: Org) -> None:
    checkin = await _open(service, org.emp1)
    assert checkin is not None
    await click(service, "emp1", CheckinSubmit(checkin_id=checkin.id), {"goal_overall": "50"})

    async def remind(ctx: Context) -> bool:
        return await remind_checkin(ctx, checkin.id)

    async def close(ctx: Context) -> bool:
        return await close_missed_checkin(ctx, checkin.id)

    assert await run_as(service, org.emp1.id, remind) is False
    assert await run_as(service, org.emp1.id, close) is False
    assert (await _get(service, checkin.id)).status == "submitted"


async def test_delegate_and_hrbp_may_answer(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    async with service.factory() as s, s.begin():
        manager = await s.get(Person, org.manager.id)
        assert manager is not None
        manager.delegate_id = org.sales_manager.id
    first = await _open(service, org.emp1)
    second = await _open(service, org.emp2)
    assert first is not None and second is not None
    await click(service, "emp1", CheckinSubmit(checkin_id=first.id), {"goal_overall": "50"})
    await click(service, "emp2", CheckinSubmit(checkin_id=second.id), {"goal_overall": "50"})
    await click(service, "smgr", CheckinFollowup(checkin_id=first.id))
    await click(service, "hrbp", CheckinAck(checkin_id=second.id))
    assert (await _get(service, first.id)).answered_by_id == org.sales_manager.id
    assert (await _get(service, second.id)).answered_by_id == org.hrbp.id
    assert (await click(service, "seller", CheckinAck(checkin_id=first.id))).toast_kind == "error"


async def test_not_submitted_yet_cannot_be_acknowledged(service: Service, org: Org) -> None:
    checkin = await _open(service, org.emp1)
    assert checkin is not None
    answer = await click(service, "mgr", CheckinAck(checkin_id=checkin.id))
    assert answer.toast == "张三 还没有提交这次进度对话。"
    async with service.factory() as s:
        assert await s.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.status == "open")) == 1
