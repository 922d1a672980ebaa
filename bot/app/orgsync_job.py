"""Keeping the org current: a daily full sync per platform, and a prompt one after a member-change event.

The full sync is a schedule entry (``entry()``): the scheduler's leader runs it at its first tick and then
daily, through the scheduler's error path (counted in ``job_runs``, logged, and a platform that failed is
tried again on the next tick), so N replicas do not crawl the contact API N times.

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


class OrgSyncJob:
    def __init__(
        self, service: Service, *, debounce_seconds: float = 5.0, every_seconds: float = DAILY_SECONDS
    ) -> None:
        self.service = service
        self.debounce_seconds = debounce_seconds
        self.every_seconds = every_seconds
        self._owed: set[str] = set()
        """Platforms the full sync still owes (all of them once a day; a failed one until it succeeds)."""
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
        every ``every_seconds``). Every platform is tried; the failures are raised together, and the ones that
        failed stay owed for the next tick."""
        del host  # the adapters are the app's: this job holds the service
        loop = asyncio.get_running_loop()
        if self._next_full is None or loop.time() >= self._next_full:
            self._owed.update(self.platforms())
            self._next_full = loop.time() + self.every_seconds
        errors: list[Exception] = []
        for platform in sorted(self._owed):
            try:
                await self.sync(platform)
            except Exception as exc:
                log.warning("org sync failed", extra={"platform": platform, "error": str(exc)[:300]})
                errors.append(exc)
            else:
                self._owed.discard(platform)
        if errors:
            raise ExceptionGroup(f"org sync failed: {', '.join(sorted(self._owed))}", errors)

    async def run(self, service: Service, stop: asyncio.Event) -> None:
        """Background task of every replica: a debounced sync of each platform whose members changed."""
        del service
        while not stop.is_set():
            if not self._pending:
                self._wake.clear()
                waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                continue
            await asyncio.sleep(self.debounce_seconds)
            todo, self._pending = self._pending, set()
            for platform in sorted(todo):
                try:
                    await self.sync(platform)
                except Exception as exc:
                    log.warning("org sync failed", extra={"platform": platform, "error": str(exc)[:300]})
