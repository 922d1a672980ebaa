"""A cycle's results, one person at a time and one page at a time, and HR's flags on them.

The export must hold a cycle of 50,000 people without loading it: ``result_page`` reads one page of people
by keyset (``Person.id > after``, ``LIMIT``), and everything else a row needs (flags, the latest appeal,
the manager's scores) is read for that page's ids only, in three more statements. So a page costs four
statements whatever its size, and memory holds one page.

A cycle's people are its participants plus anyone holding a grade in it (a grade outlives a participant
row). Statuses come in as parameters: storage sits below ``bot.core.status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.feedback_scales import DIMENSIONS
from storage.models import (
    Cycle,
    CycleParticipant,
    Department,
    Grade,
    GradeAppeal,
    PeerFeedback,
    Person,
    ResultFlag,
)

PROMOTION = "promotion"
HIGH_POTENTIAL = "high_potential"
FLAG_KINDS: tuple[str, ...] = (PROMOTION, HIGH_POTENTIAL)
"""``ResultFlag.kind``: the marks HR sets per person and cycle, each one export column of the same name."""


@dataclass(frozen=True)
class ResultRow:
    """One person's result in one cycle, as stored; the export maps grades to coefficients."""

    person_id: int
    platform_user_id: str
    name: str
    active: bool
    department: str | None
    """The department the grade was given in (as calibration counted it); without a grade, the current one."""
    manager: str | None
    manager_platform_user_id: str | None
    grade: str | None
    grade_status: str | None
    released_at: datetime | None
    corrected_at: datetime | None
    score: float | None
    """Mean of the manager's own 1-5 dimension scores in this cycle, two decimals; None if none given."""
    flags: frozenset[str]
    appeal_status: str | None
    """The status of the person's latest appeal in this cycle; None when they never appealed."""


def manager_score(scores: dict[str, object]) -> float | None:
    """The mean of the valid 1-5 dimension scores, rounded to two decimals (None without any)."""
    values = [
        float(v) for d in DIMENSIONS if isinstance(v := scores.get(d), int | float) and 1 <= float(v) <= 5
    ]
    return round(fmean(values), 2) if values else None


async def result_page(
    session: AsyncSession,
    cycle_id: int,
    *,
    after: int,
    limit: int,
    grade_statuses: Sequence[str] | None,
) -> list[ResultRow]:
    """The next ``limit`` people of the cycle with ``Person.id > after``, by id. ``grade_statuses`` None:
    every participant and grade holder (ungraded ones with ``grade`` None); else only grades in those."""
    manager = aliased(Person)
    in_cycle = exists().where(CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id == Person.id)
    query = (
        select(
            Person.id,
            Person.platform_user_id,
            Person.name,
            Person.active,
            Department.name,
            manager.name,
            manager.platform_user_id,
            Grade.grade,
            Grade.status,
            Grade.released_at,
            Grade.corrected_at,
        )
        .select_from(Person)
        .outerjoin(Grade, and_(Grade.cycle_id == cycle_id, Grade.person_id == Person.id))
        .outerjoin(Department, Department.id == func.coalesce(Grade.department_id, Person.department_id))
        .outerjoin(manager, manager.id == Person.manager_id)
        .where(Person.id > after)
        .order_by(Person.id)
        .limit(limit)
    )
    if grade_statuses is None:
        query = query.where(or_(Grade.id.is_not(None), in_cycle))
    else:
        query = query.where(Grade.status.in_(list(grade_statuses)))
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    flags = await _flags(session, cycle_id, ids)
    appeals = await _appeals(session, cycle_id, ids)
    scores = await _scores(session, cycle_id, ids)
    return [
        ResultRow(
            person_id=pid,
            platform_user_id=uid,
            name=name,
            active=bool(active),
            department=dept,
            manager=mgr,
            manager_platform_user_id=mgr_uid,
            grade=grade,
            grade_status=status,
            released_at=released_at,
            corrected_at=corrected_at,
            score=scores.get(pid),
            flags=frozenset(flags.get(pid, ())),
            appeal_status=appeals.get(pid),
        )
        for pid, uid, name, active, dept, mgr, mgr_uid, grade, status, released_at, corrected_at in rows
    ]


async def _flags(session: AsyncSession, cycle_id: int, ids: list[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    rows = await session.execute(
        select(ResultFlag.person_id, ResultFlag.kind).where(
            ResultFlag.cycle_id == cycle_id, ResultFlag.person_id.in_(ids)
        )
    )
    for pid, kind in rows.all():
        out.setdefault(pid, set()).add(kind)
    return out


async def _appeals(session: AsyncSession, cycle_id: int, ids: list[int]) -> dict[int, str]:
    latest = (
        select(func.max(GradeAppeal.id))
        .where(GradeAppeal.cycle_id == cycle_id, GradeAppeal.person_id.in_(ids))
        .group_by(GradeAppeal.person_id)
    )
    rows = await session.execute(
        select(GradeAppeal.person_id, GradeAppeal.status).where(GradeAppeal.id.in_(latest))
    )
    return {pid: status for pid, status in rows.all()}


async def _scores(session: AsyncSession, cycle_id: int, ids: list[int]) -> dict[int, float]:
    rows = await session.execute(
        select(PeerFeedback.subject_id, PeerFeedback.scores).where(
            PeerFeedback.cycle_id == cycle_id,
            PeerFeedback.role == "manager",
            PeerFeedback.subject_id.in_(ids),
        )
    )
    out: dict[int, float] = {}
    for pid, scores in rows.all():
        score = manager_score(dict(scores or {}))
        if score is not None:
            out[pid] = score
    return out


async def cycle_grade_values(session: AsyncSession, cycle_id: int) -> list[str]:
    """Every distinct grade the cycle holds: the export checks them against the coefficients up front, so
    a grade without one stops it before the first row is written."""
    return sorted(await session.scalars(select(Grade.grade).where(Grade.cycle_id == cycle_id).distinct()))


async def cycles_by_code(
    session: AsyncSession, code: str, workspace_ids: Sequence[int] | None
) -> list[Cycle]:
    query = select(Cycle).where(Cycle.code == code).order_by(Cycle.id)
    if workspace_ids is not None:
        query = query.where(Cycle.workspace_id.in_(list(workspace_ids)))
    return list(await session.scalars(query))


async def recent_cycle_codes(session: AsyncSession, workspace_ids: Sequence[int] | None, n: int) -> list[str]:
    query = select(Cycle.code).order_by(Cycle.id.desc()).limit(n)
    if workspace_ids is not None:
        query = query.where(Cycle.workspace_id.in_(list(workspace_ids)))
    return list(await session.scalars(query))


async def latest_cycle_of(session: AsyncSession, person_id: int, statuses: Sequence[str]) -> Cycle | None:
    """The most recently started cycle in ``statuses`` that the person takes part in or holds a grade in."""
    takes_part = exists().where(
        CycleParticipant.cycle_id == Cycle.id, CycleParticipant.person_id == person_id
    )
    graded = exists().where(Grade.cycle_id == Cycle.id, Grade.person_id == person_id)
    return await session.scalar(
        select(Cycle)
        .where(Cycle.status.in_(list(statuses)), or_(takes_part, graded))
        .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        .limit(1)
    )


async def in_cycle(session: AsyncSession, cycle_id: int, person_id: int) -> bool:
    """Whether the person takes part in the cycle or holds a grade in it (whom a flag may be put on)."""
    takes_part = exists().where(
        CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id == person_id
    )
    graded = exists().where(Grade.cycle_id == cycle_id, Grade.person_id == person_id)
    return bool(await session.scalar(select(or_(takes_part, graded))))


async def flags_of(session: AsyncSession, cycle_id: int, person_id: int) -> list[ResultFlag]:
    return list(
        await session.scalars(
            select(ResultFlag)
            .where(ResultFlag.cycle_id == cycle_id, ResultFlag.person_id == person_id)
            .order_by(ResultFlag.kind)
        )
    )


async def add_flag(
    session: AsyncSession, cycle_id: int, person_id: int, kind: str, *, by_id: int | None, at: datetime
) -> ResultFlag | None:
    """Insert the flag; None when it is already there (the unique key decides, so two taps mark once)."""
    row = ResultFlag(cycle_id=cycle_id, person_id=person_id, kind=kind, set_by_id=by_id, set_at=at)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    return row


async def remove_flag(session: AsyncSession, cycle_id: int, person_id: int, kind: str) -> int | None:
    """Delete the flag and return its id; None when it was not set."""
    return await session.scalar(
        delete(ResultFlag)
        .where(ResultFlag.cycle_id == cycle_id, ResultFlag.person_id == person_id, ResultFlag.kind == kind)
        .returning(ResultFlag.id)
    )
