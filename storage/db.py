"""Engine and session factory; SQLite gets WAL and foreign keys, PostgreSQL uses asyncpg.

Also the one judgement of which database errors are *transient* (``is_transient``): worth trying again in a
fresh transaction, because nothing about the statement was wrong.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"


class NotMigratedError(RuntimeError):
    """The database schema is older than this code; the operator must run ``perfloop migrate``."""


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        # A pooled connection the server has closed (restart, failover, idle timeout, pg_terminate_backend)
        # is found and replaced at checkout, before a request's first statement fails on it.
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _prepare_sqlite(engine)
    return engine


TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure: a concurrent transaction won; the same work may succeed now
        "40P01",  # deadlock_detected: PostgreSQL chose this transaction as the victim
        "55P03",  # lock_not_available (lock_timeout)
        "57P01",  # admin_shutdown: pg_terminate_backend, a fast shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting or in recovery
        "53300",  # too_many_connections
    }
)
"""PostgreSQL SQLSTATEs that mean "not now" rather than "never", besides class 08 (connection exception).
Deliberately not here: constraint violations, syntax and undefined-object errors, 25P02 (a transaction
already aborted by an earlier error: the earlier error is the one to judge), 57014 (statement timeout: the
same statement would most likely time out again) and 25006 (read-only transaction: a misrouted URL)."""

SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database schema has changed")
"""SQLite ``OperationalError`` messages that a second try can cure; every other one (no such table, disk
I/O error, disk full) would fail again."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database fault that the same work, in a fresh transaction, may not meet again.

    Transient: a connection SQLAlchemy judged dead (``connection_invalidated``: closed, reset, terminated);
    a driver ``InterfaceError`` saying "connection is closed" (asyncpg's, when the dialect did not judge
    it; binding and concurrent-use errors are InterfaceErrors too, and are bugs); the SQLSTATEs in
    ``TRANSIENT_SQLSTATES`` and class 08; SQLite's lock and schema-change messages; a pool that had no
    connection to hand out in ``pool_timeout``; and a refused/reset TCP connection while (re)connecting.
    Anything else (a constraint, a bug in a query, a handler's own error) is not: doing it again would do
    the same thing. An exception raised ``from`` a transient one (a handler that wrapped it) is judged by
    its cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_here(current):
            return True
        current = current.__cause__
    return False


def _transient_here(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: no connection free within pool_timeout
        return True
    if isinstance(exc, ConnectionError):  # refused/reset while connecting: not wrapped by the dialect
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.InterfaceError) and "connection is closed" in str(exc.orig).lower():
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str) and (state in TRANSIENT_SQLSTATES or state.startswith("08")):
        return True
    if isinstance(exc, sa_exc.OperationalError) and state is None:
        message = str(orig).lower()
        return any(text in message for text in SQLITE_TRANSIENT)
    return False


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # aiosqlite's own transaction handling fights SQLAlchemy's; take BEGIN into our hands.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: committed on success, rolled back on any exception."""
    async with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema. Alembic is synchronous; it runs in a worker thread with its own event loop."""
    from alembic import command

    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration: the revision no other migration names as its ``down_revision``.

    Read from the migration files' ``revision`` / ``down_revision`` lines, not through alembic's
    ``ScriptDirectory``: importing alembic (with its Mako templates and Pygments, ~9 MB) into every
    ``perfloop run`` only to compare two strings at start-up was a tenth of an idle process's memory.
    ``perfloop migrate`` still runs alembic itself, and a test checks that both name the same head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {', '.join(sorted(heads))}")
    return next(iter(heads), None)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (alembic's ``alembic_version`` table); None when never migrated."""

    def _read(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = [str(r) for r in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()]
        if len(rows) > 1:
            raise RuntimeError(f"the database is at several revisions: {', '.join(sorted(rows))}")
        return rows[0] if rows else None

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


async def ensure_migrated(engine: AsyncEngine) -> None:
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise NotMigratedError(
            f"database schema is at {current or 'nothing'}, this version needs {head}: run `perfloop migrate`"
        )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
