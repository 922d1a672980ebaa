"""The goal tree's rows (issue 17): objectives at each level with their key results, alignment candidates,
and saving one owner's set of objectives *in place*.

In place matters: a manager's objective may already have their team's goals aligned to it, a key result may
already carry action items, evidence and a value history. Saving again keeps the rows of the objectives
and key results that are still there (matched by their text, and for a person's goals by position when the
text changed: an edited typo keeps its children), and removes only what went away, after unlinking what
pointed at it. Level strings (``company``, ``department``, ``person``) are passed in by the caller
(``bot.core.status.GoalLevel``): storage sits below the core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ActionItem,
    Department,
    Evidence,
    EvidenceRequest,
    Goal,
    KeyResult,
    KeyResultRhythm,
    KeyResultValue,
)

PERSON = "person"
"""``Goal.level`` of a person's goal: the model's default, so queries that mean "a person's goals" say it."""


@dataclass(frozen=True)
class KrDraft:
    """A key result as the form read it (``handlers.goals.kr_parse.ParsedKr``, in storage's words)."""

    title: str
    kind: str
    unit: str | None = None
    start: float = 0.0
    target: float | None = None
    target_date: date | None = None
    current: float | None = None
    deadline: date | None = None
    milestones: list[dict[str, Any]] = field(default_factory=list)
    weight: int = 0


@dataclass(frozen=True)
class GoalDraft:
    objective: str
    key_result: str
    """The key-result lines as typed, kept on the goal for history (and shown again on the form)."""
    weight: int
    parent_id: int | None
    krs: Sequence[KrDraft]


@dataclass
class Saved:
    goals: list[Goal]
    """The saved objectives, in the order of the drafts."""
    kept: list[Goal]
    """Objectives left out of the drafts but kept because goals are aligned to them."""
    detached: int
    """Goals that were aligned to a removed objective and are now unaligned."""
    new_values: list[tuple[KeyResult, float]]
    """Key results without a value yet that the form gives one ("（当前 5%）"): the caller records each
    through the goals flow's ``record_value``, so the value has its history row. A key result that already
    has a value (from a check-in) keeps it: the line's "当前" is then only where it started."""


# ------------------------------------------------------------------------------------------------ reads


async def goals_at(
    session: AsyncSession,
    cycle_id: int,
    *,
    level: str,
    person_id: int | None = None,
    department_id: int | None = None,
) -> list[Goal]:
    """One level's objectives in a cycle, in position order: a person's goals (``person_id``), one
    department's objectives (``department_id``) or the company's."""
    stmt = select(Goal).where(Goal.cycle_id == cycle_id, Goal.level == level)
    if person_id is not None:
        stmt = stmt.where(Goal.person_id == person_id)
    if department_id is not None:
        stmt = stmt.where(Goal.department_id == department_id)
    return list(await session.scalars(stmt.order_by(Goal.position, Goal.id)))


async def goals_by_ids(session: AsyncSession, ids: Iterable[int]) -> list[Goal]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(await session.scalars(select(Goal).where(Goal.id.in_(wanted)).order_by(Goal.id)))


async def department_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows.tuples()}


async def key_results_of(session: AsyncSession, goal_ids: Iterable[int]) -> dict[int, list[KeyResult]]:
    ids = sorted(set(goal_ids))
    out: dict[int, list[KeyResult]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.scalars(
        select(KeyResult).where(KeyResult.goal_id.in_(ids)).order_by(KeyResult.position, KeyResult.id)
    )
    for kr in rows:
        out[kr.goal_id].append(kr)
    return out


async def krs_of(session: AsyncSession, cycle_id: int, person_id: int) -> list[tuple[Goal, KeyResult]]:
    """A person's key results in a cycle with their goal, in goal then key-result order."""
    rows = await session.execute(
        select(Goal, KeyResult)
        .join(KeyResult, KeyResult.goal_id == Goal.id)
        .where(Goal.cycle_id == cycle_id, Goal.person_id == person_id, Goal.level == PERSON)
        .order_by(Goal.position, Goal.id, KeyResult.position, KeyResult.id)
    )
    return [(g, kr) for g, kr in rows.tuples()]


async def child_counts(session: AsyncSession, goal_ids: Iterable[int]) -> dict[int, int]:
    """How many goals are aligned to each of these objectives (absent = none)."""
    ids = sorted(set(goal_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Goal.parent_id, func.count()).where(Goal.parent_id.in_(ids)).group_by(Goal.parent_id)
    )
    return {int(parent): int(n) for parent, n in rows.tuples() if parent is not None}


async def parent_chain(session: AsyncSession, goal_id: int, *, limit: int = 32) -> list[int]:
    """``goal_id`` and the objectives above it, bottom-up; stops at a repeat (a loop in bad data)."""
    chain: list[int] = []
    current: int | None = goal_id
    while current is not None and current not in chain and len(chain) < limit:
        chain.append(current)
        current = await session.scalar(select(Goal.parent_id).where(Goal.id == current))
    return chain


async def department_chain(session: AsyncSession, department_id: int | None) -> list[Department]:
    """A department and its ancestors, nearest first (a loop in the org data is cut at the repeat)."""
    out: list[Department] = []
    seen: set[int] = set()
    current = department_id
    while current is not None and current not in seen:
        seen.add(current)
        dept = await session.get(Department, current)
        if dept is None:
            break
        out.append(dept)
        current = dept.parent_id
    return out


async def departments_headed_by(session: AsyncSession, person_id: int) -> list[Department]:
    """The active departments whose head is this person (whose objectives they may set)."""
    rows = await session.scalars(
        select(Department)
        .where(Department.head_id == person_id, Department.active.is_(True))
        .order_by(Department.id)
    )
    return list(rows)


async def alignment_candidates(
    session: AsyncSession,
    cycle_id: int,
    *,
    manager_id: int | None,
    department_ids: Sequence[int],
    department_level: str,
    limit: int,
) -> list[Goal]:
    """What a person's goal may align to: the manager's own goals in the cycle and the objectives of the
    given departments, newest first."""
    conditions = []
    if manager_id is not None:
        conditions.append((Goal.person_id == manager_id) & (Goal.level == PERSON))
    if department_ids:
        conditions.append((Goal.level == department_level) & Goal.department_id.in_(list(department_ids)))
    if not conditions:
        return []
    stmt = (
        select(Goal).where(Goal.cycle_id == cycle_id, or_(*conditions)).order_by(Goal.id.desc()).limit(limit)
    )
    return list(await session.scalars(stmt))


# ----------------------------------------------------------------------------------------------- writes


def match(old: Sequence[str], new: Sequence[str], *, by_position: bool) -> list[int | None]:
    """For each new text, the index of the old row it updates: the same text first, then (``by_position``)
    the old row at the same position if it is still free. None = a new row."""
    result: list[int | None] = [None] * len(new)
    free = list(range(len(old)))
    for j, text in enumerate(new):
        for i in free:
            if old[i] == text:
                result[j] = i
                free.remove(i)
                break
    if by_position:
        for j in range(len(new)):
            if result[j] is None and j in free:
                result[j] = j
                free.remove(j)
    return result


async def save_goals(
    session: AsyncSession,
    *,
    existing: Sequence[Goal],
    drafts: Sequence[GoalDraft],
    cycle_id: int,
    owner_id: int,
    level: str,
    department_id: int | None,
    by_position: bool,
    keep_with_children: bool,
    now: datetime,
) -> Saved:
    """Make ``existing`` (one owner's objectives at one level) become ``drafts``.

    An existing objective that no draft matches is removed, unless goals are aligned to it: then it is kept
    as it is (``keep_with_children``, company and department objectives) or its aligned goals are made
    unaligned first (a person's goals, whose weights must add up to 100 without it)."""
    index = match([g.objective for g in existing], [d.objective for d in drafts], by_position=by_position)
    used = {i for i in index if i is not None}
    children = await child_counts(session, [g.id for g in existing])
    kept: list[Goal] = []
    removed: list[int] = []
    detached = 0
    for i, goal in enumerate(existing):
        if i in used:
            continue
        if children.get(goal.id) and keep_with_children:
            kept.append(goal)
            continue
        detached += children.get(goal.id, 0)
        removed.append(goal.id)
    await delete_goals(session, removed)
    old_krs = await key_results_of(session, [existing[i].id for i in used])
    goals: list[Goal] = []
    for position, (draft, at) in enumerate(zip(drafts, index, strict=True)):
        if at is None:
            goal = Goal(cycle_id=cycle_id, person_id=owner_id, level=level, department_id=department_id)
            session.add(goal)
        else:
            goal = existing[at]
        goal.position = position
        goal.objective = draft.objective
        goal.key_result = draft.key_result
        goal.weight = draft.weight
        goal.parent_id = draft.parent_id
        goal.updated_at = now
        goals.append(goal)
    for j, goal in enumerate(kept):
        goal.position = len(drafts) + j
    await session.flush()
    new_values: list[tuple[KeyResult, float]] = []
    for goal, draft, at in zip(goals, drafts, index, strict=True):
        old = old_krs.get(existing[at].id, []) if at is not None else []
        new_values += await _save_krs(session, goal.id, old, draft.krs, now)
    await session.flush()
    return Saved(goals=goals, kept=kept, detached=detached, new_values=new_values)


async def _save_krs(
    session: AsyncSession, goal_id: int, old: Sequence[KeyResult], drafts: Sequence[KrDraft], now: datetime
) -> list[tuple[KeyResult, float]]:
    index = match([k.title for k in old], [d.title for d in drafts], by_position=True)
    used = {i for i in index if i is not None}
    await delete_key_results(session, [k.id for i, k in enumerate(old) if i not in used])
    values: list[tuple[KeyResult, float]] = []
    for position, (draft, i) in enumerate(zip(drafts, index, strict=True)):
        if i is None:
            kr = KeyResult(goal_id=goal_id, current_value=None, done_at=None)
            session.add(kr)
            same_measure = False
        else:
            kr = old[i]
            same_measure = kr.kind == draft.kind and kr.unit == draft.unit
        done = (
            {str(m.get("name")): bool(m.get("done")) for m in (kr.milestones or [])} if same_measure else {}
        )
        kr.position = position
        kr.title = draft.title
        kr.kind = draft.kind
        kr.unit = draft.unit
        kr.start_value = draft.start
        kr.target_value = draft.target
        kr.target_date = draft.target_date
        kr.deadline = draft.deadline
        kr.milestones = [{**m, "done": done.get(str(m["name"]), False)} for m in draft.milestones]
        kr.weight = draft.weight
        kr.updated_at = now
        if not same_measure:
            kr.current_value = None
            kr.done_at = None
            kr.progress = 0.0
        if draft.current is not None and kr.current_value is None:
            values.append((kr, draft.current))
    await session.flush()
    return values


async def delete_goals(session: AsyncSession, goal_ids: Sequence[int]) -> None:
    """Remove objectives and their key results, unlinking first whatever points at them (aligned goals
    become unaligned, a goal carried from one forgets where it came from)."""
    ids = list(goal_ids)
    if not ids:
        return
    krs = list(await session.scalars(select(KeyResult.id).where(KeyResult.goal_id.in_(ids))))
    await delete_key_results(session, krs)
    for column in (Goal.parent_id, Goal.carried_from_id):
        await session.execute(
            update(Goal)
            .where(column.in_(ids))
            .values({column: None})
            .execution_options(synchronize_session=False)
        )
    await session.execute(delete(Goal).where(Goal.id.in_(ids)).execution_options(synchronize_session=False))
    _forget(session, Goal, ids)


async def delete_key_results(session: AsyncSession, kr_ids: Sequence[int]) -> None:
    """Remove key results (their value history and rhythms go with them); action items, evidence requests
    and evidence that named one stay, without the link."""
    ids = list(kr_ids)
    if not ids:
        return
    rhythms = select(KeyResultRhythm.id).where(KeyResultRhythm.key_result_id.in_(ids))
    await session.execute(
        update(EvidenceRequest)
        .where(EvidenceRequest.rhythm_id.in_(rhythms))
        .values(rhythm_id=None)
        .execution_options(synchronize_session=False)
    )
    for model in (ActionItem, EvidenceRequest, Evidence):
        await session.execute(
            update(model)
            .where(model.key_result_id.in_(ids))
            .values(key_result_id=None)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(KeyResult)
        .where(KeyResult.carried_from_id.in_(ids))
        .values(carried_from_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(KeyResultValue).where(KeyResultValue.key_result_id.in_(ids)))
    await session.execute(delete(KeyResultRhythm).where(KeyResultRhythm.key_result_id.in_(ids)))
    await session.execute(
        delete(KeyResult).where(KeyResult.id.in_(ids)).execution_options(synchronize_session=False)
    )
    _forget(session, KeyResult, ids)


def _forget(session: AsyncSession, model: type[Goal] | type[KeyResult], ids: Sequence[int]) -> None:
    """Drop the session's copies of deleted rows: a stale copy must never be flushed back as an UPDATE."""
    gone = set(ids)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model) and obj.id in gone:
            session.expunge(obj)
