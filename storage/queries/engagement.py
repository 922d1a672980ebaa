"""Streaks, social proof, quiet hours and team settings: the numbers and switches that keep prompts pleasant.

Kept free of handler code so the check-in, reminder and digest flows (owned elsewhere) can call them. When a
person's quiet hours end is a time-zone question, so that rule lives with the sending in ``bot.core.notify``;
this module only reads and parses the rows.
"""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckIn, Person, QuietHours, TeamSetting
from storage.queries.metrics import DONE_CHECKIN
from storage.queries.people import on_leave

STREAK_LOOKBACK = 200


def _period_day(period: str) -> date | None:
    try:
        return date.fromisoformat(period[:10])
    except ValueError:
        return None


async def streak_for(session: AsyncSession, person_id: int) -> int:
    """Consecutive on-time check-ins, newest first. A check-in is on time when it was answered within its
    window (anything not ``missed``). Leave never breaks a streak: ``skipped`` check-ins, and ``missed``
    ones whose period falls in the person's leave, are stepped over without counting. Open ones (still
    answerable) neither count nor break."""
    person = await session.get(Person, person_id)
    if person is None:
        return 0
    rows = await session.execute(
        select(CheckIn.status, CheckIn.period)
        .where(CheckIn.person_id == person_id)
        .order_by(CheckIn.due_at.desc(), CheckIn.id.desc())
        .limit(STREAK_LOOKBACK)
    )
    streak = 0
    for status, period in rows.all():
        if status in DONE_CHECKIN:
            streak += 1
        elif status == "missed":
            day = _period_day(period)
            if day is not None and on_leave(person, day):
                continue
            break
    return streak


async def teammates(session: AsyncSession, person: Person) -> list[int]:
    """The person and everyone active who shares their manager (the team a reminder speaks of)."""
    if person.manager_id is None:
        return [person.id]
    rows = await session.scalars(
        select(Person.id).where(Person.manager_id == person.manager_id, Person.active.is_(True))
    )
    return sorted(set(rows) | {person.id})


async def social_proof(session: AsyncSession, person: Person, period: str) -> tuple[int, int]:
    """(answered, asked) among the person's team for this check-in period: "12 of 15 teammates have
    answered". Only people who were actually asked (have a check-in for the period) count."""
    team = await teammates(session, person)
    rows = await session.execute(
        select(CheckIn.status, func.count())
        .where(CheckIn.person_id.in_(team), CheckIn.period == period)
        .group_by(CheckIn.status)
    )
    counts = {status: int(n) for status, n in rows.all()}
    asked = sum(n for s, n in counts.items() if s != "skipped")
    return sum(counts.get(s, 0) for s in DONE_CHECKIN), asked


# ---------------------------------------------------------------- quiet hours


def parse_hhmm(text: str) -> time | None:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


async def quiet_hours_of(session: AsyncSession, person_id: int) -> QuietHours | None:
    return await session.scalar(select(QuietHours).where(QuietHours.person_id == person_id))


# ---------------------------------------------------------------- team settings


async def team_setting(session: AsyncSession, manager_id: int) -> TeamSetting | None:
    return await session.scalar(select(TeamSetting).where(TeamSetting.manager_id == manager_id))


async def answer_window_hours(session: AsyncSession, person: Person, *, default: int) -> int:
    """Hours after a check-in's due time before it counts as missed: the team's setting, else ``default``
    (``settings.schedule.checkin_answer_window_hours``)."""
    if person.manager_id is not None:
        row = await team_setting(session, person.manager_id)
        if row is not None and row.answer_window_hours:
            return row.answer_window_hours
    return default


async def mention_nonresponders(session: AsyncSession, manager_id: int) -> bool:
    """Whether summaries for this manager's team may @-mention people who have not answered."""
    row = await team_setting(session, manager_id)
    return True if row is None else row.mention_nonresponders
