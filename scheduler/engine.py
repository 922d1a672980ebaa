"""One scheduler tick: find what is owed now, record what will not be sent, hand the rest to the flows.

A tick is idempotent by construction: it recomputes "owed now" from the calendar and the records and skips
keys already in the ledger, so it does not matter how many ticks ran (or did not run) before it. After
downtime only the *latest* occurrence of each series (and, per record, the latest step for each person it
tells) is owed: the service sends once, not once per missed tick, and a ladder never skips a rung (the
owner's overdue card before the manager's escalation); an item older than ``catchup_horizon_hours`` is
recorded as ``missed`` instead of sent (a state change, such as an escalation, never expires).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.context import Context
from bot.core.localtime import local_today
from bot.core.schedule import Entry
from bot.core.status import SendStatus
from scheduler import ledger
from scheduler.agenda import Agenda, read_agenda
from scheduler.cadence import Due, Policy
from scheduler.calendar import WorkCalendar, calendar_from_settings
from scheduler.table import JobTable, SchedulerHost
from storage.models import Person, ScheduledSend
from storage.queries.people import on_leave

log = logging.getLogger("perfloop.scheduler")


@dataclass
class TickReport:
    sent: list[Due] = field(default_factory=list)
    missed: list[Due] = field(default_factory=list)
    skipped: list[Due] = field(default_factory=list)
    waiting: list[Due] = field(default_factory=list)
    """Owed but held back: on leave (reminders, state changes) or a job this table does not run."""
    failed: list[Due] = field(default_factory=list)
    taken: int = 0
    """Keys another fire recorded between our read and our insert."""


class Scheduler:
    def __init__(self, host: SchedulerHost, jobs: JobTable, *, calendar: WorkCalendar | None = None) -> None:
        self.host = host
        self.settings = host.settings
        self.jobs = jobs
        self.calendar = calendar or calendar_from_settings(host.settings)

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.schedule.catchup_horizon_hours)

    # ------------------------------------------------------------------------------------ reading
    async def agenda(self) -> Agenda:
        async with self.host.factory() as session:
            return await read_agenda(session, self.settings, self.calendar)

    # ------------------------------------------------------------------------------------ the tick
    async def tick(self) -> TickReport:
        now = self.host.clock.now()
        agenda = await self.agenda()
        dues = agenda.owed(now)
        report = TickReport()
        async with self.host.factory() as session:
            done = await ledger.existing_keys(session, (d.key for d in dues))
        owed = sorted((d for d in dues if d.key not in done), key=lambda d: (d.at, d.flow, d.person_id))
        skip: list[tuple[Due, str]] = []
        miss: list[tuple[Due, str]] = []
        run: list[tuple[Due, Entry[Any]]] = []
        for due in owed:
            person = agenda.people[due.person_id]
            entry = self.jobs.entry(due.job)
            if entry is None:  # a job this table does not run (a partial table): nothing to record either
                report.waiting.append(due)
            elif due.policy is Policy.PERIODIC and on_leave(person, due.local().date()):
                skip.append((due, f"leave until {person.leave_until}"))
            elif due.policy is not Policy.PERIODIC and on_leave(person, local_today(now, due.tz)):
                report.waiting.append(due)
            elif due.policy is not Policy.STATE and now - due.at > self.horizon:
                miss.append((due, f"older than the {self.settings.schedule.catchup_horizon_hours} h horizon"))
            else:
                run.append((due, entry))
        await self._record(skip, SendStatus.SKIPPED, now)
        await self._record(miss, SendStatus.MISSED, now)
        report.skipped.extend(d for d, _ in skip)
        report.missed.extend(d for d, _ in miss)
        for due, entry in run:
            await self._hand_off(due, entry, report, snooze_row=None)
        for row, due in agenda.woken(now):
            await self._wake(row, due, agenda.people[due.person_id], now, report)
        if report.sent:
            self.host.outbox.notify()
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

    async def _record(self, items: Sequence[tuple[Due, str]], status: SendStatus, now: datetime) -> None:
        await ledger.record(
            self.host.factory, [d for d, _ in items], status=status, reasons=[r for _, r in items], now=now
        )

    async def _wake(
        self, row: ScheduledSend, due: Due, person: Person, now: datetime, report: TickReport
    ) -> None:
        if on_leave(person, local_today(now, due.tz)):
            report.waiting.append(due)
            return
        if now - due.at > self.horizon:
            try:
                async with self.host.factory() as session, session.begin():
                    await ledger.wake(
                        session, row.id, status=SendStatus.MISSED, reason="snooze older than the horizon"
                    )
                report.missed.append(due)
            except ledger.Taken:
                report.taken += 1
            return
        entry = self.jobs.entry(due.job)
        if entry is None:
            report.waiting.append(due)
            return
        await self._hand_off(due, entry, report, snooze_row=row.id)

    async def _hand_off(
        self, due: Due, entry: Entry[Any], report: TickReport, *, snooze_row: int | None
    ) -> None:
        """Key first, then the flow, in one transaction: whoever inserts the key first sends."""

        async def job(ctx: Context) -> None:
            if snooze_row is None:
                row = await ledger.claim(ctx.session, due, now=ctx.now)
            else:
                await ledger.wake(ctx.session, snooze_row, status=SendStatus.SENT)
                row = None
            result = await entry.run(ctx, due.args)
            if row is not None and (result is None or result is False or result == 0):
                row.reason = "nothing to send"

        try:
            await self.host.run_for_person(due.person_id, job)
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
