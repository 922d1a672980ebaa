"""Who may act on what, and who sits above whom — the one place every flow asks.

A refused click raises ``ctx.refuse(...)``: the dispatcher rolls the transaction back, so nothing changes,
and the clicker is told why. Rules (DESIGN.md, "Who may do what"):

- only HR admins start or cancel a cycle;
- only the employee edits their own goals, check-in or review;
- only the employee's *approvers* confirm, acknowledge or return: their manager (or, without one, the head
  of their department), the manager's configured delegate, and the HRBP (the person's own or their
  department's). Nobody approves their own record;
- the evidence, action-item, escalation and digest flows also ask who may *oversee* a person (approvers,
  the director two levels up, leaders and HR admins) and resolve ``@name`` mentions.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from storage.models import Department, Person
from storage.queries.people import on_leave


def is_hr_admin(person: Person) -> bool:
    return person.has_role("hr_admin")


def require_hr_admin(ctx: Context) -> None:
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("flows.only_hr")


def require_self(ctx: Context, owner_id: int) -> None:
    if ctx.person.id != owner_id:
        raise ctx.refuse("flows.only_owner")


async def line_manager(session: AsyncSession, employee: Person) -> Person | None:
    """The manager on record, or the department head when the person has none (and is not the head)."""
    manager_id = employee.manager_id
    if manager_id is None and employee.department_id is not None:
        dept = await session.get(Department, employee.department_id)
        if dept is not None and dept.head_id != employee.id:
            manager_id = dept.head_id
    if manager_id is None or manager_id == employee.id:
        return None
    manager = await session.get(Person, manager_id)
    return manager if manager is not None and manager.active else None


async def hrbp_of(session: AsyncSession, employee: Person) -> Person | None:
    hrbp_id = employee.hrbp_id
    if hrbp_id is None and employee.department_id is not None:
        dept = await session.get(Department, employee.department_id)
        hrbp_id = dept.hrbp_id if dept is not None else None
    if hrbp_id is None or hrbp_id == employee.id:
        return None
    hrbp = await session.get(Person, hrbp_id)
    return hrbp if hrbp is not None and hrbp.active else None


async def approver_ids(session: AsyncSession, employee: Person) -> set[int]:
    out: set[int] = set()
    manager = await line_manager(session, employee)
    if manager is not None:
        out.add(manager.id)
        if manager.delegate_id is not None:
            out.add(manager.delegate_id)
    hrbp = await hrbp_of(session, employee)
    if hrbp is not None:
        out.add(hrbp.id)
    out.discard(employee.id)
    return out


async def require_approver(ctx: Context, employee: Person) -> None:
    if ctx.person.id not in await approver_ids(ctx.session, employee):
        raise ctx.refuse("flows.only_approver", name=employee.name)


async def approver_to_notify(session: AsyncSession, employee: Person, today: date) -> Person | None:
    """Whom to send the employee's submission to: the line manager, or their delegate while they are on
    leave, or the HRBP when there is no manager at all."""
    manager = await line_manager(session, employee)
    if manager is not None:
        if on_leave(manager, today) and manager.delegate_id is not None:
            delegate = await session.get(Person, manager.delegate_id)
            if delegate is not None and delegate.active and delegate.id != employee.id:
                return delegate
        return manager
    return await hrbp_of(session, employee)


# ---------------------------------------------------------------- who sits above whom


async def is_manager_of(session: AsyncSession, actor: Person, person: Person) -> bool:
    """The line manager (see ``line_manager``), or the person the manager named as delegate."""
    manager = await line_manager(session, person)
    if manager is None:
        return False
    return actor.id in (manager.id, manager.delegate_id)


async def manager_of(session: AsyncSession, person: Person) -> Person | None:
    return await line_manager(session, person)


async def director_of(session: AsyncSession, person: Person) -> Person | None:
    """The manager's manager; failing that, the head of the person's department (if not the person)."""
    manager = await manager_of(session, person)
    if manager is not None:
        above = await manager_of(session, manager)
        if above is not None and above.id != person.id:
            return above
    if person.department_id is not None:
        dept = await session.get(Department, person.department_id)
        if dept is not None and dept.head_id not in (None, person.id, person.manager_id):
            head = await session.get(Person, dept.head_id)
            if head is not None and head.active:
                return head
    return None


async def may_oversee(session: AsyncSession, actor: Person, person: Person) -> bool:
    """Manager (or delegate), the manager's manager, the HRBP, or a leader / HR admin of the workspace."""
    if actor.workspace_id != person.workspace_id:
        return False
    if actor.has_role("leader") or actor.has_role("hr_admin"):
        return True
    if await is_manager_of(session, actor, person):
        return True
    hrbp = await hrbp_of(session, person)
    if hrbp is not None and hrbp.id == actor.id:
        return True
    director = await director_of(session, person)
    return director is not None and director.id == actor.id


async def leads_anyone(session: AsyncSession, person: Person) -> bool:
    """Whether the manager commands are for ``person``: they have active direct reports, stand in as a
    manager's delegate, or head a department (whose members without a manager on record report to them)."""
    reports = select(Person.id).where(
        Person.workspace_id == person.workspace_id,
        Person.active.is_(True),
        or_(Person.manager_id == person.id, Person.delegate_id == person.id),
    )
    if await session.scalar(reports.limit(1)) is not None:
        return True
    heads = select(Department.id).where(Department.head_id == person.id, Department.active.is_(True))
    return await session.scalar(heads.limit(1)) is not None


async def find_by_mention(session: AsyncSession, workspace_id: int, token: str) -> list[Person]:
    """``@张三`` → the active people of the workspace with that name (or platform user id).

    Returns every match, so the caller can say "two people are called 张三" instead of guessing.
    """
    name = token.strip().lstrip("@＠").strip()
    if not name:
        return []
    rows = await session.scalars(
        select(Person)
        .where(
            Person.workspace_id == workspace_id,
            Person.active.is_(True),
            or_(Person.name == name, Person.platform_user_id == name),
        )
        .order_by(Person.id)
    )
    return list(rows)
