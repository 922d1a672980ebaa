"""Check-ins: the one per person and period, and the one a chat reply belongs to."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckIn


async def checkin_for_period(session: AsyncSession, person_id: int, period: str) -> CheckIn | None:
    return await session.scalar(
        select(CheckIn).where(CheckIn.person_id == person_id, CheckIn.period == period)
    )


async def latest_answerable(
    session: AsyncSession, person_id: int, answerable: Collection[str]
) -> CheckIn | None:
    """The newest check-in this person may still write into: in an ``answerable`` status (the check-in flow's
    rule, ``bot.core.status.ANSWERABLE_CHECKIN``) and not yet answered by the manager."""
    return await session.scalar(
        select(CheckIn)
        .where(CheckIn.person_id == person_id, CheckIn.status.in_(answerable), CheckIn.answered_at.is_(None))
        .order_by(CheckIn.due_at.desc(), CheckIn.id.desc())
        .limit(1)
    )
