"""Whose goals one may see (issue 17 item 3, ``bot.core.people.may_see_goals``): a role × visibility matrix
on SQLite and PostgreSQL. 张三 (研发部, reports to 王经理, who reports to a director) owns the goals; 研发部
has two teams below it (前端组, 后端组)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.service import Service
from bot.core.people import may_see_goal, may_see_goals, sees_goal_coverage
from storage.models import Cycle, Department, Goal, Person, Workspace
from tests.support.factories import Org
from tests.support.goal_tree import add_cycle, add_goal

M = TypeVar("M", Person, Goal, Cycle)


async def load(s: AsyncSession, model: type[M], row_id: int) -> M:
    row = await s.get(model, row_id)
    assert row is not None
    return row


@dataclass
class Cast:
    org: Org
    director: Person
    front: Person
    back: Person
    stranger: Person


async def cast(service: Service, org: Org) -> Cast:
    async with service.factory() as s, s.begin():
        director = Person(workspace_id=org.workspace.id, platform_user_id="dir", name="周总监")
        s.add(director)
        await s.flush()
        manager = await s.get(Person, org.manager.id)
        assert manager is not None
        manager.manager_id = director.id
        front_team = Department(
            workspace_id=org.workspace.id, platform_dept_id="d1a", name="前端组", parent_id=org.rnd.id
        )
        back_team = Department(
            workspace_id=org.workspace.id, platform_dept_id="d1b", name="后端组", parent_id=org.rnd.id
        )
        s.add_all([front_team, back_team])
        await s.flush()
        front = Person(
            workspace_id=org.workspace.id, platform_user_id="fe", name="小前", department_id=front_team.id
        )
        back = Person(
            workspace_id=org.workspace.id, platform_user_id="be", name="小后", department_id=back_team.id
        )
        other = Workspace(platform="rec", app_id="other-app", name="别的公司")
        s.add_all([front, back, other])
        await s.flush()
        stranger = Person(workspace_id=other.id, platform_user_id="x", name="外人", roles="employee,leader")
        s.add(stranger)
        await s.flush()
    return Cast(org, director, front, back, stranger)


VIEWERS = ("owner", "leader", "hr", "hrbp", "manager", "director", "delegate", "colleague", "front", "seller")
# company, department, manager
MATRIX: dict[str, tuple[bool, bool, bool]] = {
    "owner": (True, True, True),
    "leader": (True, True, True),
    "hr": (True, True, True),
    "hrbp": (True, True, True),
    "manager": (True, True, True),
    "director": (True, True, True),  # two levels up the chain
    "delegate": (True, True, True),  # the manager's delegate (孙经理 here, in 销售部)
    "colleague": (True, True, False),  # 李四, same department
    "front": (True, True, False),  # 小前, in a team below 研发部
    "seller": (True, False, False),  # 周销售, another department
}


def viewer_of(c: Cast, name: str) -> Person:
    org = c.org
    return {
        "owner": org.emp1,
        "leader": org.leader,
        "hr": org.hr,
        "hrbp": org.hrbp,
        "manager": org.manager,
        "director": c.director,
        "delegate": org.sales_manager,
        "colleague": org.emp2,
        "front": c.front,
        "seller": org.seller,
    }[name]


@pytest.mark.parametrize("visibility", ["company", "department", "manager"])
async def test_role_by_visibility_matrix(service: Service, org: Org, visibility: str) -> None:
    c = await cast(service, org)
    cycle = await add_cycle(service, org.everyone, visibility=visibility)
    async with service.factory() as s, s.begin():
        manager = await s.get(Person, org.manager.id)
        assert manager is not None
        manager.delegate_id = org.sales_manager.id
    column = ("company", "department", "manager").index(visibility)
    async with service.factory() as s:
        owner = await load(s, Person, org.emp1.id)
        fresh = await load(s, Cycle, cycle.id)
        got = {}
        for name in VIEWERS:
            got[name] = await may_see_goals(s, await load(s, Person, viewer_of(c, name).id), owner, fresh)
        assert not await may_see_goals(
            s, await load(s, Person, c.stranger.id), owner, fresh
        )  # another workspace, even a leader
    assert got == {name: MATRIX[name][column] for name in VIEWERS}


async def test_department_line_runs_up_and_down_not_sideways(service: Service, org: Org) -> None:
    """Under ``department``: 张三 (研发部) sees 小前 (前端组, below), 小前 sees 张三 (above), 小后 (后端组,
    a sibling team) does not see 小前."""
    c = await cast(service, org)
    cycle = await add_cycle(service, [*org.everyone, c.front, c.back], visibility="department")
    async with service.factory() as s:
        front, back, emp1 = [await load(s, Person, p.id) for p in (c.front, c.back, org.emp1)]
        fresh = await load(s, Cycle, cycle.id)
        assert await may_see_goals(s, emp1, front, fresh)
        assert await may_see_goals(s, front, emp1, fresh)
        assert not await may_see_goals(s, back, front, fresh)


async def test_company_and_department_objectives_are_open_to_the_workspace(
    service: Service, org: Org
) -> None:
    cycle = await add_cycle(service, org.everyone, visibility="manager")
    company = await add_goal(service, cycle, org.leader, "公司目标", level="company")
    department = await add_goal(
        service, cycle, org.manager, "部门目标", level="department", department_id=org.rnd.id, parent=company
    )
    personal = await add_goal(service, cycle, org.manager, "王经理的个人目标", parent=department, weight=100)
    async with service.factory() as s:
        seller = await load(s, Person, org.seller.id)
        emp1 = await load(s, Person, org.emp1.id)
        fresh = await load(s, Cycle, cycle.id)
        assert await may_see_goal(s, seller, await load(s, Goal, company), fresh)
        assert await may_see_goal(s, seller, await load(s, Goal, department), fresh)
        assert not await may_see_goal(s, seller, await load(s, Goal, personal), fresh)
        # 张三 reports to 王经理: the chain looks up, not down, so a report does not see the manager's goals
        assert not await may_see_goal(s, emp1, await load(s, Goal, personal), fresh)


async def test_who_sees_coverage(service: Service, org: Org) -> None:
    c = await cast(service, org)
    async with service.factory() as s:
        leader, hr, manager, emp1 = [
            await load(s, Person, p.id) for p in (org.leader, org.hr, org.manager, org.emp1)
        ]
        assert await sees_goal_coverage(s, leader, None)
        assert await sees_goal_coverage(s, hr, None)
        assert not await sees_goal_coverage(s, manager, None)
        assert await sees_goal_coverage(s, manager, org.rnd.id)
        assert await sees_goal_coverage(s, manager, c.front.department_id)
        assert not await sees_goal_coverage(s, manager, org.sales.id)
        assert not await sees_goal_coverage(s, emp1, org.rnd.id)


@pytest.mark.parametrize("visibility", ["company", "department", "manager"])
async def test_kickoff_takes_the_configured_default_visibility(
    service: Service, org: Org, visibility: str
) -> None:
    """``[goals] default_visibility`` is what a new cycle starts with (HR changes it per cycle afterwards)."""
    from sqlalchemy import select

    from bot.app.kickoff_cli import kickoff_from_cli

    service.settings.goals = service.settings.goals.model_copy(update={"default_visibility": visibility})
    await kickoff_from_cli(service, code="2026-Q3", departments=["研发部"], hr_user_id="hr", allow_past=True)
    async with service.factory() as s:
        stored = await s.scalar(select(Cycle.goal_visibility).where(Cycle.code == "2026-Q3"))
    assert stored == visibility
