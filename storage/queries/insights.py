"""The rows behind the monthly department brief, the threshold alerts and the early warning.

The health figures themselves come from ``storage.queries.metrics`` (grouped per department or per person in
one statement each); this module adds what those figures do not say: *who* is behind a number (people with
photo-less action items, slow first responses, unanswered check-ins), the risks of a set of departments
(overdue items, progress below plan), and one person's recent check-ins and evidence ratings for the early
warning. Every statement covers a whole set of departments at once (``IN``), never one query per department.

Statuses are passed in by the caller (``bot.core.status``), as in ``metrics.overdue``: storage sits below the
core and does not decide what counts as open or answered.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, AuditLog, CheckIn, Department, Evidence, Person
from storage.queries import metrics as m


@dataclass(frozen=True)
class Dept:
    id: int
    name: str
    parent_id: int | None
    head_id: int | None
    hrbp_id: int | None


@dataclass(frozen=True)
class Member:
    """Where one active person sits: enough to sum per-person figures into teams and departments."""

    id: int
    name: str
    department_id: int | None
    manager_id: int | None


@dataclass(frozen=True)
class Behind:
    """The people behind a number: how many there are, how many records they account for together, and the
    first ``limit`` of them, most records first."""

    total: int
    items: int
    people: list[m.RiskPerson]


@dataclass(frozen=True)
class CheckinRow:
    due_at: datetime
    status: str
    submitted_at: datetime | None
    progress: dict[str, object]


@dataclass(frozen=True)
class RatingRow:
    received_at: datetime
    rating: str


# ------------------------------------------------------------------ the organisation


async def departments(session: AsyncSession, workspace_id: int) -> dict[int, Dept]:
    """Every active department of the workspace (a few hundred rows at most)."""
    rows = await session.execute(
        select(Department.id, Department.name, Department.parent_id, Department.head_id, Department.hrbp_id)
        .where(Department.workspace_id == workspace_id, Department.active.is_(True))
        .order_by(Department.id)
    )
    return {r[0]: Dept(r[0], r[1], r[2], r[3], r[4]) for r in rows}


async def members(session: AsyncSession, workspace_id: int) -> dict[int, Member]:
    """Every active person of the workspace with their department and manager."""
    rows = await session.execute(
        select(Person.id, Person.name, Person.department_id, Person.manager_id)
        .where(Person.workspace_id == workspace_id, Person.active.is_(True))
        .order_by(Person.id)
    )
    return {r[0]: Member(r[0], r[1], r[2], r[3]) for r in rows}


def _per_person(
    source: Any,
    person: Any,
    workspace_id: int,
    department_ids: Collection[int] | None,
    *conds: ColumnElement[bool],
) -> Select[int, str, int]:
    """(id, name, n): the rows of ``source`` matching ``conds``, counted per person (``person`` is the column
    naming the person), for the people of the workspace (and of ``department_ids`` when given)."""
    scope: list[ColumnElement[bool]] = [Person.workspace_id == workspace_id]
    if department_ids is not None:
        scope.append(Person.department_id.in_(list(department_ids)))
    return (
        select(Person.id.label("id"), Person.name.label("name"), func.count().label("n"))
        .select_from(source)
        .join(Person, Person.id == person)
        .where(*scope, *conds)
        .group_by(Person.id, Person.name)
    )


async def _behind(session: AsyncSession, per_person: Select[int, str, int], limit: int) -> Behind:
    """``per_person`` selects (id, name, n) grouped per person: how many people, and the top ``limit``."""
    sub = per_person.subquery()
    totals = (
        await session.execute(select(func.count(), func.coalesce(func.sum(sub.c.n), 0)).select_from(sub))
    ).one()
    people: list[m.RiskPerson] = []
    if limit > 0:
        rows = await session.execute(select(sub).order_by(sub.c.n.desc(), sub.c.name, sub.c.id).limit(limit))
        people = [m.RiskPerson(r.id, r.name, int(r.n)) for r in rows]
    return Behind(int(totals[0] or 0), int(totals[1] or 0), people)


# ------------------------------------------------------------------ the people behind a number


async def missing_evidence(
    session: AsyncSession,
    workspace_id: int,
    department_ids: Collection[int] | None,
    window: m.Window,
    *,
    limit: int = 5,
) -> Behind:
    """Owners of photo-required action items due in ``window`` (not closed) without a photo: the items that
    pull evidence completeness down, counted per owner (the same items ``metrics`` counts)."""
    has_photo = exists().where(Evidence.action_item_id == ActionItem.id)
    stmt = _per_person(
        ActionItem,
        ActionItem.owner_id,
        workspace_id,
        department_ids,
        *m.items_due_in(window),
        ActionItem.evidence_required.is_(True),
        ~has_photo,
    )
    return await _behind(session, stmt, limit)


async def slow_responses(
    session: AsyncSession,
    workspace_id: int,
    department_ids: Collection[int] | None,
    window: m.Window,
    *,
    hours: float,
    limit: int = 5,
) -> Behind:
    """Owners of action items created in ``window`` whose first response took longer than ``hours``: the
    items that push the average response time up (the same items ``metrics`` times)."""
    stmt = _per_person(
        ActionItem,
        ActionItem.owner_id,
        workspace_id,
        department_ids,
        *m.responses_in(window),
        m.response_seconds(session) > hours * 3600,
    )
    return await _behind(session, stmt, limit)


async def unanswered_checkins(
    session: AsyncSession,
    workspace_id: int,
    department_ids: Collection[int] | None,
    window: m.Window,
    *,
    limit: int = 5,
) -> Behind:
    """People with check-ins due in ``window`` (not skipped) that were not submitted: what keeps check-in
    completion below target (``metrics.DONE_CHECKIN`` is the definition of done)."""
    stmt = _per_person(
        CheckIn,
        CheckIn.person_id,
        workspace_id,
        department_ids,
        *m.checkins_due_in(window),
        CheckIn.status.not_in(m.DONE_CHECKIN),
    )
    return await _behind(session, stmt, limit)


# ------------------------------------------------------------------ the brief's risks


async def overdue_items(
    session: AsyncSession,
    workspace_id: int,
    department_ids: Collection[int] | None,
    *,
    before: date,
    open_statuses: Collection[str],
    limit: int = 5,
) -> Behind:
    """Open action items whose deadline lies before ``before``, per owner."""
    stmt = _per_person(
        ActionItem,
        ActionItem.owner_id,
        workspace_id,
        department_ids,
        ActionItem.status.in_(list(open_statuses)),
        ActionItem.deadline < before,
    )
    return await _behind(session, stmt, limit)


async def falling_progress(
    session: AsyncSession,
    workspace_id: int,
    department_ids: Collection[int] | None,
    window: m.Window,
    *,
    limit: int = 5,
) -> Behind:
    """People warned in ``window`` that their progress fell behind plan (the escalation flow's audit rows)."""
    stmt = _per_person(
        AuditLog, AuditLog.entity_id, workspace_id, department_ids, *m.progress_gaps_in(window)
    )
    return await _behind(session, stmt, limit)


# ------------------------------------------------------------------ one person's recent record


async def person_checkins(
    session: AsyncSession, person_id: int, start: datetime, end: datetime
) -> list[CheckinRow]:
    """The person's check-ins due in ``[start, end)`` (skipped ones left out), oldest first."""
    rows = await session.execute(
        select(CheckIn.due_at, CheckIn.status, CheckIn.submitted_at, CheckIn.progress)
        .where(
            CheckIn.person_id == person_id,
            CheckIn.due_at >= start,
            CheckIn.due_at < end,
            CheckIn.status != "skipped",
        )
        .order_by(CheckIn.due_at, CheckIn.id)
    )
    return [CheckinRow(r[0], r[1], r[2], dict(r[3] or {})) for r in rows]


async def person_ratings(
    session: AsyncSession, person_id: int, start: datetime, end: datetime
) -> list[RatingRow]:
    """Ratings of the photos the person sent in ``[start, end)``, oldest first."""
    rows = await session.execute(
        select(Evidence.received_at, Evidence.rating)
        .where(
            Evidence.person_id == person_id,
            Evidence.received_at >= start,
            Evidence.received_at < end,
            Evidence.rating.is_not(None),
        )
        .order_by(Evidence.received_at, Evidence.id)
    )
    return [RatingRow(r[0], r[1]) for r in rows if r[1] is not None]


async def sent_detail(
    session: AsyncSession, *, action: str, entity: str, entity_id: int, key: str
) -> dict[str, Any] | None:
    """The detail of the audit row a flow wrote when it sent ``key`` (its ``once`` record), or None: what a
    previous brief showed, for the next one to compare with."""
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == entity, AuditLog.entity_id == entity_id, AuditLog.action == action
        )
    )
    return next((d for d in rows if isinstance(d, dict) and d.get("key") == key), None)
