"""The APScheduler wiring: an election job and a tick job on an ``AsyncIOScheduler``.

APScheduler only paces the work (every ``tick_seconds`` of wall time, coalescing runs it missed, never two
ticks at once); *what* is due is decided from the service clock and the database by ``Scheduler.tick``,
so a paused or slow process catches up in one tick rather than replaying every missed one.

``run_scheduler(service, stop)`` is a ``Service.background`` job: ``perfloop run`` appends it and every
replica runs it; the advisory lock (``scheduler.leader``) makes only one of them tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app.service import Service
from scheduler.calendar import WorkCalendar
from scheduler.engine import Scheduler, TickReport
from scheduler.flows import FlowTable
from scheduler.leader import Leadership

log = logging.getLogger("perfloop.scheduler")

Sweep = Callable[[Service], Awaitable[Any]]

TICK_JOB = "perfloop.scheduler.tick"
ELECT_JOB = "perfloop.scheduler.elect"
DEFAULT_LOCK_RETRY_SECONDS = 15.0
"""How often a follower tries the lock: the bound on a take-over after the leader dies (plus PostgreSQL
noticing the dead session, immediate for a killed process)."""


class SchedulerRunner:
    """One replica's scheduler: elect, tick while leader, stop cleanly (a running tick is finished)."""

    def __init__(
        self,
        service: Service,
        *,
        tick_seconds: float | None = None,
        lock_retry_seconds: float = DEFAULT_LOCK_RETRY_SECONDS,
        flows: FlowTable | None = None,
        calendar: WorkCalendar | None = None,
        name: str = "",
        sweeps: Sequence[Sweep] = (),
    ) -> None:
        self.service = service
        self.sweeps = list(sweeps)
        self.scheduler = Scheduler(service, flows=flows, calendar=calendar)
        self.leadership = Leadership(service.settings.database.url, name=name)
        self.tick_seconds = float(tick_seconds or service.settings.schedule.tick_seconds)
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
            runs = self.service.metrics.job_runs
            try:
                self.last_report = await self.scheduler.tick()
                runs.labels("scheduler.tick", "ok").inc()
            except Exception:
                runs.labels("scheduler.tick", "error").inc()
                log.exception("scheduler tick failed")
            for sweep in self.sweeps:
                name = getattr(sweep, "__name__", "sweep")
                try:
                    await sweep(self.service)
                    runs.labels(name, "ok").inc()
                except Exception:
                    runs.labels(name, "error").inc()
                    log.exception("scheduler sweep failed", extra={"sweep": name})
            self.service.outbox.notify()
            self.ticks += 1

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


def default_sweeps() -> list[Sweep]:
    """Record-driven jobs that, like the tick, must run on the leader only (deliverable-rating reminders and
    expiry, self-assessments opened near a cycle's end)."""
    from handlers.feedback.deliverable_ratings import sweep_deliverable_ratings
    from handlers.feedback.self_assessment import sweep_self_assessments

    return [sweep_deliverable_ratings, sweep_self_assessments]


async def run_scheduler(service: Service, stop: asyncio.Event) -> None:
    """The ``Service.background`` entry point used by ``perfloop run``."""
    await SchedulerRunner(service, sweeps=default_sweeps()).run(stop)
