"""Monthly 3-2-1 reviews."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Review321


async def review_for_period(session: AsyncSession, person_id: int, period: str) -> Review321 | None:
    return await session.scalar(
        select(Review321).where(Review321.person_id == person_id, Review321.period == period)
    )
