"""One scheduler tick: find what is owed now, record what will not be sent, hand the rest to the flows.

A tick is idempotent by construction: it recomputes "owed now" from the calendar and the records and skips
keys already in the ledger, so it does not matter how many ticks ran (or did not run) before it. After
downtime only the *latest* occurrence of each series (and the latest step of each record) is owed: the
service sends once, not once per missed tick; an item older than ``catchup_horizon_hours`` is recorded as
``missed`` instead of sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.service import Service
from bot.core.context import Context
from bot.core.localtime import local_today, person_tz
from scheduler import ledger
from scheduler.cadence import (
    Due,
    Policy,
    action_item_steps,
    checkin_steps,
    latest,
    latest_step,
    periodic_flows,
)
from scheduler.calendar import WorkCalendar, calendar_from_settings
from scheduler.flows import FlowFn, FlowTable
from storage.models import ActionItem, CheckIn, Person, ScheduledSend, TeamSetting

log = logging.getLogger("perfloop.scheduler")

OPEN_ACTION_STATUSES = ("open", "returned")
SNOOZE_FLOWS = {"snooze.checkin": "remind_checkin", "snooze.review": "remind_review"}


@dataclass
class TickReport:
    sent: list[Due] = field(default_factory=list)
    missed: list[Due] = field(default_factory=list)
    skipped: list[Due] = field(default_factory=list)
    waiting: list[Due] = field(default_factory=list)
    """Owed but held back: on leave (reminders, state changes) or the flow is not installed."""
    failed: list[Due] = field(default_factory=list)
    taken: int = 0
    """Keys another fire recorded between our read and our insert."""


@dataclass
class Snapshot:
    """What one tick read: who may receive anything, and the items owed to them now."""

    people: dict[int, Person]
    dues: list[Due]
    snoozes: list[tuple[ScheduledSend, Due]]


async def team_settings(session: AsyncSession) -> dict[int, TeamSetting]:
    """Managers' settings for their direct reports, by manager id."""
    return {t.manager_id: t for t in await session.scalars(select(TeamSetting))}


def team_of(person: Person, teams: dict[int, TeamSetting]) -> TeamSetting | None:
    return teams.get(person.manager_id) if person.manager_id is not None else None


def on_leave(person: Person, day: date) -> bool:
    return (
        person.leave_from is not None
        and person.leave_until is not None
        and person.leave_from <= day <= person.leave_until
    )


class Scheduler:
    def __init__(
        self, service: Service, *, flows: FlowTable | None = None, calendar: WorkCalendar | None = None
    ) -> None:
        self.service = service
        self.settings = service.settings
        self.flows = flows or FlowTable()
        self.calendar = calendar or calendar_from_settings(service.settings)

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.schedule.catchup_horizon_hours)

    # ------------------------------------------------------------------------------------ reading
    async def snapshot(self, now: datetime) -> Snapshot:
        async with self.service.factory() as session:
            people = {
                p.id: p
                for p in await session.scalars(
                    select(Person).where(Person.active.is_(True), Person.paused.is_(False))
                )
            }
            tz = {pid: person_tz(p, self.settings) for pid, p in people.items()}
            teams = await team_settings(session)
            dues: list[Due] = []
            for pid, person in people.items():
                for pf in periodic_flows(person, self.settings, self.calendar, team_of(person, teams)):
                    occ = latest(pf.series, now, tz[pid])
                    if occ is not None:
                        dues.append(pf.due(pid, tz[pid], occ))
            checkins = list(await session.scalars(select(CheckIn).where(CheckIn.status == "open")))
            checkins = [ci for ci in checkins if ci.person_id in people]
            snoozed = await ledger.snoozes_for(session, "snooze.checkin", (ci.id for ci in checkins))
            for ci in checkins:
                row = snoozed.get(ci.id)
                step = latest_step(
                    checkin_steps(
                        ci,
                        tz[ci.person_id],
                        self.settings,
                        snoozed_until=row.due_at if row else None,
                        team=team_of(people[ci.person_id], teams),
                    ),
                    now,
                )
                if step is not None:
                    dues.append(step)
            items = await session.scalars(
                select(ActionItem).where(ActionItem.status.in_(OPEN_ACTION_STATUSES))
            )
            for item in items:
                if item.owner_id in people:
                    step = latest_step(
                        action_item_steps(item, tz[item.owner_id], self.settings, self.calendar), now
                    )
                    if step is not None:
                        dues.append(step)
            wakes: list[tuple[ScheduledSend, Due]] = []
            rows = await session.scalars(
                select(ScheduledSend).where(
                    ScheduledSend.status == "snoozed",
                    ScheduledSend.flow.in_(SNOOZE_FLOWS),
                    ScheduledSend.due_at <= now,
                )
            )
            for row in rows:
                if row.person_id in people and row.due_at is not None:
                    wakes.append(
                        (
                            row,
                            Due(
                                flow=row.flow,
                                person_id=row.person_id,
                                period=row.period,
                                at=row.due_at,
                                tz=tz[row.person_id],
                                handler=SNOOZE_FLOWS[row.flow],
                                policy=Policy.REMINDER,
                                args=(int(row.period),),
                            ),
                        )
                    )
        return Snapshot(people=people, dues=dues, snoozes=wakes)

    # ------------------------------------------------------------------------------------ the tick
    async def tick(self) -> TickReport:
        now = self.service.clock.now()
        snap = await self.snapshot(now)
        report = TickReport()
        async with self.service.factory() as session:
            done = await ledger.existing_keys(session, (d.key for d in snap.dues))
        owed = sorted((d for d in snap.dues if d.key not in done), key=lambda d: (d.at, d.flow, d.person_id))
        skip: list[tuple[Due, str]] = []
        miss: list[tuple[Due, str]] = []
        run: list[tuple[Due, FlowFn]] = []
        for due in owed:
            person = snap.people[due.person_id]
            fn = self.flows.get(due.handler)
            if fn is None:  # a flow this deployment does not run: nothing to record either
                report.waiting.append(due)
            elif due.policy is Policy.PERIODIC and on_leave(person, due.local().date()):
                skip.append((due, f"leave until {person.leave_until}"))
            elif due.policy is not Policy.PERIODIC and on_leave(person, local_today(now, due.tz)):
                report.waiting.append(due)
            elif due.policy is not Policy.STATE and now - due.at > self.horizon:
                miss.append((due, f"older than the {self.settings.schedule.catchup_horizon_hours} h horizon"))
            else:
                run.append((due, fn))
        await self._record(skip, "skipped", now)
        await self._record(miss, "missed", now)
        report.skipped.extend(d for d, _ in skip)
        report.missed.extend(d for d, _ in miss)
        for due, fn in run:
            await self._hand_off(due, fn, report, snooze_row=None)
        for row, due in snap.snoozes:
            await self._wake(row, due, snap.people[due.person_id], now, report)
        if report.sent:
            self.service.outbox.notify()
        if report.sent or report.missed or report.skipped or report.failed:
            log.info(
                "scheduler tick",
                extra={
                    "sent": len(report.sent),
                    "missed": len(report.missed),
                    "skipped": len(report.skipped),
                    "failed": len(report.failed),
                    "waiting": len(report.waiting),
                    "taken": report.taken,
                },
            )
        return report

    async def _record(self, items: Sequence[tuple[Due, str]], status: str, now: datetime) -> None:
        await ledger.record(
            self.service.factory, [d for d, _ in items], status=status, reasons=[r for _, r in items], now=now
        )

    async def _wake(
        self, row: ScheduledSend, due: Due, person: Person, now: datetime, report: TickReport
    ) -> None:
        if on_leave(person, local_today(now, due.tz)):
            report.waiting.append(due)
            return
        if now - due.at > self.horizon:
            try:
                async with self.service.factory() as session, session.begin():
                    await ledger.wake(
                        session, row.id, status="missed", reason="snooze older than the horizon"
                    )
                report.missed.append(due)
            except ledger.Taken:
                report.taken += 1
            return
        fn = self.flows.get(due.handler)
        if fn is None:
            report.waiting.append(due)
            return
        await self._hand_off(due, fn, report, snooze_row=row.id)

    async def _hand_off(self, due: Due, fn: FlowFn, report: TickReport, *, snooze_row: int | None) -> None:
        """Key first, then the flow, in one transaction: whoever inserts the key first sends."""

        async def job(ctx: Context) -> None:
            if snooze_row is None:
                row = await ledger.claim(ctx.session, due, now=ctx.now)
            else:
                await ledger.wake(ctx.session, snooze_row, status="sent")
                row = None
            result = await fn(ctx, *due.args, **due.kwargs)
            if row is not None and (result is None or result is False or result == 0):
                row.reason = "nothing to send"

        try:
            await self.service.dispatcher.run_for_person(due.person_id, job)
        except ledger.Taken:
            report.taken += 1
        except Exception:
            log.exception(
                "scheduled flow failed; it is retried on the next tick",
                extra={"flow": due.flow, "person_id": due.person_id, "period": due.period},
            )
            report.failed.append(due)
        else:
            report.sent.append(due)
