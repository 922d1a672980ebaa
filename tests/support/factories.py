"""A small, fully-formed organisation for handler tests (the demo has its own, larger seed)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Department, Person, Workspace


@dataclass
class Org:
    workspace: Workspace
    rnd: Department
    sales: Department
    leader: Person
    hr: Person
    hrbp: Person
    manager: Person
    emp1: Person
    emp2: Person
    sales_manager: Person
    seller: Person

    @property
    def everyone(self) -> list[Person]:
        return [
            self.leader,
            self.hr,
            self.hrbp,
            self.manager,
            self.emp1,
            self.emp2,
            self.sales_manager,
            self.seller,
        ]


async def seed_org(session: AsyncSession, *, platform: str = "rec", app_id: str = "rec-app") -> Org:
    ws = await session.scalar(
        select(Workspace).where(Workspace.platform == platform, Workspace.app_id == app_id)
    )
    if ws is None:
        ws = Workspace(platform=platform, app_id=app_id, name="测试公司")
        session.add(ws)
        await session.flush()

    def person(uid: str, name: str, roles: str = "employee", **kw: object) -> Person:
        p = Person(workspace_id=ws.id, platform_user_id=uid, name=name, roles=roles, **kw)
        session.add(p)
        return p

    leader = person("leader", "刘总", "employee,leader")
    hr = person("hr", "陈人事", "employee,hr_admin")
    hrbp = person("hrbp", "赵伙伴", "employee,hrbp")
    await session.flush()
    rnd = Department(workspace_id=ws.id, platform_dept_id="d1", name="研发部", hrbp_id=hrbp.id)
    sales = Department(workspace_id=ws.id, platform_dept_id="d2", name="销售部", hrbp_id=hrbp.id)
    session.add_all([rnd, sales])
    await session.flush()
    manager = person(
        "mgr", "王经理", "employee,manager", department_id=rnd.id, manager_id=leader.id, hrbp_id=hrbp.id
    )
    sales_manager = person(
        "smgr", "孙经理", "employee,manager", department_id=sales.id, manager_id=leader.id, hrbp_id=hrbp.id
    )
    await session.flush()
    emp1 = person("emp1", "张三", department_id=rnd.id, manager_id=manager.id, hrbp_id=hrbp.id)
    emp2 = person("emp2", "李四", department_id=rnd.id, manager_id=manager.id, hrbp_id=hrbp.id, locale="en")
    seller = person("seller", "周销售", department_id=sales.id, manager_id=sales_manager.id, hrbp_id=hrbp.id)
    await session.flush()
    rnd.head_id = manager.id
    sales.head_id = sales_manager.id
    await session.flush()
    return Org(ws, rnd, sales, leader, hr, hrbp, manager, emp1, emp2, sales_manager, seller)
