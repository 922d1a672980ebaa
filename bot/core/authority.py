"""Who sits above whom, for the evidence, action-item, escalation and digest flows.

Builds on ``handlers.permissions`` (line manager, HRBP) and adds what these flows need on top: the
director two levels up, "may oversee" for escalation and digest readers, and ``@name`` look-ups.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.people import hrbp_of, line_manager
from storage.models import Department, Person

__all__ = ["director_of", "find_by_mention", "hrbp_of", "is_manager_of", "manager_of", "may_oversee"]


def zone(person: Person) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def local_today(person: Person, now: datetime) -> date:
    """Deadlines are calendar days where the person lives, not UTC days."""
    return now.astimezone(zone(person)).date()


def local_text(person: Person, at: datetime) -> str:
    return at.astimezone(zone(person)).strftime("%Y-%m-%d %H:%M")


async def is_manager_of(session: AsyncSession, actor: Person, person: Person) -> bool:
    """The line manager (see ``handlers.permissions``), or the person the manager named as delegate."""
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
