"""Keeping the org current: a daily full sync per platform, and a prompt one after a member-change event.

The full sync is a schedule entry (``entry()``): the scheduler's leader runs it at its first tick and then
daily, through the scheduler's error path (counted in ``job_runs``, logged), so N replicas do not crawl the
contact API N times. A platform whose sync failed stays owed until a sync succeeds and is tried again with
backoff (issue 16 #9: a fresh install must not wait for people because of one 502): after 5 s, then 10 s,
20 s… doubling up to 10 minutes, by the background task between ticks as well as at a tick once its time
has come. Retries continue on the replica that owed them even if it loses the lead meanwhile: a second
crawl is idempotent, only a little wasted.

A member-change callback only says *who* changed; the truth (department, direct leader, active) comes from
the contact API, so a change schedules a sync of that platform a few seconds later on the replica that heard
it (several changes in a burst collapse into one sync; a failure waits for the daily sync). A deleted member
is deactivated at once, in the callback's own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.orgsync import SyncReport, sync_platform
from bot.core.events import MemberChanged
from bot.core.schedule import Host, Sweep
from storage.models import Person, Workspace

if TYPE_CHECKING:
    from bot.app.service import Service

log = logging.getLogger("perfloop.orgsync")

DAILY_SECONDS = 24 * 3600
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 600.0


class OrgSyncJob:
    def __init__(
        self,
        service: Service,
        *,
        debounce_seconds: float = 5.0,
        every_seconds: float = DAILY_SECONDS,
        retry_first_seconds: float = RETRY_FIRST_SECONDS,
        retry_max_seconds: float = RETRY_MAX_SECONDS,
    ) -> None:
        self.service = service
        self.debounce_seconds = debounce_seconds
        self.every_seconds = every_seconds
        self.retry_first_seconds = retry_first_seconds
        self.retry_max_seconds = retry_max_seconds
        self._owed: set[str] = set()
        """Platforms the full sync still owes (all of them once a day; a failed one until it succeeds)."""
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        """Loop time before which a failed platform is not tried again (absent: due now)."""
        self._syncing = asyncio.Lock()
        """The tick and the background retry never crawl at the same time."""
        self._next_full: float | None = None
        self._pending: set[str] = set()
        """Platforms whose members changed, heard by this replica."""
        self._wake = asyncio.Event()
        service.dispatcher.member_hook = self.on_member_changed

    async def on_member_changed(
        self, session: AsyncSession, workspace: Workspace, event: MemberChanged
    ) -> None:
        if event.change == "deleted":
            await session.execute(
                update(Person)
                .where(Person.workspace_id == workspace.id, Person.platform_user_id == event.user_id)
                .values(active=False)
            )
            log.info(
                "member left: deactivated", extra={"platform": workspace.platform, "user": event.user_id}
            )
            return
        self._pending.add(workspace.platform)
        self._wake.set()

    async def sync(self, platform: str) -> SyncReport:
        service = self.service
        report = await sync_platform(service.registry.get(platform), service.factory, service.settings)
        log.info("org synced", extra={"platform": platform, "report": report.summary()})
        return report

    def platforms(self) -> list[str]:
        return [a.platform for a in self.service.registry if a.platform not in ("sim", "rec")]

    def entry(self) -> Sweep:
        """The daily full sync as a schedule entry, for the scheduler's table."""
        return Sweep("org_sync", self.sync_owed)

    async def sync_owed(self, host: Host) -> None:
        """Every tick on the leader: sync each platform that is owed (all of them at the first tick and then
        every ``every_seconds``) and whose retry time has come. Every due platform is tried; the failures are
        raised together, and they stay owed, retried with backoff between ticks by ``run``."""
        del host  # the adapters are the app's: this job holds the service
        now = asyncio.get_running_loop().time()
        if self._next_full is None or now >= self._next_full:
            self._owed.update(self.platforms())
            self._next_full = now + self.every_seconds
        _tried, errors = await self._sync_due()
        if errors:
            raise ExceptionGroup(f"org sync failed: {', '.join(sorted(self._owed))}", errors)

    def backoff(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` failures in a row: short first, doubling, capped."""
        return float(min(self.retry_first_seconds * 2.0 ** max(failures - 1, 0), self.retry_max_seconds))

    async def _sync_due(self) -> tuple[int, list[Exception]]:
        """Sync the owed platforms whose retry time has come: (how many were tried, their failures)."""
        tried = 0
        errors: list[Exception] = []
        async with self._syncing:
            loop = asyncio.get_running_loop()
            for platform in sorted(self._owed):
                if self._retry_at.get(platform, 0.0) > loop.time():
                    continue
                tried += 1
                try:
                    await self.sync(platform)
                except Exception as exc:
                    failures = self._failures.get(platform, 0) + 1
                    self._failures[platform] = failures
                    delay = self.backoff(failures)
                    self._retry_at[platform] = loop.time() + delay
                    log.warning(
                        "org sync failed; trying again",
                        extra={"platform": platform, "error": str(exc)[:300], "retry_in": delay},
                    )
                    errors.append(exc)
                else:
                    self._owed.discard(platform)
                    self._failures.pop(platform, None)
                    self._retry_at.pop(platform, None)
        if errors:
            self._wake.set()  # the background task sleeps until the earliest retry
        return tried, errors

    def _next_retry_in(self) -> float | None:
        """Seconds until the earliest owed platform may be tried again; None when nothing is owed."""
        if not self._owed:
            return None
        now = asyncio.get_running_loop().time()
        return max(0.0, min(self._retry_at.get(p, now) for p in self._owed) - now)

    async def _retry_owed(self) -> None:
        """Between ticks: the owed platforms whose retry time has come, counted like the sweep's runs."""
        tried, errors = await self._sync_due()
        if tried:  # nothing tried: the tick got there first
            self.service.metrics.job_runs.labels("org_sync", "error" if errors else "ok").inc()

    async def run(self, service: Service, stop: asyncio.Event) -> None:
        """Background task of every replica: a debounced sync of each platform whose members changed, and
        the backed-off retries of a failed full sync (only the leader, which ran it, owes any)."""
        del service
        while not stop.is_set():
            if self._pending:
                await asyncio.sleep(self.debounce_seconds)
                todo, self._pending = self._pending, set()
                for platform in sorted(todo):
                    try:
                        await self.sync(platform)
                    except Exception as exc:
                        log.warning("org sync failed", extra={"platform": platform, "error": str(exc)[:300]})
                continue
            retry_in = self._next_retry_in()
            if retry_in == 0.0:
                await self._retry_owed()
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _done, pending = await asyncio.wait(waits, timeout=retry_in, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
