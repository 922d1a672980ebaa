"""Shared fixtures: real SQLite and real PostgreSQL, a recording adapter, a fixed clock, a small org.

Every test that takes ``db_url`` runs twice, once per database. Under ``CI=true`` an unreachable
PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.registry import AdapterRegistry
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from storage.db import migrate
from storage.models import Base
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org, seed_org

T = TypeVar("T")

pytest_plugins = ["tests.support.browser"]  # sim_server, browser, sim_page fixtures for browser tests

PG_ADMIN_URL = os.environ.get("PERFLOOP_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Session fixtures may be first requested from inside a running loop; give them their own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No accidental network: any connection to a non-loopback address fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise RuntimeError(f"test tried to reach a non-loopback host: {host}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    run_in_thread(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One throw-away PostgreSQL database per test run, migrated once; tests truncate between them."""
    if not _pg_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI=true: not skipping)")
        pytest.skip("PostgreSQL not reachable")
    name = f"perfloop_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    async def drop() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    run_in_thread(create())
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    run_in_thread(migrate(url))
    yield url
    run_in_thread(drop())


async def _truncate_pg(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "perfloop.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        await _truncate_pg(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "perfloop.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Shanghai


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database={"url": db_url}, media={"dir": tmp_path / "media"}, sim={"enabled": False})


@pytest.fixture
def recorder() -> RecordingAdapter:
    return RecordingAdapter()


@pytest.fixture
async def service(
    settings: Settings, clock: FixedClock, recorder: RecordingAdapter
) -> AsyncIterator[Service]:
    registry = AdapterRegistry()
    registry.add(recorder)
    svc = build_service(settings, clock=clock, registry=registry)
    yield svc
    await svc.close()


@pytest.fixture
async def org(service: Service) -> Org:
    async with service.factory() as session, session.begin():
        return await seed_org(session, platform="rec", app_id="rec-app")
