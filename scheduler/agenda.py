"""What the records say is scheduled: every receiving person's series, every open record's steps, and every
snoozed prompt. One reading serves both the tick (what is owed *now*) and ``perfloop schedule --next``
(what comes *next*), so the plan can never disagree with what the scheduler will actually do.

The reading goes a chunk of people at a time (``CHUNK``, in id order): each chunk is those people as plain
rows (``storage.queries.scheduled``), their series, the open records they own and their snoozes. The tick
works through the chunks one by one, so its memory stays that of one chunk whether the company has 500 or
100,000 people; the plan merges them (``read_agenda``).

Everyone sharing a series' parameters (a zone, a cadence) shares its occurrences, so ``latest`` is worked
out once per distinct series in a tick (``Memo``), not once per person; so is an open record's timeline.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.localtime import person_tz
from bot.core.schedule import CheckinArgs, Job, JobArgs, ReviewArgs
from bot.core.status import OPEN_ACTION_ITEM, CheckInStatus, CycleStatus, SendStatus
from scheduler.cadence import (
    Due,
    Occurrence,
    PeriodicFlow,
    Policy,
    Series,
    Step,
    action_item_steps,
    action_item_timeline,
    checkin_due,
    checkin_steps,
    checkin_timeline,
    item_due,
    latest,
    latest_steps,
    periodic_flows,
    upcoming,
)
from scheduler.calendar import WorkCalendar
from scheduler.rhythms import rhythm_flow
from storage.models import Person, ScheduledSend, TeamSetting, Workspace
from storage.queries import scheduled as sq
from storage.queries.kr_links import ScheduledRhythm, scheduled_rhythms
from storage.queries.scheduled import OpenCheckinRow, OpenItemRow, PersonRow

SNOOZE_JOBS: dict[str, tuple[Job, type[CheckinArgs] | type[ReviewArgs]]] = {
    "snooze.checkin": (Job.REMIND_CHECKIN, CheckinArgs),
    "snooze.review": (Job.REMIND_REVIEW, ReviewArgs),
}
"""A snoozed prompt (ledger flow, period = the record id) wakes up as its flow's reminder."""

CHUNK = 1000
"""People per chunk: one chunk's rows, records and cards in memory at a time, and one batch transaction."""


async def team_settings(session: AsyncSession) -> dict[int, TeamSetting]:
    """Managers' settings for their direct reports, by manager id."""
    return {t.manager_id: t for t in await session.scalars(select(TeamSetting))}


def team_of(person: Person | PersonRow, teams: dict[int, TeamSetting]) -> TeamSetting | None:
    return teams.get(person.manager_id) if person.manager_id is not None else None


@dataclass(frozen=True)
class PersonSeries:
    person_id: int
    tz: str
    flow: PeriodicFlow


@dataclass
class SeriesGroup:
    """People who receive the same series in the same zone (one cadence, one set of roles): their latest
    occurrences are worked out once for all of them."""

    tz: str
    flows: list[PeriodicFlow]
    person_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Owing:
    """Everyone in a ``SeriesGroup`` owed one occurrence of one of its series."""

    flow: PeriodicFlow
    occ: Occurrence
    tz: str
    person_ids: list[int]


@dataclass
class Shared:
    """What every chunk of one reading needs, read once: team settings, running key-result rhythms by
    person, each workspace's platform."""

    teams: dict[int, TeamSetting]
    rhythms: dict[int, list[ScheduledRhythm]]
    platforms: dict[int, str]


async def read_shared(session: AsyncSession) -> Shared:
    rhythms: dict[int, list[ScheduledRhythm]] = {}
    for r in await scheduled_rhythms(session, cycle_statuses=[CycleStatus.ACTIVE]):
        rhythms.setdefault(r.person_id, []).append(r)
    platforms = {
        ws_id: p for ws_id, p in (await session.execute(select(Workspace.id, Workspace.platform))).all()
    }
    return Shared(teams=await team_settings(session), rhythms=rhythms, platforms=platforms)


@dataclass
class Memo:
    """What one tick works out once and reuses for everyone it applies to: 100,000 people on one cadence
    in one zone share their series and their latest occurrence, and 100,000 items due the same day share
    their timeline. Everything here is keyed by the inputs of a pure cadence function."""

    now: datetime
    _flows: dict[tuple[Any, ...], list[PeriodicFlow]] = field(default_factory=dict)
    _latest: dict[int, tuple[Series, Occurrence | None]] = field(default_factory=dict)
    _by_key: dict[tuple[Any, ...], Occurrence | None] = field(default_factory=dict)
    _checkins: dict[tuple[Any, ...], list[Step]] = field(default_factory=dict)
    _items: dict[tuple[Any, ...], list[Step]] = field(default_factory=dict)

    def flows(
        self, person: PersonRow, settings: Settings, cal: WorkCalendar, team: TeamSetting | None
    ) -> list[PeriodicFlow]:
        """``periodic_flows`` for everyone with the same roles, reporting line (whether there is a manager),
        cadence, zone and team settings: the only things it reads."""
        key = (
            person.roles,
            person.manager_id is None,
            person.timezone,
            person.cadence_weeks,
            person.checkin_weekday,
            (team.cadence_weeks, team.checkin_weekday) if team else None,
        )
        found = self._flows.get(key)
        if found is None:
            found = self._flows[key] = periodic_flows(person, settings, cal, team)
        return found

    def latest(self, series: Series, tz: str) -> Occurrence | None:
        """``latest`` once per distinct series (by object first, then by parameters)."""
        hit = self._latest.get(id(series))
        if hit is not None and hit[0] is series:
            return hit[1]
        key = _series_key(series, tz)
        if key not in self._by_key:
            self._by_key[key] = latest(series, self.now, tz)
        self._latest[id(series)] = (series, self._by_key[key])
        return self._by_key[key]

    def checkin_owed(
        self, ci: OpenCheckinRow, settings: Settings, snoozed_until: datetime | None, team: TeamSetting | None
    ) -> list[Step]:
        key = (
            ci.due_at,
            ci.reminded_at is not None,
            snoozed_until,
            team.answer_window_hours if team else None,
        )
        found = self._checkins.get(key)
        if found is None:
            timeline = checkin_timeline(
                ci.due_at,
                reminded=ci.reminded_at is not None,
                settings=settings,
                snoozed_until=snoozed_until,
                team=team,
            )
            found = self._checkins[key] = latest_steps(timeline, self.now)
        return found

    def item_owed(self, item: OpenItemRow, tz: str, settings: Settings, cal: WorkCalendar) -> list[Step]:
        key = (item.deadline, item.escalation_level, tz)
        found = self._items.get(key)
        if found is None:
            timeline = action_item_timeline(item.deadline, item.escalation_level, tz, settings, cal)
            found = self._items[key] = latest_steps(timeline, self.now)
        return found


def _series_key(series: Series, tz: str) -> tuple[Any, ...]:
    """A series' identity: its class and parameters (the calendar is the tick's one calendar)."""
    return (type(series), tz, *(v for k, v in vars(series).items() if k != "cal"))


@dataclass(frozen=True)
class OpenCheckin:
    row: OpenCheckinRow
    tz: str
    snoozed_until: datetime | None
    team: TeamSetting | None


@dataclass(frozen=True)
class OpenItem:
    row: OpenItemRow
    tz: str


@dataclass
class Agenda:
    people: dict[int, PersonRow]
    """Who may receive anything: active and not paused."""
    groups: list[SeriesGroup]
    """Everyone's series, by people receiving the same ones (``series`` lists them person by person)."""
    checkins: list[OpenCheckin]
    """Open check-ins of these people (their reminder and close are the steps)."""
    items: list[OpenItem]
    """Open action items these people own (reminders and the escalation ladder)."""
    snoozes: list[tuple[ScheduledSend, Due]]
    """Every snoozed prompt and the reminder it wakes up as."""
    settings: Settings
    cal: WorkCalendar
    after: int = 0
    upto: int = 0
    """The person ids this reading covers: ``after < id <= upto``."""
    platforms: dict[int, str] = field(default_factory=dict)
    """Each workspace's platform, by id (a batch's outbox rows carry it)."""

    @property
    def series(self) -> list[PersonSeries]:
        return [PersonSeries(pid, g.tz, f) for g in self.groups for f in g.flows for pid in g.person_ids]

    @property
    def records(self) -> list[list[Due]]:
        """The steps of each open record (check-in, action item), in time order."""
        out = [
            checkin_steps(c.row, c.tz, self.settings, snoozed_until=c.snoozed_until, team=c.team)
            for c in self.checkins
        ]
        out += [action_item_steps(i.row, i.tz, self.settings, self.cal) for i in self.items]
        return out

    def owed(self, now: datetime) -> list[Due]:
        """What may be owed at ``now``: the latest occurrence of each series and, for each record, the
        latest step per audience (after downtime each person hears once, not once per missed tick, and
        nobody's rung of a ladder is skipped)."""
        memo = Memo(now)
        dues: list[Due] = []
        for s in self.series:
            occ = memo.latest(s.flow.series, s.tz)
            if occ is not None:
                dues.append(s.flow.due(s.person_id, s.tz, occ))
        dues.extend(self.record_steps(memo))
        return dues

    def series_owed(self, memo: Memo) -> dict[tuple[str, str], list[Owing]]:
        """The latest occurrence of each series, grouped by ledger key without the person ((flow, period)):
        everyone in a group is checked against the ledger with one query, and only those still owed become
        ``Due`` items."""
        owed: dict[tuple[str, str], list[Owing]] = {}
        for g in self.groups:
            for f in g.flows:
                occ = memo.latest(f.series, g.tz)
                if occ is not None:
                    owed.setdefault((f.flow, occ.period), []).append(Owing(f, occ, g.tz, g.person_ids))
        return owed

    def record_steps(self, memo: Memo) -> list[Due]:
        """Each record's latest step per audience at ``memo.now``, bound to the record."""
        out = [
            checkin_due(step, c.row, c.tz)
            for c in self.checkins
            for step in memo.checkin_owed(c.row, self.settings, c.snoozed_until, c.team)
        ]
        out += [
            item_due(step, i.row, i.tz)
            for i in self.items
            for step in memo.item_owed(i.row, i.tz, self.settings, self.cal)
        ]
        return out

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


async def read_chunk(
    session: AsyncSession,
    settings: Settings,
    cal: WorkCalendar,
    shared: Shared,
    *,
    after: int,
    limit: int = CHUNK,
    memo: Memo | None = None,
) -> Agenda | None:
    """The agenda of the next ``limit`` receiving people after id ``after``; None past the last one."""
    people = {p.id: p for p in await sq.receiving_people(session, after=after, limit=limit)}
    if not people:
        return None
    memo = memo or Memo(datetime.now(UTC))
    upto = max(people)
    tz = {pid: person_tz(p, settings) for pid, p in people.items()}
    by_flows: dict[int, SeriesGroup] = {}
    for pid, person in people.items():
        flows = memo.flows(person, settings, cal, team_of(person, shared.teams))
        group = by_flows.get(id(flows))  # the memo hands everyone alike the same list
        if group is None:
            group = by_flows[id(flows)] = SeriesGroup(tz[pid], flows)
        group.person_ids.append(pid)
    groups = list(by_flows.values())
    groups += [
        SeriesGroup(tz[pid], [rhythm_flow(row, settings, cal, tz[pid])], [pid])
        for pid in people
        for row in shared.rhythms.get(pid, ())
    ]
    snoozed = {
        int(row.period): row
        for row in await sq.ledger_rows_of(session, ["snooze.checkin"], after=after, upto=upto)
        if row.period.isdigit()
    }
    checkins = [
        OpenCheckin(
            ci,
            tz[ci.person_id],
            snoozed[ci.id].due_at if ci.id in snoozed else None,
            team_of(people[ci.person_id], shared.teams),
        )
        for ci in await sq.open_checkins_of(session, after=after, upto=upto, status=CheckInStatus.OPEN)
        if ci.person_id in people
    ]
    items = [
        OpenItem(item, tz[item.owner_id])
        for item in await sq.open_items_of(session, after=after, upto=upto, statuses=OPEN_ACTION_ITEM)
        if item.owner_id in people
    ]
    wakes: list[tuple[ScheduledSend, Due]] = []
    for row in await sq.ledger_rows_of(
        session, list(SNOOZE_JOBS), after=after, upto=upto, status=SendStatus.SNOOZED
    ):
        if row.person_id in people and row.due_at is not None:
            job, make_args = SNOOZE_JOBS[row.flow]
            args: JobArgs = make_args(int(row.period))
            due = Due(
                flow=row.flow,
                person_id=row.person_id,
                period=row.period,
                at=row.due_at,
                tz=tz[row.person_id],
                job=job,
                policy=Policy.REMINDER,
                args=args,
            )
            wakes.append((row, due))
    return Agenda(
        people=people,
        groups=groups,
        checkins=checkins,
        items=items,
        snoozes=wakes,
        settings=settings,
        cal=cal,
        after=after,
        upto=upto,
        platforms=shared.platforms,
    )


async def chunks(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    cal: WorkCalendar,
    memo: Memo,
    *,
    limit: int = CHUNK,
) -> AsyncIterator[Agenda]:
    """The agenda chunk by chunk, each read in a short session of its own (none is held open while the
    caller works on a chunk)."""
    async with factory() as session:
        shared = await read_shared(session)
    after = 0
    while True:
        async with factory() as session:
            chunk = await read_chunk(session, settings, cal, shared, after=after, limit=limit, memo=memo)
        if chunk is None:
            return
        yield chunk
        after = chunk.upto


async def read_agenda(session: AsyncSession, settings: Settings, cal: WorkCalendar) -> Agenda:
    """Everyone's series and every open record's steps, as of the database now (the plan's whole view)."""
    shared = await read_shared(session)
    memo = Memo(datetime.now(UTC))
    whole = Agenda(people={}, groups=[], checkins=[], items=[], snoozes=[], settings=settings, cal=cal)
    after = 0
    while (chunk := await read_chunk(session, settings, cal, shared, after=after, memo=memo)) is not None:
        whole.people.update(chunk.people)
        whole.groups.extend(chunk.groups)
        whole.checkins.extend(chunk.checkins)
        whole.items.extend(chunk.items)
        whole.snoozes.extend(chunk.snoozes)
        whole.platforms = chunk.platforms
        whole.upto = after = chunk.upto
    return whole
