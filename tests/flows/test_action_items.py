"""Action items, reminders, the escalation ladder, the progress-gap warning, nudges and kudos."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.app.service import Service
from bot.core.clock import FixedClock
from cards.model import Select
from handlers.action_items.action_items import parse_action_args, remind_action_item
from handlers.action_items.escalation import check_progress_gap, due_level, escalate_action_item
from handlers.kudos.kudos import parse_kudos
from storage.models import ActionItem, AuditLog, CheckIn, Cycle, Goal, Recognition
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import add_item, button, click, count, get, run_job, text

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai.


def test_command_parsers() -> None:
    assert parse_action_args("@张三 2026-12-01 交付 周报 +照片") == (
        "@张三",
        date(2026, 12, 1),
        "交付 周报",
        True,
    )
    assert parse_action_args("@张三 交付 2026-12-01") == ("@张三", date(2026, 12, 1), "交付", False)
    assert parse_action_args("张三 2026-12-01 x") is None
    assert parse_action_args("@张三 2026-12-01") is None
    assert parse_kudos("@李四 +3 帮忙 上线") == ("@李四", 3, "帮忙 上线")
    assert parse_kudos("@李四 thanks") == ("@李四", 1, "thanks")
    assert parse_kudos("@李四 +2") is None


async def test_action_command_done_accept_and_return(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    refused = await service.dispatcher.dispatch(text("emp2", "/action @张三 2026-12-01 写周报"))
    assert refused.toast_kind == "error"
    await service.dispatcher.dispatch(text("mgr", "/action @张三 2026-12-01 交付客户回访报告 +照片"))
    await service.outbox.drain()
    async with service.factory() as s:
        item = await s.scalar(select(ActionItem))
    assert item is not None
    assert (item.owner_id, item.acceptor_id, item.deadline, item.evidence_required, item.source) == (
        org.emp1.id,
        org.manager.id,
        date(2026, 12, 1),
        True,
        "manual",
    )
    [card] = recorder.to("emp1")
    recorder.clear()

    assert (
        await service.dispatcher.dispatch(click("emp2", button(card, "action.done")))
    ).toast_kind == "error"
    await service.dispatcher.dispatch(click("emp1", button(card, "action.done")))
    await service.outbox.drain()
    done = await get(service, ActionItem, item.id)
    assert done.status == "done" and done.done_at is not None and done.first_response_at == done.done_at
    # The acceptor gets the accept/return card, and (Flows III) a card to rate the deliverable.
    [review] = [c for c in recorder.to("mgr") if c.header.title == "请验收行动项"]
    assert len(recorder.to("mgr")) == 2
    recorder.clear()

    # Only the acceptor returns it; a reason is required; then the owner sees it again.
    ret = review.forms()[0].submit
    assert (await service.dispatcher.dispatch(click("emp2", ret, {"comment": "x"}))).toast_kind == "error"
    assert (await service.dispatcher.dispatch(click("mgr", ret, {"comment": " "}))).toast_kind == "error"
    await service.dispatcher.dispatch(click("mgr", ret, {"comment": "缺少客户签字"}))
    await service.outbox.drain()
    returned = await get(service, ActionItem, item.id)
    assert returned.status == "returned" and returned.done_at is None
    [again] = recorder.to("emp1")
    assert "缺少客户签字" in str(again.model_dump())
    # A stale accept on the old card changes nothing.
    assert (
        await service.dispatcher.dispatch(click("mgr", button(review, "action.accept")))
    ).toast_kind == "error"

    recorder.clear()
    await service.dispatcher.dispatch(click("emp1", button(again, "action.done")))
    await service.outbox.drain()
    [review2] = recorder.to("mgr")
    await service.dispatcher.dispatch(click("mgr", button(review2, "action.accept")))
    assert (await get(service, ActionItem, item.id)).status == "accepted"


async def test_reminders_before_and_on_the_day_exactly_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 27), acceptor=org.manager)
    results = [
        await run_job(service, org.emp1, lambda ctx: remind_action_item(ctx, item.id, kind="before"))
        for _ in range(2)
    ]
    assert results == [True, False]
    await service.outbox.drain()  # delivered three days before the next one
    # "due" before the day is allowed to be sent early by the scheduler? No: it is for the day itself.
    clock.advance(timedelta(days=3))  # 2026-11-27
    results += [
        await run_job(service, org.emp1, lambda ctx: remind_action_item(ctx, item.id, kind="due"))
        for _ in range(2)
    ]
    assert results == [True, False, True, False]
    await service.outbox.drain()
    titles = [c.header.title for c in recorder.to("emp1")]
    assert titles == ["行动项即将到期", "行动项今天到期"]
    assert "3 天" in str(recorder.to("emp1")[0].model_dump())
    # The day's reminder supersedes the earlier card: that one loses its buttons (issue 15 #10).
    [(ref, old_card, _)] = recorder.updates
    assert ref == recorder.sent[0].message_ref and old_card.buttons() == []
    assert "最新的卡片" in str(old_card.model_dump())

    clock.advance(timedelta(days=1))  # past the deadline: no late "due" reminder
    other = await add_item(service, org.emp1, deadline=date(2026, 11, 27))
    assert not await run_job(service, org.emp1, lambda ctx: remind_action_item(ctx, other.id, kind="due"))
    async with service.factory() as s, s.begin():
        row = await s.get(ActionItem, other.id)
        assert row is not None
        row.status, row.deadline = "done", date(2026, 12, 5)
    assert not await run_job(service, org.emp1, lambda ctx: remind_action_item(ctx, other.id, kind="before"))


async def test_escalation_ladder_each_step_once(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 20), acceptor=org.manager)
    cfg = service.settings.escalation
    assert due_level(date(2026, 11, 20), date(2026, 11, 24), cfg) == 2

    async def esc(level: int) -> bool:
        return await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=level))

    assert [await esc(1), await esc(1), await esc(2), await esc(2), await esc(3)] == [
        True,
        False,
        True,
        False,
        False,
    ]
    clock.advance(timedelta(days=1))  # 5 days late = 1 + manager grace 1 + HRBP grace 3
    assert [await esc(3), await esc(3), await esc(1)] == [True, False, False]
    await service.outbox.drain()
    assert [c.header.title for c in recorder.to("emp1")] == ["行动项已逾期"]
    assert [c.header.title for c in recorder.to("mgr")] == ["团队成员的行动项逾期"]
    assert [c.header.title for c in recorder.to("hrbp")] == ["行动项逾期升级至 HRBP"]
    assert (await get(service, ActionItem, item.id)).escalation_level == 3
    async with service.factory() as s:
        keys = [
            d["key"]
            for d in await s.scalars(
                select(AuditLog.detail)
                .where(AuditLog.action == "action_item.escalated")
                .order_by(AuditLog.id)
            )
        ]
    assert keys == [f"escalate:{n}:2026-11-20:{org.emp1.id}" for n in (1, 2, 3)]


async def test_escalation_stops_when_done(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 20), acceptor=org.manager)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=1))
    await service.outbox.drain()
    [overdue] = recorder.to("emp1")
    await service.dispatcher.dispatch(click("emp1", button(overdue, "action.done")))
    recorder.clear()
    clock.advance(timedelta(days=10))
    assert not await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=2))
    assert not await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=3))
    await service.outbox.drain()
    assert recorder.to("hrbp") == []
    assert sorted(c.header.title for c in recorder.to("mgr")) == ["请为 张三 的交付打分", "请验收行动项"]


async def test_manager_extends_reassigns_and_closes(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 20), acceptor=org.manager)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=2))
    await service.outbox.drain()
    [card] = recorder.to("mgr")
    recorder.clear()

    extend = next(f for f in card.forms() if f.name == "action_extend").submit
    assert (
        await service.dispatcher.dispatch(click("emp2", extend, {"deadline": "2026-12-10"}))
    ).toast_kind == "error"
    assert (
        await service.dispatcher.dispatch(click("emp1", extend, {"deadline": "2026-12-10"}))
    ).toast_kind == "error"
    assert (
        await service.dispatcher.dispatch(click("mgr", extend, {"deadline": "2026-11-01"}))
    ).toast_kind == "error"
    await service.dispatcher.dispatch(click("mgr", extend, {"deadline": "2026-12-10"}))
    extended = await get(service, ActionItem, item.id)
    assert (extended.deadline, extended.escalation_level) == (date(2026, 12, 10), 0)
    # A new deadline is a new ladder: once it has passed, level 1 fires again.
    clock.advance(timedelta(days=17))
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=1))

    reassign = next(f for f in card.forms() if f.name == "action_reassign")
    select_input = reassign.inputs[0]
    assert isinstance(select_input, Select)
    options = [o.value for o in select_input.options]
    assert options == [str(org.emp2.id)]
    await service.dispatcher.dispatch(click("mgr", reassign.submit, {"owner": str(org.emp2.id)}))
    assert (await get(service, ActionItem, item.id)).owner_id == org.emp2.id

    close = button(card, "action.close")
    assert (await service.dispatcher.dispatch(click("seller", close))).toast_kind == "error"
    await service.dispatcher.dispatch(click("hrbp", close))
    closed = await get(service, ActionItem, item.id)
    assert closed.status == "closed" and closed.closed_at == clock.now()
    assert not await run_job(service, org.emp2, lambda ctx: escalate_action_item(ctx, item.id, level=2))


async def test_nudge_from_an_overseer_once_a_day(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    from cards.action_items import ActionNudge
    from cards.actions import pack

    item = await add_item(service, org.emp1, deadline=date(2026, 11, 20))
    value = pack(ActionNudge(item_id=item.id))
    assert (await service.dispatcher.dispatch(click("seller", value))).toast_kind == "error"
    first = await service.dispatcher.dispatch(click("leader", value))
    second = await service.dispatcher.dispatch(click("mgr", value))
    assert first.toast_kind == "success" and second.toast_kind == "info"
    await service.outbox.drain()
    [nudge] = recorder.to("emp1")
    assert "刘总" in str(nudge.model_dump())


async def test_progress_gap_in_two_consecutive_checkins(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async with service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=org.workspace.id,
            code="2026-Q4",
            status="active",
            starts_on=date(2026, 10, 1),
            ends_on=date(2026, 12, 31),
        )
        s.add(cycle)
        await s.flush()
        g1 = Goal(cycle_id=cycle.id, person_id=org.emp1.id, objective="A", weight=75)
        g2 = Goal(cycle_id=cycle.id, person_id=org.emp1.id, objective="B", weight=25)
        s.add_all([g1, g2])
        await s.flush()
        # Plan on 11-10 is 40/91 = 44 %; actual (0.75*20 + 0.25*40) = 25 %: 19 points behind → not enough.
        c0 = CheckIn(
            person_id=org.emp1.id,
            cycle_id=cycle.id,
            period="2026-11-10",
            status="acknowledged",
            progress={str(g1.id): 20, str(g2.id): 40},
            due_at=datetime(2026, 11, 10, 8, tzinfo=UTC),
            submitted_at=datetime(2026, 11, 10, 8, tzinfo=UTC),
        )
        # Plan on 11-12 is 46 %; actual 20 %: 26 behind.
        c1 = CheckIn(
            person_id=org.emp1.id,
            cycle_id=cycle.id,
            period="2026-11-12",
            status="acknowledged",
            progress={str(g1.id): 20, str(g2.id): 20},
            due_at=datetime(2026, 11, 12, 8, tzinfo=UTC),
            submitted_at=datetime(2026, 11, 12, 8, tzinfo=UTC),
        )
        # Plan on 11-24 is 59 %; actual 30 %: 29 behind, second in a row.
        c2 = CheckIn(
            person_id=org.emp1.id,
            cycle_id=cycle.id,
            period="2026-11-24",
            status="submitted",
            progress={str(g1.id): 30, str(g2.id): 30},
            due_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
            submitted_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
        )
        s.add_all([c0, c1, c2])
    assert not await run_job(service, org.emp1, lambda ctx: check_progress_gap(ctx, c1.id))
    assert await run_job(service, org.emp1, lambda ctx: check_progress_gap(ctx, c2.id))
    assert not await run_job(service, org.emp1, lambda ctx: check_progress_gap(ctx, c2.id))
    await service.outbox.drain()
    for who in ("emp1", "mgr"):
        [warning] = recorder.to(who)
        assert warning.header.title == "进度落后于计划"
        assert {"59%", "30%", "29%"} <= {
            kv.value for el in warning.elements if el.kind == "fields" for kv in el.items
        }


async def test_kudos(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    assert (await service.dispatcher.dispatch(text("emp1", "/kudos @张三 me"))).toast_kind == "error"
    assert (await service.dispatcher.dispatch(text("emp1", "/kudos @无名 thanks"))).toast_kind == "error"
    assert (await service.dispatcher.dispatch(text("emp1", "/kudos @李四 +9 thanks"))).toast_kind == "error"
    await service.dispatcher.dispatch(text("emp1", "/kudos @李四 +3 帮我排查线上问题"))
    await service.dispatcher.dispatch(text("mgr", "/kudos @李四 周末支援"))
    await service.outbox.drain()
    cards = recorder.to("emp2")
    assert [c.header.title for c in cards] == ["Kudos from 张三", "Kudos from 王经理"]
    assert "4" in {kv.value for el in cards[1].elements if el.kind == "fields" for kv in el.items}
    assert await count(service, Recognition) == 2
