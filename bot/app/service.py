"""Service assembly: the database, clock, adapters, dispatcher and outbox that one process runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.registry import AdapterRegistry
from bot.app.dispatcher import Dispatcher
from bot.app.flows import collect_routers
from bot.app.metrics import Metrics
from bot.app.outbox import OutboxDelivery
from bot.core.clock import Clock
from bot.core.config import Settings
from storage.db import create_engine, session_factory
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

    async def close(self) -> None:
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
        factory=factory, settings=settings, router=collect_routers(), registry=registry, clock=clock
    )
    metrics = Metrics()
    outbox = OutboxDelivery(
        factory=factory, registry=registry, settings=settings, clock=clock, metrics=metrics
    )
    metrics.watch_rate_limits(outbox.buckets)
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
    for adapter in registry:
        bind = getattr(adapter, "bind_service", None)
        if bind is not None:
            bind(service)
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
