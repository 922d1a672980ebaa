"""Which database errors count as transient (issue 16 #1): real errors from real SQLite and PostgreSQL,
classified by ``storage.db.is_transient``; and PostgreSQL connections are vetted before use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import create_engine, is_transient


async def _raised(engine_url: str, sql: str) -> BaseException:
    engine = create_engine(engine_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text(sql))
        return caught.value
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("errcode", "transient"),
    [
        ("serialization_failure", True),
        ("deadlock_detected", True),
        ("lock_not_available", True),
        ("admin_shutdown", True),
        ("connection_failure", True),
        ("unique_violation", False),
        ("undefined_table", False),
        ("query_canceled", False),
        ("in_failed_sql_transaction", False),
        ("raise_exception", False),
    ],
)
async def test_postgresql_sqlstates(db_url: str, errcode: str, transient: bool) -> None:
    # RAISE ... USING ERRCODE makes the server send exactly that SQLSTATE through asyncpg and SQLAlchemy.
    exc = await _raised(db_url, f"DO $$ BEGIN RAISE EXCEPTION 'probe' USING ERRCODE = '{errcode}'; END $$")
    assert is_transient(exc) is transient


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_terminated_backend_is_transient_and_pre_ping_replaces_it(db_url: str) -> None:
    engine = create_engine(db_url)
    killer = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with engine.connect() as conn:  # the same pooled connection, checked back in, idle
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == pid
        async with killer.connect() as k:
            await k.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.1)
        # The pool's idle connection is dead; pre-ping finds out at checkout and opens a new one.
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
        # Killed in the middle of a transaction, the error is judged transient.
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            async with killer.connect() as k:
                await k.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await asyncio.sleep(0.1)
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT 1"))
        assert is_transient(caught.value)
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_sqlite_lock_is_transient_other_errors_are_not(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    holder = create_engine(url)
    waiter = create_async_engine(url, connect_args={"timeout": 0.1})  # gives up on a lock at once
    try:
        async with holder.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        async with holder.begin() as conn:  # BEGIN IMMEDIATE: the write lock is held
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            async with waiter.connect() as other:
                with pytest.raises(DBAPIError) as locked:
                    await other.execute(text("INSERT INTO t VALUES (2)"))
        assert is_transient(locked.value), locked.value
        async with holder.begin() as conn:
            with pytest.raises(IntegrityError) as dup:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not is_transient(dup.value)
        async with holder.connect() as conn:
            with pytest.raises(DBAPIError) as missing:
                await conn.execute(text("SELECT * FROM no_such_table"))
        assert not is_transient(missing.value)
    finally:
        await holder.dispose()
        await waiter.dispose()


def test_wrapped_pool_and_connect_errors() -> None:
    dead = InterfaceError("SELECT 1", None, Exception("connection is closed"))
    assert is_transient(dead)
    binding = InterfaceError("SELECT 1", None, Exception("Error binding parameter 1"))
    assert not is_transient(binding)  # an InterfaceError that is a bug
    assert is_transient(PoolTimeout("QueuePool limit of size 10 overflow 10 reached"))
    assert is_transient(ConnectionRefusedError(111, "Connect call failed"))
    try:
        try:
            raise dead
        except InterfaceError as exc:
            raise RuntimeError("handler wrapped it") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(RuntimeError("boom"))
    assert not is_transient(KeyError("x"))
