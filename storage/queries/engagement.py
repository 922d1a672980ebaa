"""Streaks, social proof, quiet hours and team settings: the numbers and switches that keep prompts pleasant.

Kept free of handler code so the check-in, reminder and digest flows (owned elsewhere) can call them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckIn, Person, QuietHours, TeamSetting

ANSWERED = ("submitted", "acknowledged", "followup")
STREAK_LOOKBACK = 200


def _zone(person: Person) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _on_leave(person: Person, day: date) -> bool:
    return (
        person.leave_from is not None
        and person.leave_until is not None
        and person.leave_from <= day <= person.leave_until
    )


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
        if status in ANSWERED:
            streak += 1
        elif status == "missed":
            day = _period_day(period)
            if day is not None and _on_leave(person, day):
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
    return sum(counts.get(s, 0) for s in ANSWERED), asked


# ---------------------------------------------------------------- quiet hours


def parse_hhmm(text: str) -> time | None:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def quiet_end(quiet: QuietHours | None, person: Person, now: datetime) -> datetime | None:
    """When the person's quiet hours around ``now`` end (UTC), or None if ``now`` is not quiet."""
    if quiet is None:
        return None
    start, end = parse_hhmm(quiet.starts), parse_hhmm(quiet.ends)
    if start is None or end is None or start == end:
        return None
    zone = _zone(person)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        inside = start <= clock < end
        end_day = today
    else:  # spans midnight
        inside = clock >= start or clock < end
        end_day = today + timedelta(days=1) if clock >= start else today
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)


def in_quiet_hours(quiet: QuietHours | None, person: Person, now: datetime) -> bool:
    return quiet_end(quiet, person, now) is not None


async def quiet_hours_of(session: AsyncSession, person_id: int) -> QuietHours | None:
    return await session.scalar(select(QuietHours).where(QuietHours.person_id == person_id))


async def quiet_until(session: AsyncSession, person: Person, now: datetime) -> datetime | None:
    return quiet_end(await quiet_hours_of(session, person.id), person, now)


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
