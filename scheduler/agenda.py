"""What the records say is scheduled: every receiving person's series, every open record's steps, and every
snoozed prompt. One reading serves both the tick (what is owed *now*) and ``perfloop schedule --next``
(what comes *next*), so the plan can never disagree with what the scheduler will actually do.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import person_tz
from bot.core.schedule import CheckinArgs, Job, JobArgs, ReviewArgs
from bot.core.status import OPEN_ACTION_ITEM, CheckInStatus, SendStatus
from scheduler import ledger
from scheduler.cadence import (
    Due,
    PeriodicFlow,
    Policy,
    action_item_steps,
    checkin_steps,
    latest,
    latest_steps,
    periodic_flows,
    upcoming,
)
from scheduler.calendar import WorkCalendar
from storage.models import ActionItem, CheckIn, Person, ScheduledSend, TeamSetting

SNOOZE_JOBS: dict[str, tuple[Job, type[CheckinArgs] | type[ReviewArgs]]] = {
    "snooze.checkin": (Job.REMIND_CHECKIN, CheckinArgs),
    "snooze.review": (Job.REMIND_REVIEW, ReviewArgs),
}
"""A snoozed prompt (ledger flow, period = the record id) wakes up as its flow's reminder."""


async def team_settings(session: AsyncSession) -> dict[int, TeamSetting]:
    """Managers' settings for their direct reports, by manager id."""
    return {t.manager_id: t for t in await session.scalars(select(TeamSetting))}


def team_of(person: Person, teams: dict[int, TeamSetting]) -> TeamSetting | None:
    return teams.get(person.manager_id) if person.manager_id is not None else None


@dataclass(frozen=True)
class PersonSeries:
    person_id: int
    tz: str
    flow: PeriodicFlow


@dataclass
class Agenda:
    people: dict[int, Person]
    """Who may receive anything: active and not paused."""
    series: list[PersonSeries]
    records: list[list[Due]]
    """The steps of each open record (check-in, action item), in time order."""
    snoozes: list[tuple[ScheduledSend, Due]]
    """Every snoozed prompt and the reminder it wakes up as."""

    def owed(self, now: datetime) -> list[Due]:
        """What may be owed at ``now``: the latest occurrence of each series and, for each record, the
        latest step per audience (after downtime each person hears once, not once per missed tick, and
        nobody's rung of a ladder is skipped)."""
        dues: list[Due] = []
        for s in self.series:
            occ = latest(s.flow.series, now, s.tz)
            if occ is not None:
                dues.append(s.flow.due(s.person_id, s.tz, occ))
        for steps in self.records:
            dues.extend(latest_steps(steps, now))
        return dues

    def woken(self, now: datetime) -> list[tuple[ScheduledSend, Due]]:
        """Snoozed prompts whose day is over."""
        return [(row, due) for row, due in self.snoozes if due.at <= now]

    def coming(self, now: datetime) -> Iterator[Due]:
        """Everything after ``now``, soonest first, lazily (series run on for up to a year)."""
        streams: list[Iterator[Due]] = [_dues(s, now) for s in self.series]
        later = [d for steps in self.records for d in steps] + [d for _, d in self.snoozes]
        streams.append(iter(sorted((d for d in later if d.at > now), key=lambda d: d.at)))
        return heapq.merge(*streams, key=lambda d: d.at)


def _dues(s: PersonSeries, now: datetime) -> Iterator[Due]:
    for occ in upcoming(s.flow.series, now, s.tz):
        yield s.flow.due(s.person_id, s.tz, occ)


async def read_agenda(session: AsyncSession, settings: Settings, cal: WorkCalendar) -> Agenda:
    """Everyone's series and every open record's steps, as of the database now."""
    people = {
        p.id: p
        for p in await session.scalars(
            select(Person).where(Person.active.is_(True), Person.paused.is_(False))
        )
    }
    tz = {pid: person_tz(p, settings) for pid, p in people.items()}
    teams = await team_settings(session)
    series = [
        PersonSeries(pid, tz[pid], pf)
        for pid, person in people.items()
        for pf in periodic_flows(person, settings, cal, team_of(person, teams))
    ]
    records: list[list[Due]] = []
    checkins = [
        ci
        for ci in await session.scalars(select(CheckIn).where(CheckIn.status == CheckInStatus.OPEN))
        if ci.person_id in people
    ]
    snoozed = await ledger.snoozes_for(session, "snooze.checkin", (ci.id for ci in checkins))
    for ci in checkins:
        row = snoozed.get(ci.id)
        records.append(
            checkin_steps(
                ci,
                tz[ci.person_id],
                settings,
                snoozed_until=row.due_at if row else None,
                team=team_of(people[ci.person_id], teams),
            )
        )
    for item in await session.scalars(select(ActionItem).where(ActionItem.status.in_(OPEN_ACTION_ITEM))):
        if item.owner_id in people:
            records.append(action_item_steps(item, tz[item.owner_id], settings, cal))
    wakes: list[tuple[ScheduledSend, Due]] = []
    rows = await session.scalars(
        select(ScheduledSend).where(
            ScheduledSend.status == SendStatus.SNOOZED, ScheduledSend.flow.in_(SNOOZE_JOBS)
        )
    )
    for row in rows:
        if row.person_id in people and row.due_at is not None:
            job, make_args = SNOOZE_JOBS[row.flow]
            args: JobArgs = make_args(int(row.period))
            wakes.append(
                (
                    row,
                    Due(
                        flow=row.flow,
                        person_id=row.person_id,
                        period=row.period,
                        at=row.due_at,
                        tz=tz[row.person_id],
                        job=job,
                        policy=Policy.REMINDER,
                        args=args,
                    ),
                )
            )
    return Agenda(people=people, series=series, records=records, snoozes=wakes)
