"""The scheduler's side of ``bot.core.schedule_port``: the answers a flow may ask for, from the same cadence
maths and ledger the tick uses, so "the next check-in" in chat is exactly the one the tick will reach."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import person_tz
from bot.core.schedule import Job
from bot.core.schedule_port import Skipped, Slot, Snoozed, SnoozeKind
from bot.core.status import SendStatus
from scheduler import ledger
from scheduler.cadence import Due, checkin_flow, periodic_flows, upcoming
from scheduler.calendar import WorkCalendar, calendar_from_settings, next_workday
from storage.models import Person, TeamSetting


class SchedulerPort:
    """Put on every Context by the app (``ctx.schedule``). The calendar is the configured one unless given."""

    def __init__(self, settings: Settings, *, calendar: WorkCalendar | None = None) -> None:
        self.settings = settings
        self.calendar = calendar

    def _calendar(self) -> WorkCalendar:
        return self.calendar or calendar_from_settings(self.settings)

    async def next_checkin(self, session: AsyncSession, person: Person, now: datetime) -> Slot | None:
        due = self._next(person, now, await _team_of(session, person))
        return None if due is None else _slot(due)

    async def next_review(self, session: AsyncSession, person: Person, now: datetime) -> Slot | None:
        del session  # the review series depends on the configuration only, not on team settings
        cal = self._calendar()
        flow = next(
            (pf for pf in periodic_flows(person, self.settings, cal) if pf.job is Job.OPEN_REVIEW), None
        )
        if flow is None:
            return None
        tz = person_tz(person, self.settings)
        occ = next(upcoming(flow.series, now, tz), None)
        return None if occ is None else _slot(flow.due(person.id, tz, occ))

    async def skip_next_checkin(
        self, session: AsyncSession, person: Person, now: datetime, *, reason: str
    ) -> Skipped | None:
        due = self._next(person, now, await _team_of(session, person))
        if due is None:
            return None
        try:
            await ledger.claim(session, due, now=now, status=SendStatus.SKIPPED, reason=reason)
        except ledger.Taken:
            return Skipped(slot=_slot(due), new=False)
        return Skipped(slot=_slot(due), new=True)

    async def snooze(
        self,
        session: AsyncSession,
        person: Person,
        kind: SnoozeKind,
        record_id: int,
        *,
        until: datetime,
        now: datetime,
    ) -> Snoozed:
        at, new = await ledger.snooze(session, f"snooze.{kind}", person.id, record_id, until=until, now=now)
        return Snoozed(until=at, new=new)

    def workday_after(self, day: date) -> date:
        return next_workday(self._calendar(), day + timedelta(days=1))

    def _next(self, person: Person, now: datetime, team: TeamSetting | None) -> Due | None:
        flow = checkin_flow(person, self.settings, self._calendar(), team)
        if flow is None:
            return None
        tz = person_tz(person, self.settings)
        occ = next(upcoming(flow.series, now, tz), None)
        return None if occ is None else flow.due(person.id, tz, occ)


async def _team_of(session: AsyncSession, person: Person) -> TeamSetting | None:
    """The manager's team settings, exactly as the tick reads them (``scheduler.agenda``): a cadence set for
    the team applies to someone who joined it later and has none of their own."""
    if person.manager_id is None:
        return None
    return await session.scalar(select(TeamSetting).where(TeamSetting.manager_id == person.manager_id))


def _slot(due: Due) -> Slot:
    return Slot(period=due.period, at=due.at, local=due.local())
