"""Catch-up of the action-item ladder after downtime or a fast-forward (issue 15 #4).

The registry's own reminder and escalation entries run under the real scheduler: after a week's jump the
owner hears before the manager (never the manager alone), each person gets one card, and a later tick
sends nothing again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from bot.app.flows import SCHEDULE
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.schedule import Entry, EscalationArgs, Job
from cards.model import Card
from handlers.action_items.escalation import escalate_action_item
from scheduler.cadence import action_item_steps, latest_step, latest_steps
from scheduler.calendar import ChineseWorkCalendar
from scheduler.engine import Scheduler
from scheduler.table import JobTable
from storage.models import ActionItem, OutboxMessage
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import add_item, get, run_job

# The clock fixture is Tuesday 2026-11-24 10:00 in Shanghai.
CAL = ChineseWorkCalendar()
ACTION_JOBS = (Job.REMIND_ACTION_ITEM, Job.ESCALATE_ACTION_ITEM)


def action_scheduler(service: Service) -> Scheduler:
    entries = [e for e in SCHEDULE if isinstance(e, Entry) and e.job in ACTION_JOBS]
    return Scheduler(service, JobTable(entries, partial=True))


class Sent:
    """(recipient, title) of the cards the flows wrote since the last ``mark``, in the order they wrote
    them: the outbox delivers different recipients concurrently, so the recorder's order says nothing
    about who was told first."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.seen = 0

    async def since(self) -> list[tuple[str, str]]:
        async with self.service.factory() as s:
            rows = await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.op == "send", OutboxMessage.id > self.seen)
                .order_by(OutboxMessage.id)
            )
            return [(r.recipients[0], Card.model_validate(r.card).header.title) for r in rows]

    async def mark(self) -> None:
        async with self.service.factory() as s:
            self.seen = int(await s.scalar(select(func.max(OutboxMessage.id))) or 0)


async def test_a_week_fast_forward_tells_the_owner_before_the_manager(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 27), acceptor=org.manager)
    sched = action_scheduler(service)
    sent = Sent(service)
    await sched.tick()  # T-3: the "before" reminder
    assert await sent.since() == [("emp1", "行动项即将到期")]
    await service.outbox.drain()
    await sent.mark()
    recorder.clear()

    # A week later (Tuesday 1 December): the on-the-day reminder, the owner's overdue step (Monday) and the
    # manager's step (today) were all missed. The owner gets one card, then the manager gets theirs.
    clock.advance(timedelta(days=7))
    for _ in range(3):
        await sched.tick()
    assert await sent.since() == [("emp1", "行动项已逾期"), ("mgr", "团队成员的行动项逾期")]
    await service.outbox.drain()
    [owner_card] = recorder.to("emp1")
    assert "逾期 4 天" in str(owner_card.model_dump()) and "王经理也会收到提醒" in str(
        owner_card.model_dump()
    )
    assert len(recorder.to("mgr")) == 1
    assert (await get(service, ActionItem, item.id)).escalation_level == 2
    await service.outbox.drain()
    await sent.mark()
    recorder.clear()

    # Later ticks owe nothing new until the HRBP's step (Friday 4 December).
    clock.advance(timedelta(days=2))
    await sched.tick()
    assert await sent.since() == []
    clock.advance(timedelta(days=1))
    await sched.tick()
    assert await sent.since() == [("hrbp", "行动项逾期升级至 HRBP")]


async def test_two_weeks_down_sends_every_rung_once_in_ladder_order(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    await add_item(service, org.emp1, deadline=date(2026, 11, 25), acceptor=org.manager)
    clock.advance(timedelta(days=14))
    sched, sent = action_scheduler(service), Sent(service)
    await sched.tick()
    await sched.tick()
    assert await sent.since() == [
        ("emp1", "行动项已逾期"),
        ("mgr", "团队成员的行动项逾期"),
        ("hrbp", "行动项逾期升级至 HRBP"),
    ]


async def test_a_higher_rung_called_directly_sends_the_missing_lower_ones_first(
    service: Service, org: Org, recorder: RecordingAdapter, clock: FixedClock
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 10), acceptor=org.manager)
    sent = Sent(service)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=3))
    assert not await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=1))
    assert not await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=2))
    assert [r for r, _ in await sent.since()] == ["emp1", "mgr", "hrbp"]


async def test_overdue_card_without_a_manager_step_says_nothing_about_the_manager(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    item = await add_item(service, org.emp1, deadline=date(2026, 11, 23), acceptor=org.manager)
    assert await run_job(service, org.emp1, lambda ctx: escalate_action_item(ctx, item.id, level=1))
    await service.outbox.drain()
    [card] = recorder.to("emp1")
    assert "逾期 1 天" in str(card.model_dump()) and "也会收到提醒" not in str(card.model_dump())


def test_latest_steps_owes_each_audience_its_newest_step() -> None:
    settings = Settings()
    item = ActionItem(
        id=7, owner_id=3, deadline=date(2026, 11, 27), escalation_level=0, source="manual", deliverable="x"
    )
    steps = action_item_steps(item, "Asia/Shanghai", settings, CAL)
    week_later = datetime(2026, 12, 1, 4, tzinfo=UTC)
    assert [(s.flow, s.audience, s.args) for s in latest_steps(steps, week_later)] == [
        ("action.escalate", "owner", EscalationArgs(7, 1)),
        ("action.escalate", "manager", EscalationArgs(7, 2)),
    ]
    assert latest_step(steps, week_later) == latest_steps(steps, week_later)[-1]
    # Once the owner has been told it is overdue, the reminders before the deadline are no longer steps.
    item.escalation_level = 1
    assert [s.audience for s in action_item_steps(item, "Asia/Shanghai", settings, CAL)] == [
        "manager",
        "hrbp",
    ]
