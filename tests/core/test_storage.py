from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from bot.app.service import Service
from storage.db import (
    NotMigratedError,
    create_engine,
    ensure_migrated,
    head_revision,
    migrate,
    session_factory,
)
from storage.models import (
    Base,
    CheckIn,
    Cycle,
    CycleParticipant,
    InboundEvent,
    OutboxMessage,
    Person,
    Review321,
    ScheduledSend,
    Workspace,
)
from tests.support.factories import Org


async def test_migrations_create_every_table(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await ensure_migrated(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
    finally:
        await engine.dispose()


async def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(NotMigratedError, match="perfloop migrate"):
            await ensure_migrated(engine)
    finally:
        await engine.dispose()


async def test_migrate_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'twice.db'}"
    await migrate(url)
    await migrate(url)
    engine = create_engine(url)
    try:
        await ensure_migrated(engine)
        assert head_revision() is not None
    finally:
        await engine.dispose()


async def _expect_duplicate_rejected(service: Service, make: object) -> None:
    factory = service.factory
    async with factory() as s, s.begin():
        s.add(make())  # type: ignore[operator]
    with pytest.raises(IntegrityError):
        async with factory() as s, s.begin():
            s.add(make())  # type: ignore[operator]


@pytest.mark.parametrize(
    "kind", ["person", "checkin", "review", "inbound", "scheduled", "cycle", "participant", "outbox"]
)
async def test_natural_keys_reject_duplicates(service: Service, org: Org, kind: str) -> None:
    ws, emp = org.workspace.id, org.emp1.id
    cycle_id = None
    if kind == "participant":
        async with service.factory() as s, s.begin():
            c = Cycle(workspace_id=ws, code="2026-Q1")
            s.add(c)
            await s.flush()
            cycle_id = c.id
    makers = {
        "person": lambda: Person(workspace_id=ws, platform_user_id="dup", name="重复"),
        "checkin": lambda: CheckIn(person_id=emp, period="2026-11-27"),
        "review": lambda: Review321(person_id=emp, period="2026-11"),
        "inbound": lambda: InboundEvent(platform="rec", event_id="evt-1", kind="text"),
        "scheduled": lambda: ScheduledSend(flow="checkin", person_id=emp, period="2026-11-27"),
        "cycle": lambda: Cycle(workspace_id=ws, code="2026-Q2"),
        "participant": lambda: CycleParticipant(cycle_id=cycle_id, person_id=emp),
        "outbox": lambda: OutboxMessage(
            workspace_id=ws, platform="rec", recipients=["a"], card={}, dedupe_key="kickoff:1:zh-CN:0"
        ),
    }
    await _expect_duplicate_rejected(service, makers[kind])


async def test_times_come_back_aware_utc(service: Service, org: Org) -> None:
    shanghai = timezone(timedelta(hours=8))
    due = datetime(2026, 11, 27, 16, 0, tzinfo=shanghai)
    async with service.factory() as s, s.begin():
        s.add(CheckIn(person_id=org.emp1.id, period="2026-11-27", due_at=due))
    async with service.factory() as s:
        got = await s.scalar(select(CheckIn.due_at))
    assert got is not None and got.tzinfo is not None
    assert got == due and got.utcoffset() == timedelta(0)


async def test_naive_datetime_is_refused(service: Service, org: Org) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with service.factory() as s, s.begin():
            s.add(CheckIn(person_id=org.emp1.id, period="x", due_at=datetime(2026, 1, 1)))


async def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert mode == "wal" and fks == 1
        factory = session_factory(engine)
        with pytest.raises(IntegrityError):
            async with factory() as s, s.begin():
                s.add(CheckIn(person_id=99999, period="p", due_at=datetime.now(UTC)))
        async with factory() as s:
            assert await s.scalar(select(func.count()).select_from(Workspace)) == 0
    finally:
        await engine.dispose()
