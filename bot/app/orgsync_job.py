"""Keeping the org current: a daily full sync per platform, and a prompt one after a member-change event.

A member-change callback only says *who* changed; the truth (department, direct leader, active) comes from
the contact API, so a change schedules a sync of that platform a few seconds later (several changes in a
burst collapse into one sync). A deleted member is deactivated at once, in the callback's own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.orgsync import SyncReport, apply_org, workspace_for
from bot.core.events import MemberChanged
from storage.models import Person, Workspace

if TYPE_CHECKING:
    from bot.app.service import Service

log = logging.getLogger("perfloop.orgsync")

DAILY_SECONDS = 24 * 3600


class OrgSyncJob:
    def __init__(self, service: Service, *, debounce_seconds: float = 5.0) -> None:
        self.service = service
        self.debounce_seconds = debounce_seconds
        self._pending: set[str] = set()
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
        adapter = self.service.registry.get(platform)
        org = await adapter.list_org()
        settings = self.service.settings
        async with self.service.factory() as session, session.begin():
            ws = await workspace_for(session, adapter.platform, adapter.workspace)
            report = await apply_org(
                session,
                ws,
                org,
                default_timezone=settings.schedule.default_timezone,
                default_locale=settings.i18n.default_locale,
            )
        log.info("org synced", extra={"platform": platform, "report": report.summary()})
        return report

    def platforms(self) -> list[str]:
        return [a.platform for a in self.service.registry if a.platform not in ("sim", "rec")]

    async def run(self, service: Service, stop: asyncio.Event) -> None:
        """Background task: one sync per platform at start-up and daily, plus debounced on-demand syncs."""
        del service
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while not stop.is_set():
            if loop.time() >= next_full:
                self._pending.update(self.platforms())
                next_full = loop.time() + DAILY_SECONDS
            if self._pending:
                await asyncio.sleep(self.debounce_seconds)
                todo, self._pending = self._pending, set()
                for platform in sorted(todo):
                    try:
                        await self.sync(platform)
                    except Exception as exc:
                        log.warning("org sync failed", extra={"platform": platform, "error": str(exc)[:300]})
            self._wake.clear()
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            timeout = max(1.0, next_full - loop.time())
            _done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
