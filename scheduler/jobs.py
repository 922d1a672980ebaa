"""The APScheduler wiring: an election job and a tick job on an ``AsyncIOScheduler``.

APScheduler only paces the work (every ``tick_seconds`` of wall time, coalescing runs it missed, never two
ticks at once); *what* is due is decided from the service clock and the database by ``Scheduler.tick``,
so a paused or slow process catches up in one tick rather than replaying every missed one.

Each beat runs the tick, then every sweep of the table, through one error path: a run is counted in
``job_runs`` (``ok`` / ``error``), a failure is logged, and the next beat simply runs it again.

The app runs ``SchedulerRunner(service, table).run(stop)`` as a ``Service.background`` job in every
replica; the advisory lock (``scheduler.leader``) makes only one of them tick.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.agenda import CHUNK
from scheduler.calendar import WorkCalendar
from scheduler.engine import Scheduler, TickReport
from scheduler.leader import Leadership
from scheduler.table import JobTable, SchedulerHost

log = logging.getLogger("perfloop.scheduler")

T = TypeVar("T")

TICK_JOB = "perfloop.scheduler.tick"
ELECT_JOB = "perfloop.scheduler.elect"
DEFAULT_LOCK_RETRY_SECONDS = 15.0
"""How often a follower tries the lock: the bound on a take-over after the leader dies (plus PostgreSQL
noticing the dead session, immediate for a killed process)."""


class SchedulerRunner:
    """One replica's scheduler: elect, tick while leader, stop cleanly (a running tick is finished)."""

    def __init__(
        self,
        host: SchedulerHost,
        jobs: JobTable,
        *,
        tick_seconds: float | None = None,
        lock_retry_seconds: float = DEFAULT_LOCK_RETRY_SECONDS,
        calendar: WorkCalendar | None = None,
        name: str = "",
        chunk: int = CHUNK,
    ) -> None:
        self.host = host
        self.jobs = jobs
        self.scheduler = Scheduler(host, jobs, calendar=calendar, chunk=chunk)
        self.leadership = Leadership(host.settings.database.url, name=name)
        self.tick_seconds = float(tick_seconds or host.settings.schedule.tick_seconds)
        self.lock_retry_seconds = lock_retry_seconds
        self.ticks = 0
        self.last_report: TickReport | None = None
        self._busy = asyncio.Lock()
        self._aps: AsyncIOScheduler | None = None

    async def elect(self) -> None:
        was = self.leadership.is_leader
        try:
            now_leader = await self.leadership.acquire()
        except Exception:
            log.exception("scheduler election failed; retrying")
            return
        if now_leader and not was and self._aps is not None:
            self._aps.modify_job(TICK_JOB, next_run_time=datetime.now(UTC))  # take over without waiting

    async def beat(self) -> None:
        async with self._busy:
            if not await self.leadership.still_leader():
                return
            report = await self.run_job("scheduler.tick", self.scheduler.tick)
            if report is not None:
                self.last_report = report
            for sweep in self.jobs.sweeps:
                await self.run_job(sweep.name, functools.partial(sweep.run, self.host))
            self.host.outbox.notify()
            self.ticks += 1

    async def run_job(self, name: str, job: Callable[[], Awaitable[T]]) -> T | None:
        """The one error path: count the run, log a failure (None), leave the retry to the next beat."""
        runs = self.host.metrics.job_runs
        try:
            result = await job()
        except Exception:
            runs.labels(name, "error").inc()
            log.exception("scheduled job failed; the next tick runs it again", extra={"job": name})
            return None
        runs.labels(name, "ok").inc()
        return result

    async def run(self, stop: asyncio.Event) -> None:
        aps = AsyncIOScheduler(timezone=UTC)
        self._aps = aps
        aps.add_job(
            self.elect,
            IntervalTrigger(seconds=self.lock_retry_seconds),
            id=ELECT_JOB,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        aps.add_job(
            self.beat,
            IntervalTrigger(seconds=self.tick_seconds),
            id=TICK_JOB,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        aps.start()
        try:
            await stop.wait()
        finally:
            aps.shutdown(wait=False)
            self._aps = None
            async with self._busy:  # let a running tick finish before the lock goes
                await self.leadership.release()
