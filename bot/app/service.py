"""Service assembly: the database, clock, adapters, dispatcher and outbox that one process runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.base import AppLinks
from adapters.registry import AdapterRegistry
from bot.app.directory import DatabaseDirectory
from bot.app.dispatcher import Dispatcher
from bot.app.flows import SCHEDULE, collect_routers
from bot.app.ingress import Ingress
from bot.app.launches import LaunchWriter
from bot.app.metrics import Metrics
from bot.app.outbox import OutboxDelivery
from bot.app.retention import RetentionJob
from bot.app.signatures import DatabaseSignatures
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Context
from bot.core.schedule import ScheduleEntry
from bot.core.schedule_port import SchedulePort
from scheduler.jobs import SchedulerRunner
from scheduler.port import SchedulerPort
from scheduler.table import JobTable
from storage.db import create_engine, ensure_migrated, session_factory
from storage.media import MediaStore
from storage.models import Workspace

BackgroundTask = Callable[["Service", asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Service:
    settings: Settings
    engine: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: AdapterRegistry
    dispatcher: Dispatcher
    outbox: OutboxDelivery
    metrics: Metrics = field(default_factory=Metrics)
    background: list[BackgroundTask] = field(default_factory=list)
    run_outbox: bool = True
    ingress: Ingress = field(init=False)
    """The one way events enter (adapters hold it as their event sink): dispatch, wake the outbox, count."""
    launches: LaunchWriter = field(init=False)
    """Writes the rest of every started kickoff, a chunk per transaction (runs beside the outbox)."""

    def __post_init__(self) -> None:
        self.ingress = Ingress(dispatcher=self.dispatcher, outbox=self.outbox, metrics=self.metrics)
        self.launches = LaunchWriter(
            factory=self.factory,
            registry=self.registry,
            settings=self.settings,
            clock=self.clock,
            outbox=self.outbox,
        )

    @property
    def schedule(self) -> SchedulePort:
        """The scheduler's answers for a sweep (``Host.schedule``): the same port every Context carries."""
        if self.dispatcher.schedule is None:
            raise RuntimeError("no scheduler port on this service's dispatcher")
        return self.dispatcher.schedule

    async def run_for_person(self, person_id: int, fn: Callable[[Context], Awaitable[None]]) -> None:
        """Scheduled work for one person, in its own transaction (what a schedule entry's ``Host`` offers)."""
        await self.dispatcher.run_for_person(person_id, fn)

    async def close(self) -> None:
        await self.dispatcher.close()
        for adapter in self.registry:
            await adapter.close()
        await self.engine.dispose()


def build_service(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: AdapterRegistry | None = None,
    engine: AsyncEngine | None = None,
) -> Service:
    clock = clock or Clock()
    engine = engine or create_engine(
        settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    factory = session_factory(engine)
    registry = registry if registry is not None else AdapterRegistry.from_settings(settings)
    dispatcher = Dispatcher(
        factory=factory,
        settings=settings,
        router=collect_routers(),
        registry=registry,
        clock=clock,
        schedule=SchedulerPort(settings),
    )
    metrics = Metrics()
    outbox = OutboxDelivery(
        factory=factory, registry=registry, settings=settings, clock=clock, metrics=metrics
    )
    metrics.watch_rate_limits(outbox.buckets)
    if dispatcher.clicks is not None:
        metrics.watch_click_groups(dispatcher.clicks)
    service = Service(
        settings=settings,
        engine=engine,
        factory=factory,
        clock=clock,
        registry=registry,
        dispatcher=dispatcher,
        outbox=outbox,
        metrics=metrics,
    )
    registry.attach(
        AppLinks(
            sink=service.ingress,
            clock=clock,
            media=MediaStore(settings.media.dir, max_bytes=settings.media.max_image_bytes),
            directory=DatabaseDirectory(factory, settings),
            signatures=DatabaseSignatures(factory, clock),
        )
    )
    return service


async def ensure_workspaces(service: Service) -> None:
    async with service.factory() as session, session.begin():
        for adapter in service.registry:
            found = await session.scalar(
                select(Workspace).where(
                    Workspace.platform == adapter.platform, Workspace.app_id == adapter.workspace
                )
            )
            if found is None:
                session.add(
                    Workspace(
                        platform=adapter.platform,
                        app_id=adapter.workspace,
                        name=f"{adapter.platform}:{adapter.workspace}",
                    )
                )


@asynccontextmanager
async def cli_service(settings: Settings) -> AsyncIterator[Service]:
    """A service for one command-line run (``perfloop send``, ``kickoff``, ``cycle close``): migrations
    checked, the configured workspaces known, closed at the end."""
    service = build_service(settings)
    try:
        await ensure_migrated(service.engine)
        await ensure_workspaces(service)
        yield service
    finally:
        await service.close()


def scheduler_job(*extra: ScheduleEntry) -> BackgroundTask:
    """The scheduler as a background job of every ``perfloop run`` replica (the advisory lock makes one of
    them tick): every flow's schedule entries from the registry plus the app's own (``extra``: org sync).

    The table is checked here, before the server starts: a job without an entry stops the start-up. The
    retention sweep (issue 16 #12/#13) is always in it: bounded tables are not optional."""
    jobs = JobTable([*SCHEDULE, *extra, RetentionJob().entry()])

    async def run_scheduler(service: Service, stop: asyncio.Event) -> None:
        await SchedulerRunner(service, jobs).run(stop)

    return run_scheduler
