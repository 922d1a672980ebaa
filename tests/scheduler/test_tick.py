"""The tick against real SQLite and PostgreSQL: idempotent hand-off, leave, snooze, skip, catch-up, horizon.

Flows are test doubles handed to the scheduler as typed schedule entries in a partial ``JobTable`` (only the
jobs a test registers run; the others' items wait); they behave like the contract says (create the record,
write a card to the outbox) so the whole path down to the recording adapter is real.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.context import Context
from bot.core.events import CardAction, TextMessage
from bot.core.schedule import CheckinArgs, DayArgs, Entry, Job, PeriodArgs
from cards.actions import pack
from cards.catalogue import Translator
from cards.model import Actions, Card, Header, Markdown
from cards.snooze import Snooze, snooze_button
from scheduler.engine import Scheduler
from scheduler.plan import format_plan, next_due
from scheduler.table import JobTable
from storage.models import CheckIn, Person, Review321, ScheduledSend
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org

_ids = itertools.count(1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 2026-12-04 is a biweekly check-in Friday; 16:00 in Shanghai is 08:00 UTC.
CHECKIN_DUE = utc(2026, 12, 4, 8)


@dataclass
class Flows:
    """Contract-shaped doubles that record their calls."""

    calls: list[tuple[str, int, Any]] = field(default_factory=list)
    fail_next: int = 0

    def card(self, title: str, *, snooze: int | None = None) -> Card:
        elements: list[Any] = [Markdown(text=title)]
        if snooze is not None:
            elements.append(Actions(buttons=[snooze_button(Translator("en"), flow="checkin", ref_id=snooze)]))
        return Card(header=Header(title=title), elements=elements)

    async def open_checkin(self, ctx: Context, *, period: str, due_at: datetime) -> CheckIn | None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("flow crashed")
        self.calls.append(("open_checkin", ctx.person.id, period))
        ci = CheckIn(person_id=ctx.person.id, period=period, due_at=due_at, status="open")
        ctx.session.add(ci)
        await ctx.session.flush()
        ctx.outbox.send(ctx.person, self.card(f"check-in {period}", snooze=ci.id))
        return ci

    async def remind_checkin(self, ctx: Context, checkin_id: int) -> bool:
        ci = await ctx.session.get(CheckIn, checkin_id)
        assert ci is not None
        if ci.status != "open" or ci.reminded_at is not None:
            return False
        self.calls.append(("remind_checkin", ctx.person.id, checkin_id))
        ci.reminded_at = ctx.now
        ctx.outbox.send(ctx.person, self.card(f"reminder {ci.period}"))
        return True

    async def close_missed_checkin(self, ctx: Context, checkin_id: int) -> bool:
        self.calls.append(("close_missed_checkin", ctx.person.id, checkin_id))
        result: Any = await ctx.session.execute(
            update(CheckIn).where(CheckIn.id == checkin_id, CheckIn.status == "open").values(status="missed")
        )
        return bool(result.rowcount)

    async def send_digest(self, ctx: Context, *, day: date) -> bool:
        self.calls.append(("send_digest", ctx.person.id, day))
        ctx.outbox.send(ctx.person, self.card(f"digest {day}"))
        return True

    def entries(self) -> dict[Job, Entry[Any]]:
        return {
            Job.OPEN_CHECKIN: Entry(
                Job.OPEN_CHECKIN,
                PeriodArgs,
                lambda ctx, a: self.open_checkin(ctx, period=a.period, due_at=a.due_at),
            ),
            Job.REMIND_CHECKIN: Entry(
                Job.REMIND_CHECKIN, CheckinArgs, lambda ctx, a: self.remind_checkin(ctx, a.checkin_id)
            ),
            Job.CLOSE_MISSED_CHECKIN: Entry(
                Job.CLOSE_MISSED_CHECKIN,
                CheckinArgs,
                lambda ctx, a: self.close_missed_checkin(ctx, a.checkin_id),
            ),
            Job.SEND_DIGEST: Entry(Job.SEND_DIGEST, DayArgs, lambda ctx, a: self.send_digest(ctx, day=a.day)),
        }

    def table(self, *jobs: Job) -> JobTable:
        """Only these jobs run: the items of every other job wait, unrecorded."""
        entries = self.entries()
        return JobTable([entries[job] for job in jobs], partial=True)

    def of(self, name: str) -> list[tuple[int, Any]]:
        return [(pid, arg) for n, pid, arg in self.calls if n == name]


async def ledger(service: Service, flow: str) -> dict[tuple[int, str], ScheduledSend]:
    async with service.factory() as s:
        rows = await s.scalars(select(ScheduledSend).where(ScheduledSend.flow == flow))
        return {(r.person_id, r.period): r for r in rows}


async def set_person(service: Service, person: Person, **values: Any) -> None:
    async with service.factory() as s, s.begin():
        await s.execute(update(Person).where(Person.id == person.id).values(**values))


async def say(service: Service, sender: str, text: str) -> str | None:
    answer = await service.dispatcher.dispatch(
        TextMessage(
            platform="rec", workspace="rec-app", event_id=f"t{next(_ids)}", sender_id=sender, text=text
        )
    )
    return answer.toast


def checkin_people(org: Org) -> set[int]:
    return {org.manager.id, org.emp1.id, org.emp2.id, org.sales_manager.id, org.seller.id}


async def test_checkin_is_handed_over_once_at_local_time(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN))
    clock.set(CHECKIN_DUE - timedelta(minutes=1))
    report = await sched.tick()
    assert flows.calls == []
    # The previous check-in (20 Nov) is far past the horizon on this first tick: recorded, not sent.
    assert {r.status for r in (await ledger(service, "checkin")).values()} == {"missed"}
    assert len(report.missed) == 5
    clock.set(CHECKIN_DUE)
    await sched.tick()
    await sched.tick()
    clock.advance(timedelta(minutes=2))
    await sched.tick()
    assert sorted(pid for pid, _ in flows.of("open_checkin")) == sorted(checkin_people(org))
    assert {period for _, period in flows.of("open_checkin")} == {"2026-12-04"}
    rows = await ledger(service, "checkin")
    assert {
        pid for (pid, period), r in rows.items() if period == "2026-12-04" and r.status == "sent"
    } == checkin_people(org)
    assert all(r.due_at == CHECKIN_DUE for (_, p), r in rows.items() if p == "2026-12-04")
    await service.outbox.drain()
    assert len(recorder.to("emp1")) == 1 and len(recorder.to("leader")) == 0


async def test_timezones_on_both_sides_of_midnight_utc(service: Service, org: Org, clock: FixedClock) -> None:
    await set_person(service, org.emp1, timezone="Pacific/Auckland")  # 16:00 Friday = 03:00 UTC Friday
    await set_person(service, org.emp2, timezone="America/Los_Angeles")  # 16:00 Friday = 00:00 UTC Saturday
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN))
    sent: dict[datetime, set[int]] = {}
    for at in (
        utc(2026, 12, 4, 2, 59),
        utc(2026, 12, 4, 3),
        utc(2026, 12, 4, 8),
        utc(2026, 12, 4, 23, 59),
        utc(2026, 12, 5, 0, 0),
    ):
        clock.set(at)
        before = len(flows.calls)
        await sched.tick()
        sent[at] = {pid for _, pid, _ in flows.calls[before:]}
    assert sent[utc(2026, 12, 4, 2, 59)] == set()
    assert sent[utc(2026, 12, 4, 3)] == {org.emp1.id}
    assert sent[utc(2026, 12, 4, 8)] == checkin_people(org) - {org.emp1.id, org.emp2.id}
    assert sent[utc(2026, 12, 4, 23, 59)] == set()
    assert sent[utc(2026, 12, 5, 0, 0)] == {org.emp2.id}
    rows = await ledger(service, "checkin")
    assert rows[(org.emp2.id, "2026-12-04")].due_at == utc(2026, 12, 5)  # period is the local day


async def test_concurrent_ticks_send_each_item_once(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    flows = Flows()
    clock.set(CHECKIN_DUE + timedelta(minutes=5))
    a = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.SEND_DIGEST))
    b = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.SEND_DIGEST))
    reports = await asyncio.gather(a.tick(), b.tick(), a.tick())
    assert sorted(pid for pid, _ in flows.of("open_checkin")) == sorted(checkin_people(org))
    assert flows.of("send_digest") == [(org.leader.id, date(2026, 12, 4))]
    assert sum(len(r.sent) for r in reports) == 6
    await service.outbox.drain()
    assert len(recorder.sent) == 6


async def test_a_failing_flow_leaves_no_key_and_is_retried(
    service: Service, org: Org, clock: FixedClock
) -> None:
    flows = Flows(fail_next=1)
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN))
    clock.set(CHECKIN_DUE)
    first = await sched.tick()
    assert len(first.failed) == 1 and len(first.sent) == 4
    second = await sched.tick()
    assert len(second.sent) == 1 and second.failed == []
    assert sorted(pid for pid, _ in flows.of("open_checkin")) == sorted(checkin_people(org))


async def test_leave_from_the_command_suppresses_sends(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    clock.set(utc(2026, 11, 30, 2))
    assert "2026-12-01" in (await say(service, "emp1", "/leave 2026-12-01 2026-12-10") or "")
    assert (
        await say(service, "emp2", "/leave 2026-12-10 2026-12-01")
        == "The first day must not be after the last day."
    )
    assert await say(service, "emp2", "/leave 2026-13-01 2026-12-10") == "Dates must look like 2026-02-01."
    assert "2026-12-20" in (await say(service, "emp2", "/leave 2026-12-20 至 2026-12-21") or "")
    assert (
        await say(service, "emp2", "/leave")
        == "Your leave: 2026-12-20 to 2026-12-21. Send /leave off to end it early."
    )
    assert await say(service, "emp2", "/leave off") == "Leave ended: scheduled messages resume."
    async with service.factory() as s:
        emp1 = await s.get(Person, org.emp1.id)
        assert emp1 is not None and (emp1.leave_from, emp1.leave_until) == (
            date(2026, 12, 1),
            date(2026, 12, 10),
        )
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.SEND_DIGEST))
    clock.set(CHECKIN_DUE)
    await sched.tick()
    assert org.emp1.id not in {pid for pid, _ in flows.of("open_checkin")}
    assert org.emp2.id in {pid for pid, _ in flows.of("open_checkin")}
    row = (await ledger(service, "checkin"))[(org.emp1.id, "2026-12-04")]
    assert row.status == "skipped" and "leave" in (row.reason or "")
    # The leader's own leave stops the digest too; ending it early resumes the next one.
    await set_person(service, org.leader, leave_from=date(2026, 12, 7), leave_until=date(2026, 12, 31))
    clock.set(utc(2026, 12, 7, 1, 5))  # Monday 09:05 in Shanghai
    await sched.tick()
    assert flows.of("send_digest") == [(org.leader.id, date(2026, 12, 4))]  # nothing on the 7th
    assert (await ledger(service, "digest"))[(org.leader.id, "2026-12-07")].status == "skipped"
    await say(service, "leader", "/leave off")
    clock.set(utc(2026, 12, 8, 1, 5))
    await sched.tick()
    assert (org.leader.id, date(2026, 12, 8)) in flows.of("send_digest")
    await service.outbox.drain()
    assert recorder.to("emp1") and all("check-in" not in c.header.title for c in recorder.to("emp1"))


async def test_snooze_one_day_moves_the_reminder(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.REMIND_CHECKIN, Job.CLOSE_MISSED_CHECKIN))
    clock.set(CHECKIN_DUE)
    await sched.tick()
    await service.outbox.drain()
    card = recorder.to("emp1")[-1]
    value = card.buttons()[0].value
    assert value.startswith("schedule.snooze|")

    async def click(sender: str, value: str) -> str | None:
        ev = CardAction(
            platform="rec", workspace="rec-app", event_id=f"c{next(_ids)}", sender_id=sender, value=value
        )
        return (await service.dispatcher.dispatch(ev)).toast

    clock.set(CHECKIN_DUE + timedelta(hours=2))
    assert "12-05 18:00" in (await click("emp1", value) or "")  # local time of the wake-up
    assert "12-05 18:00" in (await click("emp1", value) or "")  # once: a second tap changes nothing
    assert (await click("emp2", value) or "").startswith("Only 张三 can do this.")
    async with service.factory() as s:
        ci_id = await s.scalar(select(CheckIn.id).where(CheckIn.person_id == org.emp1.id))
        review = Review321(person_id=org.emp1.id, period="2026-12", status="submitted")
        s.add(review)
        await s.commit()
    assert await click("emp1", pack(Snooze(flow="review", ref_id=review.id))) == Translator("zh-CN")(
        "common.already_done"
    )
    # The regular reminder (due + 24 h) goes to everyone else but not to emp1 …
    clock.set(CHECKIN_DUE + timedelta(hours=24))
    await sched.tick()
    reminded = {pid for pid, _ in flows.of("remind_checkin")}
    assert reminded == checkin_people(org) - {org.emp1.id}
    # … who gets it one day after the snooze, exactly once.
    clock.set(CHECKIN_DUE + timedelta(hours=26))
    await sched.tick()
    await sched.tick()
    assert flows.of("remind_checkin").count((org.emp1.id, ci_id)) == 1
    assert (await ledger(service, "snooze.checkin"))[(org.emp1.id, str(ci_id))].status == "sent"
    # After its one reminder a check-in has nothing left to snooze.
    async with service.factory() as s:
        emp2_ci = await s.scalar(select(CheckIn.id).where(CheckIn.person_id == org.emp2.id))
    assert emp2_ci is not None
    assert await click("emp2", pack(Snooze(flow="checkin", ref_id=emp2_ci))) == Translator("en")(
        "snooze.already_reminded"
    )
    assert (org.emp2.id, str(emp2_ci)) not in await ledger(service, "snooze.checkin")
    # The answer window (30 h here) closes the others; the snoozed one gets a reminder interval after the
    # snooze's end (26 h + 24 h) instead.
    service.settings.schedule.checkin_answer_window_hours = 30
    clock.set(CHECKIN_DUE + timedelta(hours=31))
    await sched.tick()
    assert {pid for pid, _ in flows.of("close_missed_checkin")} == checkin_people(org) - {org.emp1.id}
    clock.set(CHECKIN_DUE + timedelta(hours=49))
    await sched.tick()
    assert (org.emp1.id, ci_id) not in flows.of("close_missed_checkin")
    clock.set(CHECKIN_DUE + timedelta(hours=50))
    await sched.tick()
    assert (org.emp1.id, ci_id) in flows.of("close_missed_checkin")
    assert len(flows.of("close_missed_checkin")) == 5


async def test_catch_up_after_three_days_down_sends_once(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.SEND_DIGEST))
    clock.set(utc(2026, 12, 1, 4))  # Tuesday noon in Shanghai: last tick before the outage
    await sched.tick()
    await service.outbox.drain()
    flows.calls.clear()
    recorder.clear()
    # Down Wednesday, Thursday, Friday; back on Saturday noon: three digests and a check-in were due.
    clock.set(utc(2026, 12, 5, 4))
    for _ in range(3):  # APScheduler coalesces, but even several ticks must not multiply the sends
        await sched.tick()
        clock.advance(timedelta(minutes=2))
    assert flows.of("send_digest") == [(org.leader.id, date(2026, 12, 4))]
    assert sorted(pid for pid, _ in flows.of("open_checkin")) == sorted(checkin_people(org))
    assert len(flows.of("open_checkin")) == 5
    await service.outbox.drain()
    assert len(recorder.to("leader")) == 1 and len(recorder.to("emp1")) == 1


async def test_items_older_than_the_horizon_are_recorded_missed(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN, Job.SEND_DIGEST))
    # Back on Monday 7 December 10:00 local: Friday's 16:00 check-in is 66 h old (horizon 48 h).
    clock.set(utc(2026, 12, 7, 2))
    report = await sched.tick()
    await sched.tick()
    assert flows.of("open_checkin") == []
    rows = await ledger(service, "checkin")
    assert {
        pid for (pid, p), r in rows.items() if p == "2026-12-04" and r.status == "missed"
    } == checkin_people(org)
    assert "horizon" in (rows[(org.emp1.id, "2026-12-04")].reason or "")
    assert flows.of("send_digest") == [(org.leader.id, date(2026, 12, 7))]  # today's is fresh
    assert len([d for d in report.missed if d.flow == "checkin"]) == 5
    # A longer horizon sends it instead.
    service.settings.schedule.catchup_horizon_hours = 96
    async with service.factory() as s, s.begin():
        await s.execute(update(ScheduledSend).where(ScheduledSend.flow == "checkin").values(flow="old"))
    await Scheduler(service, flows.table(Job.OPEN_CHECKIN)).tick()
    assert len(flows.of("open_checkin")) == 5


async def test_manager_skips_the_teams_next_checkin_once(
    service: Service, org: Org, clock: FixedClock
) -> None:
    await set_person(service, org.manager, locale="en")
    clock.set(utc(2026, 12, 1, 2))
    toast = await say(service, "mgr", "/skip")
    assert toast is not None and "2 people" in toast and "2026-12-04" in toast
    assert await say(service, "mgr", "/skip") == "Your team's next check-in is already skipped."
    assert await say(service, "emp2", "/skip") == "You have no team whose check-in could be skipped."
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN))
    clock.set(CHECKIN_DUE)
    await sched.tick()
    assert {pid for pid, _ in flows.of("open_checkin")} == {
        org.manager.id,
        org.sales_manager.id,
        org.seller.id,
    }
    clock.set(CHECKIN_DUE + timedelta(weeks=2))  # only once: the one after goes out
    await sched.tick()
    assert {org.emp1.id, org.emp2.id} <= {pid for pid, p in flows.of("open_checkin") if p == "2026-12-18"}


async def test_plan_lists_next_items_with_local_times_and_reasons(
    service: Service, org: Org, clock: FixedClock
) -> None:
    await set_person(service, org.emp1, cadence_weeks=1, checkin_weekday=4)
    await set_person(
        service,
        org.emp2,
        timezone="America/Los_Angeles",
        leave_from=date(2026, 10, 8),
        leave_until=date(2026, 10, 9),
    )
    clock.set(utc(2026, 9, 29, 2))
    items = await next_due(service, 40, locale="en")
    assert [i.due.at for i in items] == sorted(i.due.at for i in items)
    moved = next(i for i in items if i.due.flow == "checkin" and i.due.person_id == org.emp1.id)
    assert moved.due.period == "2026-10-02" and moved.local.date() == date(2026, 10, 8)
    assert moved.local.hour == 16 and moved.reason == "moved from 2026-10-02: National Day"
    makeup = next(i for i in items if i.due.flow == "digest" and i.local.date() == date(2026, 10, 10))
    assert makeup.reason == "make-up workday"
    text = format_plan(items, locale="en")
    assert "2026-10-08 Thu 16:00 Asia/Shanghai" in text and "moved from 2026-10-02: National Day" in text
    # The next 2 are the soonest ones: Tuesday-morning digest ... both are in the future.
    two = await next_due(service, 2, locale="en")
    assert len(two) == 2 and all(i.due.at > clock.now() for i in two)
    zh = await next_due(service, 40, locale="zh-CN")
    assert any(i.reason == "由 2026-10-02 顺延：国庆节" for i in zh)


async def test_a_year_of_ticks_sends_every_biweekly_checkin_once(
    service: Service, org: Org, clock: FixedClock
) -> None:
    """Biweekly cadence end to end over 2026: a tick every Monday (a 10-day horizon lets each Monday catch
    up the Friday before), so every occurrence is handed over once, with its own due time."""
    service.settings.schedule.catchup_horizon_hours = 240
    flows = Flows()
    sched = Scheduler(service, flows.table(Job.OPEN_CHECKIN))
    day = utc(2026, 1, 5, 2)
    while day.year == 2026:
        clock.set(day)
        await sched.tick()
        day += timedelta(weeks=1)
    clock.set(utc(2027, 1, 1))
    await sched.tick()
    got = sorted(p for pid, p in flows.of("open_checkin") if pid == org.emp1.id)
    assert len(got) == 26 and len(set(got)) == 26
    assert all(date.fromisoformat(p).weekday() == 4 for p in got)
    assert len(flows.of("open_checkin")) == 26 * 5
    rows = await ledger(service, "checkin")
    sent = {p: r for (pid, p), r in rows.items() if pid == org.emp1.id and r.status == "sent"}
    assert sorted(sent) == got
    # 16:00 Shanghai on the Friday, except three holidays: New Year (to the make-up Sunday, 4 January),
    # Dragon Boat Festival and Mid-autumn Festival (to the Monday after).
    assert sent.pop("2026-01-02").due_at == utc(2026, 1, 4, 8)
    assert sent.pop("2026-06-19").due_at == utc(2026, 6, 22, 8)
    assert sent.pop("2026-09-25").due_at == utc(2026, 9, 28, 8)
    assert all(r.due_at == utc(*date.fromisoformat(p).timetuple()[:3], 8) for p, r in sent.items())


async def test_runner_on_sqlite_is_always_the_leader(
    sqlite_url: str, clock: FixedClock, tmp_path: Any
) -> None:
    from adapters.registry import AdapterRegistry
    from bot.app.service import build_service
    from bot.core.config import Settings
    from scheduler.jobs import SchedulerRunner
    from tests.support.factories import seed_org

    registry = AdapterRegistry()
    registry.add(RecordingAdapter())
    svc = build_service(
        Settings(database={"url": sqlite_url}, sim={"enabled": False}), clock=clock, registry=registry
    )
    async with svc.factory() as s, s.begin():
        await seed_org(s)
    clock.set(CHECKIN_DUE)
    flows = Flows()
    runner = SchedulerRunner(svc, flows.table(Job.OPEN_CHECKIN), tick_seconds=0.05, lock_retry_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(100):
            if runner.ticks >= 3:
                break
            await asyncio.sleep(0.05)
        assert runner.ticks >= 3 and len(flows.of("open_checkin")) == 5
    finally:
        stop.set()
        await task
        await svc.close()


async def test_show_plan_reads_the_configured_database(service: Service, org: Org) -> None:
    from scheduler.plan import show_plan

    text = await show_plan(service.settings, 5, locale="en")
    assert len(text.splitlines()) == 5
    assert "Asia/Shanghai" in text


async def test_the_real_flows_through_the_contract(
    service: Service, org: Org, clock: FixedClock, recorder: RecordingAdapter
) -> None:
    """The registry's own entries for the check-in and 3-2-1 jobs, snooze included."""
    from bot.app.flows import SCHEDULE

    jobs = (
        Job.OPEN_CHECKIN,
        Job.REMIND_CHECKIN,
        Job.CLOSE_MISSED_CHECKIN,
        Job.OPEN_REVIEW,
        Job.REMIND_REVIEW,
    )
    entries = [e for e in SCHEDULE if isinstance(e, Entry) and e.job in jobs]
    assert len(entries) == len(jobs)
    sched = Scheduler(service, JobTable(entries, partial=True))
    clock.set(CHECKIN_DUE)
    report = await sched.tick()
    assert sorted(d.person_id for d in report.sent if d.flow == "checkin") == sorted(checkin_people(org))
    await service.outbox.drain()
    cards = recorder.to("emp1")
    assert len(cards) == 1
    snooze = [b.value for b in cards[0].buttons() if b.value.startswith("schedule.snooze|")]
    assert len(snooze) == 1
    clock.set(CHECKIN_DUE + timedelta(hours=2))
    answer = await service.dispatcher.dispatch(
        CardAction(platform="rec", workspace="rec-app", event_id="real-1", sender_id="emp1", value=snooze[0])
    )
    assert answer.toast_kind == "success"
    recorder.clear()
    clock.set(CHECKIN_DUE + timedelta(hours=24))
    await sched.tick()
    await service.outbox.drain()
    assert recorder.to("emp1") == [] and len(recorder.to("emp2")) == 1  # emp2's reminder, not emp1's
    clock.set(CHECKIN_DUE + timedelta(hours=26))
    await sched.tick()
    await sched.tick()
    await service.outbox.drain()
    assert len(recorder.to("emp1")) == 1
    # 3-2-1 on the last workday of December (31 December; 1 January is a holiday), snoozed a day.
    recorder.clear()
    clock.set(utc(2026, 12, 31, 2))
    report = await sched.tick()
    assert sorted(d.person_id for d in report.sent if d.flow == "review") == sorted(checkin_people(org))
    await service.outbox.drain()
    snooze = [b.value for b in recorder.to("emp2")[-1].buttons() if b.value.startswith("schedule.snooze|")]
    answer = await service.dispatcher.dispatch(
        CardAction(platform="rec", workspace="rec-app", event_id="real-2", sender_id="emp2", value=snooze[0])
    )
    assert answer.toast_kind == "success"
    recorder.clear()
    clock.set(utc(2027, 1, 1, 3))
    await sched.tick()
    await service.outbox.drain()
    again = recorder.to("emp2")
    assert len(again) == 1 and again[0].forms()  # the prompt again, still answerable
