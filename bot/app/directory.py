"""The people directory adapters may read (``adapters.base.PeopleDirectory``), answered from the database.

Adapters never import storage; the simulator, which has no platform behind it, still needs to know who is
in its workspace (its people picker, and ``list_org`` reading back what is there) and lets a demo person
switch language. This is the app's answer: two read-only queries over one workspace and that one change.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from adapters.base import DirectoryEntry, Org, OrgDepartment, OrgMember
from bot.core.config import Settings
from bot.core.localtime import person_tz
from cards.catalogue import normalise_locale
from storage.models import Department, Person, Workspace


class DatabaseDirectory:
    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        """For ``person_tz``: the picker shows each person's zone with the same fallback their cards use."""

    async def people(self, platform: str, workspace: str) -> list[DirectoryEntry]:
        async with self.factory() as session:
            ws = await _workspace(session, platform, workspace)
            if ws is None:
                return []
            manager = aliased(Person)
            rows = (
                await session.execute(
                    select(Person, Department.name, manager.name)
                    .outerjoin(Department, Department.id == Person.department_id)
                    .outerjoin(manager, manager.id == Person.manager_id)
                    .where(Person.workspace_id == ws.id, Person.active.is_(True))
                    .order_by(Department.id, Person.id)
                )
            ).all()
        return [
            DirectoryEntry(
                user_id=person.platform_user_id,
                name=person.name,
                department=department or "",
                roles=frozenset(person.role_set),
                locale=person.locale,
                timezone=person_tz(person, self.settings),
                manager=manager_name,
            )
            for person, department, manager_name in rows
        ]

    async def set_locale(self, platform: str, workspace: str, user_id: str, locale: str) -> str | None:
        stored = normalise_locale(locale)
        async with self.factory() as session, session.begin():
            ws = await _workspace(session, platform, workspace)
            if ws is None:
                return None
            person = await session.scalar(
                select(Person).where(
                    Person.workspace_id == ws.id,
                    Person.platform_user_id == user_id,
                    Person.active.is_(True),
                )
            )
            if person is None:
                return None
            person.locale = stored
        return stored

    async def org(self, platform: str, workspace: str) -> Org:
        async with self.factory() as session:
            ws = await _workspace(session, platform, workspace)
            if ws is None:
                return Org()
            depts = list(
                await session.scalars(
                    select(Department).where(Department.workspace_id == ws.id, Department.active.is_(True))
                )
            )
            people = list(
                await session.scalars(
                    select(Person).where(Person.workspace_id == ws.id, Person.active.is_(True))
                )
            )
        uid = {p.id: p.platform_user_id for p in people}
        dept_code = {d.id: d.platform_dept_id for d in depts}
        departments = [
            OrgDepartment(
                id=d.platform_dept_id,
                name=d.name,
                parent_id=dept_code.get(d.parent_id) if d.parent_id else None,
                leader_ids=[uid[d.head_id]] if d.head_id in uid else [],
            )
            for d in depts
        ]
        members = [
            OrgMember(
                user_id=p.platform_user_id,
                name=p.name,
                department_ids=[dept_code[p.department_id]] if p.department_id in dept_code else [],
                manager_id=uid.get(p.manager_id) if p.manager_id else None,
                locale=p.locale,
                timezone=p.timezone,
                hrbp_id=uid.get(p.hrbp_id) if p.hrbp_id else None,
            )
            for p in people
        ]
        return Org(departments=departments, members=members)


async def _workspace(session: AsyncSession, platform: str, app_id: str) -> Workspace | None:
    return await session.scalar(
        select(Workspace).where(Workspace.platform == platform, Workspace.app_id == app_id)
    )
