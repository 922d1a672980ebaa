"""Check-ins: the one per person and period, and the one a chat reply belongs to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckIn

ANSWERABLE = ("open", "submitted")


async def checkin_for_period(session: AsyncSession, person_id: int, period: str) -> CheckIn | None:
    return await session.scalar(
        select(CheckIn).where(CheckIn.person_id == person_id, CheckIn.period == period)
    )


async def latest_answerable(session: AsyncSession, person_id: int) -> CheckIn | None:
    """The newest check-in this person may still write into: open, or submitted and not yet answered."""
    return await session.scalar(
        select(CheckIn)
        .where(CheckIn.person_id == person_id, CheckIn.status.in_(ANSWERABLE), CheckIn.answered_at.is_(None))
        .order_by(CheckIn.due_at.desc(), CheckIn.id.desc())
        .limit(1)
    )
