"""Apply an organisation snapshot (from a platform's contact API or a CSV file) to departments and people.

Rules: upsert by platform id; a person's manager is the source's direct leader, else their department's
leader (or the parent department's leader when they lead it themselves); anyone who manages someone gets the
``manager`` role; people missing from a full snapshot are deactivated, never deleted, so their history stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.base import Adapter, Org
from bot.core.config import Settings
from storage.models import Department, Person, Workspace

DERIVED_ROLES = {"manager"}


@dataclass
class SyncReport:
    departments_added: int = 0
    departments_updated: int = 0
    people_added: int = 0
    people_updated: int = 0
    people_deactivated: int = 0

    def summary(self) -> str:
        return (
            f"departments +{self.departments_added} ~{self.departments_updated}; "
            f"people +{self.people_added} ~{self.people_updated} -{self.people_deactivated}"
        )


async def apply_org(
    session: AsyncSession,
    workspace: Workspace,
    org: Org,
    *,
    default_timezone: str,
    default_locale: str,
    deactivate_missing: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    report = SyncReport()
    depts = {
        d.platform_dept_id: d
        for d in await session.scalars(select(Department).where(Department.workspace_id == workspace.id))
    }
    for od in org.departments:
        dept = depts.get(od.id)
        if dept is None:
            dept = Department(workspace_id=workspace.id, platform_dept_id=od.id, name=od.name)
            session.add(dept)
            depts[od.id] = dept
            report.departments_added += 1
        elif dept.name != od.name or not dept.active:
            dept.name = od.name
            dept.active = True
            report.departments_updated += 1
    await session.flush()
    for od in org.departments:
        parent = depts.get(od.parent_id) if od.parent_id else None
        depts[od.id].parent_id = parent.id if parent else None

    people = {
        p.platform_user_id: p
        for p in await session.scalars(select(Person).where(Person.workspace_id == workspace.id))
    }
    dept_of: dict[str, Department | None] = {}
    for m in org.members:
        person = people.get(m.user_id)
        dept = depts.get(m.department_ids[0]) if m.department_ids else None
        if person is None:
            person = Person(
                workspace_id=workspace.id,
                platform_user_id=m.user_id,
                name=m.name,
                timezone=m.timezone or default_timezone,
                locale=m.locale or default_locale,
                roles=",".join(sorted(set(m.roles or ["employee"]))),
            )
            session.add(person)
            people[m.user_id] = person
            report.people_added += 1
        else:
            changed = person.name != m.name or not person.active
            person.name = m.name
            person.active = m.active
            if m.timezone:
                person.timezone = m.timezone
            if m.locale:
                person.locale = m.locale
            if m.roles is not None:
                keep = person.role_set & DERIVED_ROLES
                person.roles = ",".join(sorted(set(m.roles) | keep | {"employee"}))
            if changed:
                report.people_updated += 1
        person.active = m.active
        dept_of[m.user_id] = dept
        if progress:
            progress(1)
    await session.flush()

    by_dept_leader: dict[str, str] = {od.id: od.leader_ids[0] for od in org.departments if od.leader_ids}
    parents = {od.id: od.parent_id for od in org.departments}
    managers: set[int] = set()
    for m in org.members:
        person = people[m.user_id]
        dept = dept_of.get(m.user_id)
        person.department_id = dept.id if dept else None
        manager_uid = m.manager_id
        if not manager_uid and m.department_ids:
            dept_id: str | None = m.department_ids[0]
            while dept_id and not manager_uid:
                leader = by_dept_leader.get(dept_id)
                if leader and leader != m.user_id:
                    manager_uid = leader
                dept_id = parents.get(dept_id)
        manager = people.get(manager_uid) if manager_uid else None
        person.manager_id = manager.id if manager and manager.id != person.id else None
        if person.manager_id:
            managers.add(person.manager_id)
        if m.hrbp_id and m.hrbp_id in people:
            person.hrbp_id = people[m.hrbp_id].id
        elif dept is not None and dept.hrbp_id:
            person.hrbp_id = dept.hrbp_id
    for od in org.departments:
        head = people.get(od.leader_ids[0]) if od.leader_ids else None
        if head is not None:
            depts[od.id].head_id = head.id
            managers.add(head.id)
    for person in people.values():
        roles = person.role_set
        if person.id in managers and "manager" not in roles:
            person.roles = ",".join(sorted(roles | {"manager"}))

    if deactivate_missing:
        seen = {m.user_id for m in org.members}
        for uid, person in people.items():
            if uid not in seen and person.active:
                person.active = False
                report.people_deactivated += 1
    await session.flush()
    return report


async def workspace_for(session: AsyncSession, platform: str, app_id: str) -> Workspace:
    ws = await session.scalar(
        select(Workspace).where(Workspace.platform == platform, Workspace.app_id == app_id)
    )
    if ws is None:
        ws = Workspace(platform=platform, app_id=app_id, name=f"{platform}:{app_id}")
        session.add(ws)
        await session.flush()
    return ws


async def sync_platform(
    adapter: Adapter, factory: async_sessionmaker[AsyncSession], settings: Settings
) -> SyncReport:
    """One full sync of a platform's contact list: ``perfloop org sync`` and the scheduled daily sync both
    come here, so they cannot drift apart. The contact API is read before the transaction opens."""
    org = await adapter.list_org()
    async with factory() as session, session.begin():
        ws = await workspace_for(session, adapter.platform, adapter.workspace)
        return await apply_org(
            session,
            ws,
            org,
            default_timezone=settings.schedule.default_timezone,
            default_locale=settings.i18n.default_locale,
        )
