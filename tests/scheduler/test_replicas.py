"""Two scheduler instances against one PostgreSQL database: one leader, each item once, fail-over.

The second test runs the first replica as a real process and SIGKILLs it, which is what "the active replica
dies" means: no cleanup runs, PostgreSQL ends the session and the advisory lock with it.
Run as ``python -m tests.scheduler.test_replicas <db url> <iso time>`` it is that replica.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.registry import AdapterRegistry
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.schedule import Job
from scheduler.jobs import SchedulerRunner
from scheduler.leader import Leadership
from storage.models import Base, CheckIn, OutboxMessage, ScheduledSend
from tests.fakes.recording import RecordingAdapter
from tests.scheduler.test_tick import CHECKIN_DUE, Flows
from tests.support.factories import Org, seed_org

ROOT = Path(__file__).resolve().parents[2]
FAST = {"tick_seconds": 0.05, "lock_retry_seconds": 0.1}
JOBS = (Job.OPEN_CHECKIN, Job.SEND_DIGEST)


def make_service(url: str, clock: FixedClock) -> Service:
    registry = AdapterRegistry()
    registry.add(RecordingAdapter())
    return build_service(
        Settings(database={"url": url}, sim={"enabled": False}), clock=clock, registry=registry
    )


@pytest.fixture
async def pg_url(pg_database: str) -> AsyncIterator[str]:
    engine = create_async_engine(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield pg_database


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def count(service: Service, stmt: object) -> int:
    async with service.factory() as s:
        return int(await s.scalar(stmt) or 0)  # type: ignore[call-overload]


def sent_rows(period: str) -> object:
    return (
        select(func.count())
        .select_from(ScheduledSend)
        .where(
            ScheduledSend.flow == "checkin", ScheduledSend.period == period, ScheduledSend.status == "sent"
        )
    )


async def seed(service: Service) -> Org:
    async with service.factory() as session, session.begin():
        return await seed_org(session, platform="rec", app_id="rec-app")


async def test_two_instances_one_leader_each_item_once_and_take_over(pg_url: str) -> None:
    clock = FixedClock(CHECKIN_DUE + timedelta(minutes=1))
    a, b = make_service(pg_url, clock), make_service(pg_url, clock)
    await seed(a)
    flows = Flows()
    runners = [SchedulerRunner(svc, flows.table(*JOBS), name=n, **FAST) for svc, n in ((a, "a"), (b, "b"))]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(r.run(s)) for r, s in zip(runners, stops, strict=True)]
    try:
        await eventually(lambda: _ge(a, "2026-12-04", 5))
        await asyncio.sleep(0.5)  # many more ticks on both sides
        assert len(flows.of("open_checkin")) == 5 and len(flows.of("send_digest")) == 1
        assert [r.leadership.is_leader for r in runners].count(True) == 1
        lead = 0 if runners[0].leadership.is_leader else 1
        assert runners[lead].ticks >= 3 and runners[1 - lead].ticks == 0
        # The leader stops; the other takes over within the retry interval and carries on.
        stops[lead].set()
        await tasks[lead]
        clock.set(CHECKIN_DUE + timedelta(weeks=2))
        took = await eventually(lambda: _ge(a, "2026-12-18", 5))
        assert took < 5 and runners[1 - lead].ticks > 0
        await asyncio.sleep(0.3)
        assert len(flows.of("open_checkin")) == 10 and len(flows.of("send_digest")) == 2
        assert await count(a, select(func.count()).select_from(OutboxMessage)) == 12
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(*tasks)
        await a.close()
        await b.close()


async def _ge(service: Service, period: str, n: int) -> bool:
    return await count(service, sent_rows(period)) >= n


async def test_killing_the_active_process_lets_the_other_take_over(pg_url: str) -> None:
    clock = FixedClock(CHECKIN_DUE + timedelta(minutes=1))
    b = make_service(pg_url, clock)
    await seed(b)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.scheduler.test_replicas",
        pg_url,
        clock.now().isoformat(),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    flows = Flows()
    runner = SchedulerRunner(b, flows.table(*JOBS), name="b", **FAST)
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await eventually(lambda: _ge(b, "2026-12-04", 5), timeout=30)  # the process did the work
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(0.5)
        assert runner.ticks == 0 and not runner.leadership.is_leader  # the process holds the lock
        assert flows.calls == []
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        clock.set(CHECKIN_DUE + timedelta(weeks=2))
        took = await eventually(lambda: _ge(b, "2026-12-18", 5))
        assert took < 5 and runner.leadership.is_leader
        await asyncio.sleep(0.3)
        assert sorted(p for _, p in flows.of("open_checkin")) == ["2026-12-18"] * 5
        per_person = select(func.count()).select_from(CheckIn)
        assert await count(b, per_person) == 10  # five people, two check-ins each, none twice
        assert await count(b, sent_rows("2026-12-04")) == 5
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        stop.set()
        if task is not None:
            await task
        await b.close()


async def _replica(url: str, at: str) -> None:
    """The other replica: schedules with the same fast intervals until it is killed."""
    service = make_service(url, FixedClock(datetime.fromisoformat(at)))
    await SchedulerRunner(service, Flows().table(*JOBS), name="process", **FAST).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(_replica(sys.argv[1], sys.argv[2]))


async def test_a_leader_whose_session_dies_steps_down(pg_url: str) -> None:
    """A leader cut off from the database (session terminated, network gone) must stop acting as leader."""
    first, second = Leadership(pg_url, name="first"), Leadership(pg_url, name="second")
    admin = create_async_engine(pg_url)
    try:
        assert await first.acquire() and await first.still_leader()
        assert not await second.acquire() and not second.is_leader
        async with admin.begin() as conn:
            pids = (
                (await conn.execute(text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")))
                .scalars()
                .all()
            )
            assert len(pids) == 1
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        assert not await first.still_leader() and not first.is_leader
        assert await second.acquire() and await second.still_leader()
        await second.release()
        assert await first.acquire()  # released on purpose: free at once
    finally:
        await first.release()
        await second.release()
        await admin.dispose()
