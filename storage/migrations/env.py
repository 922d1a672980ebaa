"""Alembic environment: runs migrations over the async engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from storage.db import create_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.execute(text("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"migration left rows pointing nowhere: {broken[:5]}")


def _without_cascades(engine: Any) -> None:
    """SQLite's batch mode rebuilds a table (copy, DROP, rename). With foreign keys on, that DROP cascades:
    rebuilding ``cycles`` deleted every participant, grade and peer answer of every cycle. Migrations run
    with them off, and the result is checked with ``PRAGMA foreign_key_check`` before it commits."""

    @event.listens_for(engine.sync_engine, "connect")
    def _off(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _without_cascades(engine)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
