"""When a released grade may be appealed, and who decides an appeal.

The window opens when the person was told their grade: at release, or again when HR corrected it (a new
grade the person has not yet had a chance to contest). It stays open through the end of the
``[grades] appeal_window_days``-th day after that, on the person's own calendar, so "7 days" means the same
thing to someone in Beijing and someone in Berlin, and the card can name the last day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from bot.core.context import Context
from bot.core.people import hrbp_of
from storage.models import Grade, Person


def window_start(grade: Grade) -> datetime | None:
    """The later of release and HR's last correction (None while unreleased)."""
    moments = [m for m in (grade.released_at, grade.corrected_at) if m is not None]
    return max(moments) if moments else None


def last_day(ctx: Context, start: datetime, person: Person) -> date:
    """The last local day on which an appeal is accepted, for a window opened at ``start``."""
    return ctx.day_of(start, person) + timedelta(days=ctx.settings.grades.appeal_window_days)


def appeal_closes(ctx: Context, grade: Grade, person: Person) -> date:
    start = window_start(grade) or ctx.now
    return last_day(ctx, start, person)


async def deciders(ctx: Context, person: Person) -> list[Person]:
    """The person's HRBP (their own or their department's); without one, the workspace's HR admins."""
    hrbp = await hrbp_of(ctx.session, person)
    if hrbp is not None:
        return [hrbp]
    admins = await ctx.session.scalars(
        select(Person)
        .where(Person.workspace_id == person.workspace_id, Person.active.is_(True), Person.id != person.id)
        .order_by(Person.id)
    )
    return [p for p in admins if p.has_role("hr_admin")]
