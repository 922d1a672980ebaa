"""Keys the service makes for itself, once per database (``service_secrets``).

A key drawn at random per process only works where it was drawn; one drawn once and kept in the database is
the same on every replica and after every restart. The first caller inserts its candidate with ``ON CONFLICT
DO NOTHING`` and everyone, the first caller included, reads back whichever candidate won.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ServiceSecret

KEY_BYTES = 32


async def service_secret(session: AsyncSession, name: str, now: datetime) -> str:
    """The key stored under ``name`` (hex), made now if there is none yet, in the caller's transaction."""
    stmt = select(ServiceSecret.value).where(ServiceSecret.name == name)
    found = await session.scalar(stmt)
    if found is not None:
        return found
    make: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        make(ServiceSecret)
        .values(name=name, value=secrets.token_hex(KEY_BYTES), created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    value = await session.scalar(stmt)
    if value is None:  # the insert above, or a concurrent one, wrote it: only a broken database gets here
        raise RuntimeError(f"service secret {name!r} could not be stored")
    return value
