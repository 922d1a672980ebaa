"""What the scheduler reads, a chunk of people at a time, as plain rows instead of ORM objects.

A company of 100,000 is read on every tick: as ORM objects (people, open check-ins, open action items) that
was a few hundred MB and most of a minute. Here each tick walks the people in id order, ``limit`` at a time
(keyset, so a chunk costs the same wherever it starts), and reads the open records and snoozes of exactly
that id range; only the columns the cadence and the flows' batches use are loaded.

The ledger questions are asked per chunk and key: everyone owed the same key of a series (a check-in period,
a month) is one lookup over the chunk's id range, all keys of a chunk in one statement.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, CheckIn, Cycle, CycleParticipant, Person, ScheduledSend

IN_CHUNK = 2000
"""Bind parameters per ``IN`` list: well below asyncpg's 32,767 and SQLite's 32,766."""
UNION_PARTS = 16
"""Ledger lookups per ``UNION ALL`` statement."""


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person as the scheduler and a scheduled batch see them: who, where, which cadence, on leave when."""

    id: int
    workspace_id: int
    platform_user_id: str
    name: str
    roles: str
    manager_id: int | None
    timezone: str
    locale: str
    leave_from: date | None
    leave_until: date | None
    cadence_weeks: int | None
    checkin_weekday: int | None
    role_set: frozenset[str] = field(init=False, repr=False, compare=False)
    """``roles`` parsed once (a tick asks every person's roles several times)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "role_set", frozenset(r.strip() for r in self.roles.split(",") if r.strip()))

    def has_role(self, role: str) -> bool:
        return role in self.role_set


PERSON_COLUMNS = (
    Person.id,
    Person.workspace_id,
    Person.platform_user_id,
    Person.name,
    Person.roles,
    Person.manager_id,
    Person.timezone,
    Person.locale,
    Person.leave_from,
    Person.leave_until,
    Person.cadence_weeks,
    Person.checkin_weekday,
)


@dataclass(frozen=True, slots=True)
class OpenCheckinRow:
    id: int
    person_id: int
    due_at: datetime
    reminded_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpenItemRow:
    id: int
    owner_id: int
    deadline: date
    escalation_level: int


async def receiving_people(session: AsyncSession, *, after: int, limit: int) -> list[PersonRow]:
    """The next ``limit`` people (by id, after ``after``) who may receive anything: active, not paused."""
    rows = await session.execute(
        select(*PERSON_COLUMNS)
        .where(Person.id > after, Person.active.is_(True), Person.paused.is_(False))
        .order_by(Person.id)
        .limit(limit)
    )
    return [PersonRow(**r._mapping) for r in rows.all()]


async def people_by_id(session: AsyncSession, ids: Collection[int]) -> dict[int, PersonRow]:
    """These people as rows (any state), by id."""
    out: dict[int, PersonRow] = {}
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_CHUNK):
        rows = await session.execute(
            select(*PERSON_COLUMNS).where(Person.id.in_(ordered[start : start + IN_CHUNK]))
        )
        out.update((r.id, PersonRow(**r._mapping)) for r in rows.all())
    return out


async def open_checkins_of(
    session: AsyncSession, *, after: int, upto: int, status: str
) -> list[OpenCheckinRow]:
    """Check-ins in ``status`` of the people with ``after < id <= upto``."""
    rows = await session.execute(
        select(CheckIn.id, CheckIn.person_id, CheckIn.due_at, CheckIn.reminded_at)
        .where(CheckIn.status == status, CheckIn.person_id > after, CheckIn.person_id <= upto)
        .order_by(CheckIn.id)
    )
    return [OpenCheckinRow(*r) for r in rows.all()]


async def open_items_of(
    session: AsyncSession, *, after: int, upto: int, statuses: Iterable[str]
) -> list[OpenItemRow]:
    """Action items in ``statuses`` owned by the people with ``after < id <= upto``."""
    rows = await session.execute(
        select(ActionItem.id, ActionItem.owner_id, ActionItem.deadline, ActionItem.escalation_level)
        .where(
            ActionItem.status.in_(list(statuses)), ActionItem.owner_id > after, ActionItem.owner_id <= upto
        )
        .order_by(ActionItem.id)
    )
    return [OpenItemRow(*r) for r in rows.all()]


async def ledger_rows_of(
    session: AsyncSession, flows: Collection[str], *, after: int, upto: int, status: str | None = None
) -> list[ScheduledSend]:
    """Ledger rows of ``flows`` (snoozes: a handful per person at most) for the people in the id range."""
    stmt = select(ScheduledSend).where(
        ScheduledSend.flow.in_(list(flows)), ScheduledSend.person_id > after, ScheduledSend.person_id <= upto
    )
    if status is not None:
        stmt = stmt.where(ScheduledSend.status == status)
    return list(await session.scalars(stmt.order_by(ScheduledSend.id)))


async def recorded_people(
    session: AsyncSession, groups: Sequence[tuple[str, str]], *, after: int, upto: int
) -> list[set[int]]:
    """For each (flow, period): the people with ``after < id <= upto`` who have its ledger row already.

    The id range is the index condition (the ledger's unique index is flow, person, period), so the plan
    does not depend on statistics: an anti-join was planned as a hash over every row of the flow once a
    wave had added rows the statistics did not know about, and each chunk read them all again. All groups
    go in one statement (``UNION ALL``): one round trip per chunk of people."""
    out: list[set[int]] = [set() for _ in groups]
    parts = [
        select(literal(n).label("g"), ScheduledSend.person_id).where(
            ScheduledSend.flow == flow,
            ScheduledSend.person_id > after,
            ScheduledSend.person_id <= upto,
            ScheduledSend.period == period,
        )
        for n, (flow, period) in enumerate(groups)
    ]
    for start in range(0, len(parts), UNION_PARTS):
        chunk = parts[start : start + UNION_PARTS]
        stmt = chunk[0] if len(chunk) == 1 else union_all(*chunk)
        conn = await session.connection()
        for g, pid in (await conn.execute(stmt)).all():
            out[int(g)].add(int(pid))
    return out


async def recorded_keys(
    session: AsyncSession, flow: str, keys: Collection[tuple[int, str]], *, after: int, upto: int
) -> set[tuple[int, str]]:
    """Which ``(person, period)`` keys of ``flow`` are in the ledger (record steps: one period per record),
    for people with ``after < id <= upto``. The id range is the index condition (the ledger's unique index
    is flow, person, period), so a chunk reads its own people's rows, not every row of the flow."""
    found: set[tuple[int, str]] = set()
    periods = sorted({period for _, period in keys})
    for start in range(0, len(periods), IN_CHUNK):
        rows = await session.execute(
            select(ScheduledSend.person_id, ScheduledSend.period).where(
                ScheduledSend.flow == flow,
                ScheduledSend.person_id > after,
                ScheduledSend.person_id <= upto,
                ScheduledSend.period.in_(periods[start : start + IN_CHUNK]),
            )
        )
        found.update((int(p), str(per)) for p, per in rows.all())
    return found & set(keys)


async def current_cycles(
    session: AsyncSession, person_ids: Sequence[int], status: str = "active"
) -> dict[int, int]:
    """Each person's current cycle (``storage.queries.cycles.current_participation`` for many): the most
    recently started cycle in ``status`` they take part in, by person id; people in none are absent."""
    best: dict[int, tuple[bool, datetime | None, int]] = {}
    ordered = sorted(set(person_ids))
    for start in range(0, len(ordered), IN_CHUNK):
        rows = await session.execute(
            select(CycleParticipant.person_id, Cycle.id, Cycle.started_at)
            .join(Cycle, Cycle.id == CycleParticipant.cycle_id)
            .where(CycleParticipant.person_id.in_(ordered[start : start + IN_CHUNK]), Cycle.status == status)
        )
        for pid, cycle_id, started in rows.all():
            rank = (started is not None, started, cycle_id)
            if pid not in best or _later(rank, best[pid]):
                best[pid] = rank
    return {pid: rank[2] for pid, rank in best.items()}


def _later(a: tuple[bool, datetime | None, int], b: tuple[bool, datetime | None, int]) -> bool:
    """``ORDER BY started_at DESC, id DESC`` as SQLite sorts it: a cycle never started comes last."""
    if a[0] != b[0]:
        return a[0]
    if a[1] != b[1] and a[1] is not None and b[1] is not None:
        return a[1] > b[1]
    return a[2] > b[2]
