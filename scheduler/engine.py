"""One scheduler tick: find what is owed now, record what will not be sent, hand the rest to the flows.

A tick is idempotent by construction: it recomputes "owed now" from the calendar and the records and skips
keys already in the ledger, so it does not matter how many ticks ran (or did not run) before it. After
downtime only the *latest* occurrence of each series (and, per record, the latest step for each person it
tells) is owed: the service sends once, not once per missed tick, and a ladder never skips a rung (the
owner's overdue card before the manager's escalation); an item older than ``catchup_horizon_hours`` is
recorded as ``missed`` instead of sent (a state change, such as an escalation, never expires).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.batch import Batch
from bot.core.context import Context
from bot.core.localtime import local_today
from bot.core.schedule import BatchEntry, Entry, JobArgs, Owed
from bot.core.status import SendStatus
from scheduler import ledger
from scheduler.agenda import CHUNK, Agenda, Memo, Owing, chunks
from scheduler.cadence import Due, Policy
from scheduler.calendar import WorkCalendar, calendar_from_settings
from scheduler.table import JobTable, SchedulerHost
from storage.models import ScheduledSend
from storage.queries import scheduled as sq
from storage.queries.people import on_leave
from storage.queries.scheduled import PersonRow

log = logging.getLogger("perfloop.scheduler")

SETTLING = 2
"""Chunks settled at the same time by one tick (each holds a connection and a chunk's rows in memory)."""
GROUP_QUERY = 20
"""People sharing a series key from whom on the ledger is asked once for the key over the chunk's id range;
fewer (a key-result rhythm's own key) are looked up together with the record steps, by flow."""


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
    def __init__(
        self, host: SchedulerHost, jobs: JobTable, *, calendar: WorkCalendar | None = None, chunk: int = CHUNK
    ) -> None:
        self.host = host
        self.settings = host.settings
        self.jobs = jobs
        self.calendar = calendar or calendar_from_settings(host.settings)
        self.chunk = chunk
        """People per chunk (``scheduler.agenda.CHUNK``): tests make it small to cross chunk boundaries."""

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.schedule.catchup_horizon_hours)

    # ------------------------------------------------------------------------------------ the tick
    async def tick(self) -> TickReport:
        """Chunk by chunk (``scheduler.agenda.CHUNK`` people): what the chunk owes and is not in the ledger,
        then settled, so a wave of 100,000 costs the memory of a few chunks. Up to ``SETTLING`` chunks are
        settled at once, each in its own transaction, while the next is read: one chunk's cards are built
        while the database inserts another's, so the database and this process work at the same time.
        Chunks are disjoint ranges of people, so nothing one does depends on another."""
        now = self.host.clock.now()
        report = TickReport()
        memo = Memo(now)
        settling: list[asyncio.Task[None]] = []
        reading = chunks(self.host.factory, self.settings, self.calendar, memo, limit=self.chunk)
        try:
            async for chunk in reading:
                async with self.host.factory() as session:
                    owed = await self._still_owed(session, chunk, memo)
                while len(settling) >= SETTLING:
                    await settling.pop(0)
                settling.append(asyncio.create_task(self._settle_chunk(chunk, owed, now, report)))
            while settling:
                await settling.pop(0)
        finally:
            for task in settling:
                task.cancel()
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

    async def _still_owed(self, session: AsyncSession, chunk: Agenda, memo: Memo) -> list[Due]:
        """What the chunk owes now and the ledger does not have: a series key shared by many people is one
        lookup over the chunk's id range; record steps (one key per record) are looked up by flow."""
        owed: list[Due] = []
        singles: list[Due] = []
        groups: list[tuple[str, str, list[Owing], JobArgs]] = []
        for (flow, period), parts in chunk.series_owed(memo).items():
            first = parts[0]
            args = first.flow.args(first.occ)  # one arguments object per key, shared by everyone owed it
            if sum(len(p.person_ids) for p in parts) < GROUP_QUERY:
                singles.extend(p.flow.due(pid, p.tz, p.occ, args=args) for p in parts for pid in p.person_ids)
            else:
                groups.append((flow, period, parts, args))
        done = await sq.recorded_people(
            session, [(f, p) for f, p, _, _ in groups], after=chunk.after, upto=chunk.upto
        )
        for (_, _, parts, args), there in zip(groups, done, strict=True):
            owed.extend(
                p.flow.due(pid, p.tz, p.occ, args=args)
                for p in parts
                for pid in p.person_ids
                if pid not in there
            )
        singles.extend(chunk.record_steps(memo))
        by_flow: dict[str, list[Due]] = {}
        for due in singles:
            by_flow.setdefault(due.flow, []).append(due)
        for flow, dues in by_flow.items():
            keys = {(d.person_id, d.period) for d in dues}
            recorded = await sq.recorded_keys(session, flow, keys, after=chunk.after, upto=chunk.upto)
            owed.extend(d for d in dues if (d.person_id, d.period) not in recorded)
        return owed

    async def _settle_chunk(self, chunk: Agenda, owed: list[Due], now: datetime, report: TickReport) -> None:
        await self._settle(chunk, owed, now, report)
        for row, due in chunk.woken(now):
            await self._wake(row, due, chunk.people[due.person_id], now, report)
        if report.sent:
            self.host.outbox.notify()  # this chunk's cards go out while the next chunks are settled

    async def _settle(self, chunk: Agenda, dues: list[Due], now: datetime, report: TickReport) -> None:
        """Record what will not be sent (leave, past the horizon), hand the rest over in time order; a run of
        items of one job that has a batch entry goes over as one batch."""
        owed = sorted(dues, key=lambda d: (d.at, d.flow, d.person_id))
        skip: list[tuple[Due, str]] = []
        miss: list[tuple[Due, str]] = []
        run: list[tuple[Due, Entry[Any]]] = []
        for due in owed:
            person = chunk.people[due.person_id]
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
        i = 0
        while i < len(run):
            due, entry = run[i]
            batch = self.jobs.batch(due.job)
            if batch is None:
                await self._hand_off(due, entry, report, snooze_row=None)
                i += 1
                continue
            j = i
            while j < len(run) and run[j][0].job is due.job:
                j += 1
            await self._hand_off_batch([d for d, _ in run[i:j]], entry, batch, chunk, report, now)
            i = j

    async def _record(self, items: Sequence[tuple[Due, str]], status: SendStatus, now: datetime) -> None:
        await ledger.record(
            self.host.factory, [d for d, _ in items], status=status, reasons=[r for _, r in items], now=now
        )

    async def _wake(
        self, row: ScheduledSend, due: Due, person: PersonRow, now: datetime, report: TickReport
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

    async def _hand_off_batch(
        self,
        dues: list[Due],
        entry: Entry[Any],
        batch: BatchEntry[Any],
        chunk: Agenda,
        report: TickReport,
        now: datetime,
    ) -> None:
        """Keys first, then the flow's batch, in one transaction: only the keys this transaction inserted are
        handed over (another replica's are skipped, as ``Taken`` is for one). If the batch fails, the
        transaction rolls back and every item is handed over on its own, so one bad record fails alone."""
        mine: list[Due] = []
        try:
            async with self.host.factory() as session, session.begin():
                claimed = await ledger.claim_many(session, dues, now=now)
                mine = [d for d in dues if d.key in claimed]
                if mine:
                    writer = Batch(
                        session=session, settings=self.settings, now=now, platforms=chunk.platforms
                    )
                    items = [Owed(chunk.people[d.person_id], d.args) for d in mine]
                    nothing = {id(o) for o in await batch.run(writer, items)}
                    await writer.flush()
                    if nothing:
                        quiet = [d.key for d, o in zip(mine, items, strict=True) if id(o) in nothing]
                        await ledger.note(session, quiet, "nothing to send")
        except Exception:
            log.exception(
                "scheduled batch failed; handing its items over one by one",
                extra={"job": str(batch.job), "items": len(dues)},
            )
            for due in dues:
                await self._hand_off(due, entry, report, snooze_row=None)
            return
        report.sent.extend(mine)
        report.taken += len(dues) - len(mine)
