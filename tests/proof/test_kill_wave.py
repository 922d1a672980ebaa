"""A scheduled wave survives SIGKILL: everyone due gets exactly one check-in, one ledger row and one card.

Each replica is a process of its own (``python -m tests.proof.test_kill_wave URL TIME NAME``): the scheduler
runner with the real schedule entries, its clock fixed at the wave's minute, chunks of 20 people, and each
chunk's batch held open a moment before it commits, so that a kill lands in the middle of the wave and,
often, inside a chunk's transaction. How exactly-once holds: a chunk's ledger keys, check-ins, outbox rows
and audit rows commit together or not at all, so the killed replica leaves whole chunks behind; the next
leader (the other replica on PostgreSQL once the dead session frees the advisory lock; the restarted process
on SQLite) finds those keys in the ledger and opens only the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.registry import AdapterRegistry
from bot.app.flows import SCHEDULE
from bot.app.service import build_service
from bot.core.batch import Batch
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.schedule import BatchEntry, Job, Owed, PeriodArgs, ScheduleEntry
from scheduler.jobs import SchedulerRunner
from scheduler.table import JobTable
from storage.db import create_engine, session_factory
from storage.models import AuditLog, CheckIn, OutboxMessage, ScheduledSend
from tests.fakes.recording import RecordingAdapter
from tests.support.kill import wait_until
from tests.support.wave import CHECKINS_AT, WAVE_DAY, WaveOrg, seed_wave

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PLAIN = 300
CHUNK = 20
HOLD = 0.25
"""Seconds each chunk's transaction stays open before it commits: the wave takes a few seconds."""
PERIOD = WAVE_DAY.isoformat()


def _slow_table() -> JobTable:
    from handlers.checkin.wave import open_checkins

    async def slow(batch: Batch, owed: Sequence[Owed[PeriodArgs]]) -> list[Owed[PeriodArgs]]:
        nothing = list(await open_checkins(batch, owed))
        await asyncio.sleep(HOLD)
        return nothing

    entries: list[ScheduleEntry] = [
        e for e in SCHEDULE if not (isinstance(e, BatchEntry) and e.job is Job.OPEN_CHECKIN)
    ]
    entries.append(BatchEntry(Job.OPEN_CHECKIN, PeriodArgs, slow))
    return JobTable(entries)


async def _replica(url: str, at: str, name: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    registry = AdapterRegistry()
    registry.add(RecordingAdapter())
    service = build_service(
        Settings(database={"url": url}, sim={"enabled": False}),
        clock=FixedClock(datetime.fromisoformat(at)),
        registry=registry,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner = SchedulerRunner(
        service, _slow_table(), tick_seconds=0.5, lock_retry_seconds=0.2, name=name, chunk=CHUNK
    )
    await runner.run(stop)
    await service.close()


def _start(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.proof.test_kill_wave", url, CHECKINS_AT.isoformat(), name],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _opened(url: str) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(CheckIn)
                    .where(CheckIn.period == PERIOD, CheckIn.status == "open")
                )
                or 0
            )
    finally:
        await engine.dispose()


async def _seed(url: str) -> WaveOrg:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s, s.begin():
            return await seed_wave(s, plain=PLAIN)
    finally:
        await engine.dispose()


async def _assert_exactly_once(url: str, org: WaveOrg) -> None:
    due = org.due_checkins
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            checkins = (
                await s.execute(
                    select(CheckIn.person_id, func.count())
                    .where(CheckIn.period == PERIOD)
                    .group_by(CheckIn.person_id)
                )
            ).all()
            ledger = (
                await s.execute(
                    select(ScheduledSend.person_id, func.count())
                    .where(
                        ScheduledSend.flow == "checkin",
                        ScheduledSend.period == PERIOD,
                        ScheduledSend.status == "sent",
                    )
                    .group_by(ScheduledSend.person_id)
                )
            ).all()
            cards = (
                await s.execute(
                    select(OutboxMessage.recipients).where(OutboxMessage.dedupe_key.like("checkin:%:open"))
                )
            ).all()
            audit = int(
                await s.scalar(
                    select(func.count()).select_from(AuditLog).where(AuditLog.action == "checkin.opened")
                )
                or 0
            )
    finally:
        await engine.dispose()
    per_person = dict(checkins)
    assert set(per_person) == due | {org.ids["early"]}, "somebody due was missed (or not due was opened)"
    assert set(per_person.values()) == {1}, "somebody was opened twice"
    assert dict(ledger) == {pid: 1 for pid in due | {org.ids["early"]}}
    names = {pid: name for name, pid in org.ids.items()}
    assert sorted(r[0][0] for r in cards) == sorted(names[pid] for pid in due)
    assert audit == len(due)


async def _kill_midway(proc: subprocess.Popen[bytes], url: str, org: WaveOrg) -> int:
    """SIGKILL ``proc`` once part of the wave is committed; returns how many were open then."""
    await wait_until(
        lambda: _at_least(url, 2 * CHUNK), timeout=60, interval=0.05, what="the wave to be under way"
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    opened = await _opened(url)
    assert opened < len(org.due_checkins), "the kill must land before the wave is over"
    return opened


async def _at_least(url: str, n: int) -> bool:
    return await _opened(url) >= n


async def test_a_replica_killed_mid_wave_leaves_the_rest_to_the_other(
    pg_database: str, tmp_path: Path
) -> None:
    from tests.conftest import _truncate_pg

    await _truncate_pg(pg_database)
    org = await _seed(pg_database)
    first = _start(pg_database, "first", tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        await wait_until(
            lambda: _at_least(pg_database, 1), timeout=60, interval=0.05, what="the first replica"
        )
        second = _start(pg_database, "second", tmp_path / "second.log")  # a follower: the lock is taken
        await _kill_midway(first, pg_database, org)
        await wait_until(
            lambda: _at_least(pg_database, len(org.due_checkins)),
            timeout=60,
            what="the other replica to finish",
        )
        await asyncio.sleep(1.5)  # a few more ticks: nothing may be opened again
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
    await _assert_exactly_once(pg_database, org)
    assert "scheduler leadership acquired" in (tmp_path / "second.log").read_text()


async def test_a_process_killed_mid_wave_finishes_it_on_restart(sqlite_url: str, tmp_path: Path) -> None:
    org = await _seed(sqlite_url)
    proc = _start(sqlite_url, "first", tmp_path / "first.log")
    again: subprocess.Popen[bytes] | None = None
    try:
        await _kill_midway(proc, sqlite_url, org)
        again = _start(sqlite_url, "again", tmp_path / "again.log")
        await wait_until(
            lambda: _at_least(sqlite_url, len(org.due_checkins)), timeout=60, what="the restart to finish"
        )
        await asyncio.sleep(1.5)
    finally:
        for p in (proc, again):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=20)
    await _assert_exactly_once(sqlite_url, org)


if __name__ == "__main__":
    asyncio.run(_replica(sys.argv[1], sys.argv[2], sys.argv[3]))
