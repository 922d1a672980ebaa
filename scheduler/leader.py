"""Exactly one active scheduler among many replicas.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own (its own engine,
no pool), so the lock lives exactly as long as that session: when the process dies, the server ends the
session and the lock is free; followers retry every ``retry_seconds`` and one of them takes over. TCP
keepalives are tightened on that session so a machine that vanishes without closing its socket is noticed
in well under a minute. The leader checks its session before every tick and steps down if it is gone.

Leadership only decides who *looks* for due items; correctness never depends on it (the ledger's unique key
does that), so a brief overlap during a hand-over sends nothing twice.

SQLite is one process by construction: it is always the leader.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.db import is_sqlite

log = logging.getLogger("perfloop.scheduler.leader")

LOCK_KEY = int.from_bytes(hashlib.sha256(b"perfloop.scheduler").digest()[:8], "big", signed=True)

KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
)


class Leadership:
    def __init__(self, url: str, *, key: int = LOCK_KEY, name: str = "") -> None:
        self.url = url
        self.key = key
        self.name = name
        self.sqlite = is_sqlite(url)
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def is_leader(self) -> bool:
        return self.sqlite or self._conn is not None

    async def acquire(self) -> bool:
        """Try once to become the leader; True if we are (or already were)."""
        if self.sqlite:
            return True
        async with self._lock:
            if self._conn is not None:
                return True
            if self._closed:
                return False
            if self._engine is None:
                self._engine = create_async_engine(self.url, poolclass=NullPool)
            conn = await self._engine.connect()
            try:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for stmt in KEEPALIVE:
                    await conn.execute(text(stmt))
                got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}))
            except BaseException:
                await conn.close()
                raise
            if not got:
                await conn.close()
                return False
            self._conn = conn
            log.info("scheduler leadership acquired", extra={"instance": self.name})
            return True

    async def still_leader(self) -> bool:
        """Check the lock's session is alive before acting as leader; step down if it is not."""
        if self.sqlite:
            return True
        async with self._lock:
            if self._conn is None:
                return False
            try:
                await self._conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("scheduler lock session lost; stepping down", extra={"instance": self.name})
                await self._drop()
                return False

    async def release(self) -> None:
        if self.sqlite:
            return
        async with self._lock:
            self._closed = True
            if self._conn is not None:
                try:
                    await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception:
                    log.warning("could not unlock; closing the session frees the lock anyway")
                await self._drop()
                log.info("scheduler leadership released", extra={"instance": self.name})
            if self._engine is not None:
                await self._engine.dispose()
                self._engine = None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                try:
                    await conn.invalidate()
                except Exception:
                    log.debug("lock connection already gone")
