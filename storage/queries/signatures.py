"""Signatures the platform does not bind to a body, remembered with the first message id they came with
(issue 16 #5: DingTalk robot messages are signed over the timestamp only).

One row per (platform, signature key), inserted with ``ON CONFLICT DO NOTHING`` so two replicas receiving the
same pair at once agree on one first id: the database, not a process, decides. Expired rows are deleted as
claims are made, so the table never holds more than one replay window's worth of messages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SignatureClaim


async def claim_signature(
    session: AsyncSession, *, platform: str, key: str, first_id: str, expires_at: datetime, now: datetime
) -> str:
    """Record ``key`` with ``first_id`` unless a live claim exists; return the id the live claim holds."""
    await session.execute(
        delete(SignatureClaim).where(SignatureClaim.platform == platform, SignatureClaim.expires_at < now)
    )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(SignatureClaim)
        .values(platform=platform, key=key, first_id=first_id, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["platform", "key"])
    )
    held = await session.scalar(
        select(SignatureClaim.first_id).where(SignatureClaim.platform == platform, SignatureClaim.key == key)
    )
    return held if held is not None else first_id
