"""Who may act on what, and who sits above whom — the one place every flow asks.

A refused click raises ``ctx.refuse(...)``: the dispatcher rolls the transaction back, so nothing changes,
and the clicker is told why. Rules (DESIGN.md, "Who may do what"):

- only HR admins start or cancel a cycle;
- only the employee edits their own goals, check-in or review;
- only the employee's *approvers* confirm, acknowledge or return: their manager (or, without one, the head
  of their department), the manager's configured delegate, and the HRBP (the person's own or their
  department's). Nobody approves their own record;
- the evidence, action-item, escalation and digest flows also ask who may *oversee* a person (approvers,
  the director two levels up, leaders and HR admins) and resolve ``@name`` mentions;
- the goal tree asks whose goals one may *see* (``may_see_goals``: the cycle's goal visibility).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.status import GoalLevel, GoalVisibility
from storage.models import Cycle, Department, Goal, Person
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
    return await heads_department(session, person)


async def heads_department(session: AsyncSession, person: Person) -> bool:
    """Whether ``person`` heads an active department (and so sets its objectives, ``may_set_objectives``)."""
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


# ---------------------------------------------------------------- whose goals one may see (issue 17 item 3)

CHAIN_LIMIT = 32
"""Reporting lines are a handful of levels deep; a loop in the org data (A manages B manages A) stops here."""


def sees_all_goals(person: Person) -> bool:
    """Leaders and HR admins see every goal of their workspace, whatever the cycle's visibility."""
    return person.has_role("leader") or person.has_role("hr_admin")


async def management_chain_ids(session: AsyncSession, person: Person) -> set[int]:
    """Everyone above ``person``: the line manager (and the delegate they named), that manager's line
    manager, and so on to the top. A loop in the reporting lines ends the walk instead of repeating it."""
    out: set[int] = set()
    current = person
    for _ in range(CHAIN_LIMIT):
        manager = await line_manager(session, current)
        if manager is None or manager.id in out or manager.id == person.id:
            break
        out.add(manager.id)
        if manager.delegate_id is not None and manager.delegate_id != person.id:
            out.add(manager.delegate_id)
        current = manager
    return out


async def department_line(session: AsyncSession, department_id: int) -> list[int]:
    """``department_id`` and every department above it, nearest first (a loop in the data ends the walk)."""
    out: list[int] = []
    current: int | None = department_id
    while current is not None and current not in out and len(out) < CHAIN_LIMIT:
        out.append(current)
        dept = await session.get(Department, current)
        current = dept.parent_id if dept is not None else None
    return out


async def same_department_line(session: AsyncSession, a: int | None, b: int | None) -> bool:
    """Whether two departments are the same or one sits above the other (研发部 and its 前端组: yes; two
    sibling teams: no). What "department" visibility means: a team sees the goals of the department it
    belongs to (where its managers' objectives are), the department sees its teams'."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    return b in await department_line(session, a) or a in await department_line(session, b)


async def may_see_goals(session: AsyncSession, viewer: Person, owner: Person, cycle: Cycle) -> bool:
    """Whether ``viewer`` may see ``owner``'s person-level goals in ``cycle``.

    Always: the owner, leaders and HR admins, the owner's HRBP (their own or their department's), and
    anyone in the owner's management chain (``management_chain_ids``). Otherwise ``cycle.goal_visibility``
    decides: ``company`` = anyone in the workspace, ``department`` = the same department or one above or
    below it (``same_department_line``), ``manager`` = nobody else. Company and department objectives are
    not a person's goals: ``may_see_goal`` shows them to everyone in the workspace.
    """
    if viewer.workspace_id != owner.workspace_id or cycle.workspace_id != owner.workspace_id:
        return False
    if viewer.id == owner.id or sees_all_goals(viewer) or cycle.goal_visibility == GoalVisibility.COMPANY:
        return True
    hrbp = await hrbp_of(session, owner)
    if hrbp is not None and hrbp.id == viewer.id:
        return True
    if viewer.id in await management_chain_ids(session, owner):
        return True
    if cycle.goal_visibility == GoalVisibility.DEPARTMENT:
        return await same_department_line(session, viewer.department_id, owner.department_id)
    return False


async def may_see_goal(session: AsyncSession, viewer: Person, goal: Goal, cycle: Cycle) -> bool:
    """Whether ``viewer`` may see (and so comment on) one goal: company and department objectives are open to
    the whole workspace; a person's goal follows ``may_see_goals`` for its owner."""
    if goal.cycle_id != cycle.id or viewer.workspace_id != cycle.workspace_id:
        return False
    if goal.level in (GoalLevel.COMPANY, GoalLevel.DEPARTMENT):
        return True
    owner = await session.get(Person, goal.person_id)
    return owner is not None and await may_see_goals(session, viewer, owner, cycle)


# ---------------------------------------------------------------- who sets objectives (issue 17 item 2)


def may_set_objectives(person: Person, level: str, department: Department | None = None) -> bool:
    """Company objectives: an HR admin or a leader. A department's objectives: its head, or an HR admin
    (for any active department of their workspace). Nobody sets a person's goals for them here."""
    if level == GoalLevel.COMPANY:
        return is_hr_admin(person) or person.has_role("leader")
    if level == GoalLevel.DEPARTMENT:
        if department is None or not department.active or department.workspace_id != person.workspace_id:
            return False
        return is_hr_admin(person) or department.head_id == person.id
    return False


async def sees_goal_coverage(session: AsyncSession, viewer: Person, department_id: int | None) -> bool:
    """Whether ``viewer`` is shown how much of an objective is covered (the share of participants with a goal
    below it): leaders and HR admins always; for a department's objectives, also the head of that
    department or of one above it."""
    if sees_all_goals(viewer):
        return True
    if department_id is None:
        return False
    for dept_id in await department_line(session, department_id):
        dept = await session.get(Department, dept_id)
        if dept is not None and dept.head_id == viewer.id:
            return True
    return False
