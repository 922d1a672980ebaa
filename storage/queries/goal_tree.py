"""The goal tree as the roll-up and the tree views read it (issue 17 item 3).

Rolling a cycle up must stay fast at 100,000 people (300,000 objectives, 900,000 key results), so it never
reads key results and never fetches the leaves one by one: ``tree_sums`` lets the database add up every
objective's directly aligned goals (``GROUP BY parent_id``) and returns only the goals that have aligned
goals (a few percent of the rows), which ``handlers.goals.rollup`` corrects bottom-up in Python: a child that
has children of its own counts with its rolled-up progress, not its own. A department's or a team's part of
the tree is small enough to read whole (``subtree``). The views then fetch the handful of rows they show
(``goal_rows``, ``first_children``, ``folded_counts``) and the people behind a subtree
(``subtree_owner_counts``).

Core statements over plain columns: the ORM would build an object per row for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from storage.models import CycleParticipant, Department, Goal, KeyResult, Person

CHUNK = 5000
"""Ids per ``IN (...)``: well below every driver's bind-parameter limit."""
MAX_DEPTH = 64
"""The recursive walk stops this deep: parent links that loop (which the handlers refuse) cannot spin it."""


def effective_weight() -> ColumnElement[int]:
    """A child's weight in its parent's mean: its own weight, and 1 where it has none (0)."""
    return case((Goal.weight == 0, 1), else_=Goal.weight)


def has_key_results(goal: type[Goal]) -> ColumnElement[bool]:
    """Whether the goal has key results of its own. Progress above 0 can only come from key results, so
    only a goal still at 0 is looked up (mid-cycle, few are)."""
    return case(
        (goal.own_progress > 0, true()),
        else_=exists().where(KeyResult.goal_id == goal.id),
    )


class ChildSums(NamedTuple):
    """What an objective's directly aligned goals add up to, each with its own progress. (Named tuples:
    the whole cycle's roll-up makes tens of thousands, and a tuple is made at C speed.)"""

    parent_id: int
    weighted: float
    """Σ weight × own progress."""
    weight: float
    """Σ weight (0 counted as 1)."""
    plain: float
    """Σ own progress (for equal shares where weights are unusable)."""
    n: int
    """How many."""


class RollUpRow(NamedTuple):
    """A goal as the roll-up reads it (for the whole cycle, only the goals that have aligned goals)."""

    id: int
    parent_id: int | None
    weight: int
    own: float
    has_own: bool
    """It has key results of its own (an umbrella objective without any is only its children); SQLite
    answers 0 or 1."""
    person_id: int


def _sums_query(cycle_id: int) -> Select[int | None, float | None, float | None, float | None, int]:
    w = effective_weight()
    return (
        select(
            Goal.parent_id,
            func.sum(w * Goal.own_progress),
            func.sum(w),
            func.sum(Goal.own_progress),
            func.count(),
        )
        .where(Goal.cycle_id == cycle_id, Goal.parent_id.is_not(None))
        .group_by(Goal.parent_id)
    )


async def tree_sums(session: AsyncSession, cycle_id: int) -> tuple[list[ChildSums], list[RollUpRow]]:
    """Per parent, the sums over its direct children in the cycle (one grouped pass over the goals), and the
    parents' own rows (by primary key: a few percent of the goals), in id order, the order the roll-up walks
    them. A parent outside the cycle (aligned across cycles) has sums but no row.

    SQLite joins the grouped pass to the parents (a primary-key lookup each); PostgreSQL would answer that
    join with a second full scan of the goals, so it gets the parents' ids back in one array instead. The
    statements run on the session's connection, past the ORM: there are no objects to load.
    """
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        return await _tree_sums_pg(conn, cycle_id)
    grouped = _sums_query(cycle_id).subquery()
    parent = aliased(Goal)
    rows = await conn.execute(
        select(
            grouped.c.parent_id,
            *grouped.c[1:],
            parent.id,
            parent.parent_id,
            parent.weight,
            parent.own_progress,
            has_key_results(parent),
            parent.person_id,
        )
        .outerjoin(parent, and_(parent.id == grouped.c.parent_id, parent.cycle_id == cycle_id))
        .where(grouped.c.parent_id.is_not(None))
    )
    sums: list[ChildSums] = []
    inner: list[RollUpRow] = []
    make_sums, make_row = ChildSums._make, RollUpRow._make
    for row in rows.tuples():
        sums.append(make_sums(row[:5]))
        if row[5] is not None:
            inner.append(make_row(row[5:]))
    inner.sort()
    return sums, inner


async def _tree_sums_pg(conn: AsyncConnection, cycle_id: int) -> tuple[list[ChildSums], list[RollUpRow]]:
    grouped = await conn.execute(_sums_query(cycle_id))
    sums = list(map(ChildSums._make, grouped.tuples()))
    ids = bindparam("ids", [s.parent_id for s in sums], type_=ARRAY(BigInteger))
    rows = await conn.execute(
        select(
            Goal.id,
            Goal.parent_id,
            Goal.weight,
            Goal.own_progress,
            has_key_results(Goal),
            Goal.person_id,
        ).where(Goal.id == any_(ids), Goal.cycle_id == cycle_id)
    )
    inner = sorted(map(RollUpRow._make, rows.tuples()))
    return sums, inner


@dataclass(frozen=True, slots=True)
class GoalRow:
    """One objective as a tree view shows it."""

    id: int
    parent_id: int | None
    level: str
    objective: str
    person_id: int
    owner_name: str
    department_id: int | None
    weight: int
    own: float
    position: int


def _row_select() -> Select[int, int | None, str, str, int, str, int | None, int, float, int]:
    return select(
        Goal.id,
        Goal.parent_id,
        Goal.level,
        Goal.objective,
        Goal.person_id,
        Person.name,
        Goal.department_id,
        Goal.weight,
        Goal.own_progress,
        Goal.position,
    ).join(Person, Person.id == Goal.person_id)


def _rows(result: Result[int, int | None, str, str, int, str, int | None, int, float, int]) -> list[GoalRow]:
    return [GoalRow(*row) for row in result.tuples()]


async def goal_rows(session: AsyncSession, ids: Iterable[int]) -> dict[int, GoalRow]:
    wanted = sorted(set(ids))
    out: dict[int, GoalRow] = {}
    for start in range(0, len(wanted), CHUNK):
        result = await session.execute(_row_select().where(Goal.id.in_(wanted[start : start + CHUNK])))
        out.update((r.id, r) for r in _rows(result))
    return out


async def objectives(
    session: AsyncSession, cycle_id: int, level: str, department_id: int | None = None
) -> list[GoalRow]:
    """The cycle's company objectives (``department_id`` None) or one department's objectives, in order."""
    query = (
        _row_select().where(Goal.cycle_id == cycle_id, Goal.level == level).order_by(Goal.position, Goal.id)
    )
    if department_id is not None:
        query = query.where(Goal.department_id == department_id)
    return _rows(await session.execute(query))


async def first_children(
    session: AsyncSession, cycle_id: int, parent_ids: Iterable[int], per_parent: int
) -> list[GoalRow]:
    """Up to ``per_parent`` goals aligned to each of ``parent_ids`` (by position, then id): what a tree view
    lists under a node before "+N"; the counts come from the roll-up."""
    wanted = sorted(set(parent_ids))
    out: list[GoalRow] = []
    for start in range(0, len(wanted), CHUNK):
        rank = (
            func.row_number()
            .over(partition_by=Goal.parent_id, order_by=(Goal.position, Goal.id))
            .label("rank")
        )
        ranked = (
            select(Goal.id.label("id"), rank)
            .where(Goal.cycle_id == cycle_id, Goal.parent_id.in_(wanted[start : start + CHUNK]))
            .subquery()
        )
        result = await session.execute(
            _row_select()
            .join(ranked, ranked.c.id == Goal.id)
            .where(ranked.c.rank <= per_parent)
            .order_by(Goal.parent_id, Goal.position, Goal.id)
        )
        out.extend(_rows(result))
    return out


async def folded_counts(
    session: AsyncSession, cycle_id: int, parent_ids: Iterable[int], shown: Iterable[int]
) -> dict[int, tuple[int, int]]:
    """Per parent, the goals aligned directly to it that a view does not list (``shown``), and how many
    people own them: the "+37 人 · 111 个目标" row under a folded node."""
    wanted = sorted(set(parent_ids))
    listed = sorted(set(shown))
    out: dict[int, tuple[int, int]] = {}
    for start in range(0, len(wanted), CHUNK):
        query = (
            select(Goal.parent_id, func.count(), func.count(func.distinct(Goal.person_id)))
            .where(Goal.cycle_id == cycle_id, Goal.parent_id.in_(wanted[start : start + CHUNK]))
            .group_by(Goal.parent_id)
        )
        if listed:
            query = query.where(Goal.id.not_in(listed))
        rows = await session.execute(query)
        out.update((p, (int(n), int(people))) for p, n, people in rows.tuples() if p is not None)
    return out


async def subtree(session: AsyncSession, cycle_id: int, root_ids: Sequence[int]) -> list[RollUpRow]:
    """The roots and every goal below them, as the roll-up reads them: one recursive statement. For a
    department's or a team's objectives (thousands of rows); the company's whole tree is ``tree_sums``.

    ``UNION`` (not ``UNION ALL``) drops a row met twice, so overlapping roots and parent links that loop
    cannot repeat or spin the walk.
    """
    if not root_ids:
        return []
    below = (
        select(Goal.id.label("id"))
        .where(Goal.id.in_(list(root_ids)), Goal.cycle_id == cycle_id)
        .cte("subtree", recursive=True)
    )
    below = below.union(
        select(Goal.id).join(below, Goal.parent_id == below.c.id).where(Goal.cycle_id == cycle_id)
    )
    rows = await session.execute(
        select(
            Goal.id,
            Goal.parent_id,
            Goal.weight,
            Goal.own_progress,
            has_key_results(Goal),
            Goal.person_id,
        )
        .join(below, below.c.id == Goal.id)
        .order_by(Goal.id)
    )
    return [RollUpRow(i, p, wt, own, bool(h), pid) for i, p, wt, own, h, pid in rows.tuples()]


async def subtree_owner_counts(
    session: AsyncSession, cycle_id: int, root_ids: Sequence[int], department_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """Per root, how many of the cycle's participants own at least one goal below it (the coverage
    numerator); with ``department_ids``, only participants of those departments count.

    One recursive statement walks down from the roots and returns one count per root, so a company
    objective with 100,000 people below it costs no rows over the wire.
    """
    if not root_ids:
        return {}
    below = (
        select(
            Goal.id.label("id"),
            Goal.id.label("root"),
            Goal.person_id.label("person_id"),
            literal(0).label("depth"),
        )
        .where(Goal.id.in_(list(root_ids)))
        .cte("below", recursive=True)
    )
    step = (
        select(Goal.id, below.c.root, Goal.person_id, below.c.depth + 1)
        .join(below, Goal.parent_id == below.c.id)
        .where(Goal.cycle_id == cycle_id, below.c.depth < MAX_DEPTH)
    )
    below = below.union_all(step)
    participants = select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == cycle_id)
    if department_ids is not None:
        participants = participants.join(Person, Person.id == CycleParticipant.person_id).where(
            Person.department_id.in_(list(department_ids))
        )
    rows = await session.execute(
        select(below.c.root, func.count(func.distinct(below.c.person_id)))
        .where(below.c.depth > 0, below.c.person_id.in_(participants))
        .group_by(below.c.root)
    )
    counts = {int(r): int(n) for r, n in rows}
    return {r: counts.get(r, 0) for r in root_ids}


async def participant_count(
    session: AsyncSession, cycle_id: int, department_ids: Iterable[int] | None = None
) -> int:
    """The coverage denominator: the cycle's participants (of these departments)."""
    query = select(func.count()).select_from(CycleParticipant).where(CycleParticipant.cycle_id == cycle_id)
    if department_ids is not None:
        query = query.join(Person, Person.id == CycleParticipant.person_id).where(
            Person.department_id.in_(list(department_ids))
        )
    return int(await session.scalar(query) or 0)


# ------------------------------------------------------------------ one person's goals (``/okr``)
@dataclass(frozen=True, slots=True)
class KeyResultRow:
    id: int
    goal_id: int
    title: str
    kind: str
    unit: str | None
    start: float
    target: float | None
    target_date: date | None
    current: float | None
    done: bool
    progress: float
    weight: int
    milestones: tuple[tuple[str, bool], ...] = ()
    """(name, done) in order."""


async def person_goals(session: AsyncSession, cycle_id: int, person_id: int) -> list[GoalRow]:
    result = await session.execute(
        _row_select()
        .where(Goal.cycle_id == cycle_id, Goal.person_id == person_id)
        .order_by(Goal.position, Goal.id)
    )
    return _rows(result)


async def key_results_of(session: AsyncSession, goal_ids: Iterable[int]) -> dict[int, list[KeyResultRow]]:
    wanted = sorted(set(goal_ids))
    out: dict[int, list[KeyResultRow]] = {g: [] for g in wanted}
    if not wanted:
        return out
    rows = await session.execute(
        select(
            KeyResult.id,
            KeyResult.goal_id,
            KeyResult.title,
            KeyResult.kind,
            KeyResult.unit,
            KeyResult.start_value,
            KeyResult.target_value,
            KeyResult.target_date,
            KeyResult.current_value,
            KeyResult.done_at,
            KeyResult.progress,
            KeyResult.weight,
            KeyResult.milestones,
        )
        .where(KeyResult.goal_id.in_(wanted))
        .order_by(KeyResult.goal_id, KeyResult.position, KeyResult.id)
    )
    for (
        kid,
        goal_id,
        title,
        kind,
        unit,
        start,
        target,
        target_date,
        current,
        done_at,
        progress,
        w,
        ms,
    ) in rows.tuples():
        out[goal_id].append(
            KeyResultRow(
                kid,
                goal_id,
                title,
                kind,
                unit,
                start,
                target,
                target_date,
                current,
                done_at is not None,
                progress,
                w,
                tuple(
                    (str(m.get("name") or ""), bool(m.get("done"))) for m in ms or [] if isinstance(m, dict)
                ),
            )
        )
    return out


async def department_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows}
