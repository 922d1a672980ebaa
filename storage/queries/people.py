"""Who is who: people, departments and reporting lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import ColumnElement, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Department, Person
from storage.queries.scheduled import PersonRow

IN_CHUNK = 10_000
"""Ids per ``IN (…)`` list: PostgreSQL's driver (asyncpg) takes at most 32,767 bind parameters a statement."""


async def people_by_ids(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, Person]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(Person).where(Person.id.in_(wanted)))
    return {p.id: p for p in rows}


async def person_by_platform_id(session: AsyncSession, workspace_id: int, user_id: str) -> Person | None:
    return await session.scalar(
        select(Person).where(Person.workspace_id == workspace_id, Person.platform_user_id == user_id)
    )


async def departments_by_names(
    session: AsyncSession, workspace_id: int, names: Iterable[str]
) -> tuple[list[Department], list[str]]:
    """The active departments with these exact names, and the names that matched none."""
    wanted = [n for n in dict.fromkeys(names) if n]
    if not wanted:
        return [], []
    rows = list(
        await session.scalars(
            select(Department).where(
                Department.workspace_id == workspace_id,
                Department.name.in_(wanted),
                Department.active.is_(True),
            )
        )
    )
    found = {d.name for d in rows}
    return rows, [n for n in wanted if n not in found]


async def department_subtree(session: AsyncSession, workspace_id: int, roots: Iterable[int]) -> set[int]:
    """The given departments and every department below them (a cycle for 研发部 includes its teams)."""
    rows = (
        await session.execute(
            select(Department.id, Department.parent_id).where(Department.workspace_id == workspace_id)
        )
    ).all()
    children: dict[int, list[int]] = {}
    for dept_id, parent_id in rows:
        if parent_id is not None:
            children.setdefault(parent_id, []).append(dept_id)
    out: set[int] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in out:
            continue
        out.add(current)
        stack.extend(children.get(current, []))
    return out


async def departments_by_ids(session: AsyncSession, ids: Iterable[int]) -> list[Department]:
    wanted = set(ids)
    if not wanted:
        return []
    return list(
        await session.scalars(select(Department).where(Department.id.in_(wanted)).order_by(Department.id))
    )


async def active_people(
    session: AsyncSession, workspace_id: int, department_ids: set[int] | None = None
) -> list[Person]:
    """Active people of the workspace, optionally only those in ``department_ids``; ordered by id."""
    stmt = select(Person).where(Person.workspace_id == workspace_id, Person.active.is_(True))
    if department_ids is not None:
        stmt = stmt.where(Person.department_id.in_(department_ids))
    return list(await session.scalars(stmt.order_by(Person.id)))


class HasRoles(Protocol):
    @property
    def id(self) -> int: ...

    def has_role(self, role: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Member:
    """The few columns a broadcast needs. A company-wide kickoff reads every active person; 100,000 ORM
    objects would cost a few hundred MB, these cost a few."""

    id: int
    platform_user_id: str
    locale: str
    roles: str

    def has_role(self, role: str) -> bool:
        return role in {r.strip() for r in self.roles.split(",")}


def active_in(workspace_id: int, department_ids: set[int] | None = None) -> list[ColumnElement[bool]]:
    """The conditions "an active person of the workspace (in one of ``department_ids``, when given)"."""
    conditions: list[ColumnElement[bool]] = [Person.workspace_id == workspace_id, Person.active.is_(True)]
    if department_ids is not None:
        conditions.append(Person.department_id.in_(department_ids))
    return conditions


async def count_active(
    session: AsyncSession, workspace_id: int, department_ids: set[int] | None = None
) -> int:
    """How many ``active_members`` there are, without reading them."""
    n = await session.scalar(
        select(func.count()).select_from(Person).where(*active_in(workspace_id, department_ids))
    )
    return int(n or 0)


async def active_members(
    session: AsyncSession,
    workspace_id: int,
    department_ids: set[int] | None = None,
    *,
    after: int = 0,
    limit: int | None = None,
) -> list[Member]:
    """``active_people`` as lightweight rows, ordered by id; ``after`` and ``limit`` read them a page at a
    time (a kickoff written in chunks)."""
    stmt = (
        select(Person.id, Person.platform_user_id, Person.locale, Person.roles)
        .where(*active_in(workspace_id, department_ids), Person.id > after)
        .order_by(Person.id)
        .limit(limit)
    )
    return [Member(*row) for row in (await session.execute(stmt)).all()]


_WITH_REPORTS = (
    select(Person.manager_id)
    .where(Person.manager_id.in_(bindparam("ids", expanding=True)), Person.active.is_(True))
    .distinct()
)
"""Built once: a card click asks it (is the clicker a manager?), and building costs as much as running."""


async def manager_ids_among(session: AsyncSession, people: Iterable[HasRoles]) -> set[int]:
    """Which of these people manage someone active (by reporting line or by the ``manager`` role)."""
    ids = sorted({p.id for p in people})
    if not ids:
        return set()
    with_reports: set[int] = set()
    # In chunks: asyncpg refuses more than 32,767 bind parameters, and a kickoff passes the whole company.
    for start in range(0, len(ids), IN_CHUNK):
        rows = await session.scalars(_WITH_REPORTS, {"ids": ids[start : start + IN_CHUNK]})
        with_reports.update(i for i in rows if i is not None)
    return with_reports | {p.id for p in people if p.has_role("manager")}


async def count_managers(
    session: AsyncSession, workspace_id: int, department_ids: set[int] | None = None
) -> int:
    """How many ``active_members`` ``manager_ids_among`` would name, counted by the database (someone
    active reports to them, or they hold the ``manager`` role)."""
    reports = aliased(Person)
    has_reports = select(reports.id).where(reports.manager_id == Person.id, reports.active.is_(True)).exists()
    role = ("," + func.replace(Person.roles, " ", "") + ",").like("%,manager,%")
    everyone = active_in(workspace_id, department_ids)
    stmt = select(func.count()).select_from(Person).where(*everyone, or_(has_reports, role))
    return int(await session.scalar(stmt) or 0)


async def direct_reports(session: AsyncSession, manager_id: int) -> list[Person]:
    return list(
        await session.scalars(
            select(Person).where(Person.manager_id == manager_id, Person.active.is_(True)).order_by(Person.id)
        )
    )


def on_leave(person: Person | PersonRow, day: date) -> bool:
    if person.leave_from is None or person.leave_until is None:
        return False
    return person.leave_from <= day <= person.leave_until
