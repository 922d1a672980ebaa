"""The rest of every started kickoff, written a chunk per transaction (issue 22 #3).

Confirming a cycle commits its first chunk of participants and kickoff cards (``handlers/kickoff/launch.py``);
this writer does the rest: one short transaction per chunk, the outbox woken after each commit, so cards go
out while later participants are still being written. Every ``perfloop run`` process runs one (beside its
outbox workers); it looks for unfinished launches at start-up, whenever it is woken and every
``[outbox] poll_seconds``, so a launch cut off by a crash or a restart goes on where its last commit left
it, and a launch started on another replica is finished by whichever gets there (the position moves by
compare-and-set: nobody is written twice). ``perfloop kickoff`` writes its launch to the end itself.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.registry import AdapterRegistry
from bot.app.outbox import OutboxDelivery
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Outbox
from handlers.kickoff.api import LaunchStep, launch_step, launching_cycles
from storage.models import Cycle, Workspace

log = logging.getLogger("perfloop.launch")


def outbox_for(
    registry: AdapterRegistry, session: AsyncSession, workspace: Workspace, clock: Clock
) -> Outbox:
    """An outbox writing into ``session``, batched the way the workspace's platform wants."""
    return Outbox(
        session=session,
        workspace=workspace,
        recipients_per_call=registry.recipients_per_call().get(workspace.platform, 1),
        interactive_recipients_per_call=registry.interactive_recipients_per_call().get(workspace.platform),
        now=clock.now(),
    )


class LaunchWriter:
    def __init__(
        self,
        *,
        factory: async_sessionmaker[AsyncSession],
        registry: AdapterRegistry,
        settings: Settings,
        clock: Clock,
        outbox: OutboxDelivery,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.outbox = outbox
        self._wake = asyncio.Event()
        self._busy = asyncio.Lock()

    def wake(self) -> None:
        """A launch was just begun: write the rest now rather than at the next poll."""
        self._wake.set()

    async def step(self, cycle_id: int) -> LaunchStep:
        """One chunk of ``cycle_id``'s launch in its own transaction; the outbox is woken once it commits."""
        async with self.factory() as session, session.begin():
            cycle = await session.get(Cycle, cycle_id)
            if cycle is None:
                return LaunchStep()
            workspace = await session.get(Workspace, cycle.workspace_id)
            if workspace is None:
                return LaunchStep()
            outbox = outbox_for(self.registry, session, workspace, self.clock)
            step = await launch_step(
                session, outbox, self.settings, cycle, limit=self.settings.cycles.kickoff_chunk
            )
        if step.rows:
            self.outbox.notify()
        return step

    async def finish(self, cycle_id: int) -> int:
        """Write ``cycle_id``'s launch to the end; returns the outbox rows this call wrote."""
        rows = 0
        while True:
            step = await self.step(cycle_id)
            rows += step.rows
            if step.done:
                return rows
            if step.raced:
                await asyncio.sleep(0)  # another writer holds this chunk; read the position again

    async def finish_all(self) -> int:
        """Every unfinished launch, oldest first; one pass at a time per process."""
        async with self._busy:
            async with self.factory() as session:
                pending = await launching_cycles(session)
            rows = 0
            for cycle_id in pending:
                written = await self.finish(cycle_id)
                log.info("kickoff written", extra={"cycle_id": cycle_id, "rows": written})
                rows += written
            return rows

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.finish_all()
            except Exception:
                log.exception("kickoff writer error")
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.outbox.poll_seconds)
            except TimeoutError:
                pass
