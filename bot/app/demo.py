"""``perfloop demo``: a fresh SQLite database, a believable organisation, the simulator, one URL to open.

The seed is a small company of 40 (two leaders, four departments with heads, team leads, one HRBP per
department and an HR admin) so every flow has someone to talk to: employees to check in, managers to
acknowledge, HRBPs to escalate to, leaders to receive the digest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.http import create_app
from bot.app.logs import setup_logging
from bot.app.service import Service, build_service
from bot.core.config import Settings
from cards.catalogue import Translator
from storage.db import create_engine, migrate, session_factory
from storage.models import Department, Person, Workspace

SIM_PLATFORM = "sim"
SIM_WORKSPACE = "sim"
COMPANY_NAME = "星河科技"


@dataclass(frozen=True)
class DemoDepartment:
    code: str
    name: str
    head: str
    hrbp: str


@dataclass(frozen=True)
class DemoPerson:
    user_id: str
    name: str
    department: str | None
    manager: str | None
    roles: tuple[str, ...] = ()
    """Roles beyond ``employee``; ``manager`` is added to anyone with direct reports."""


DEPARTMENTS: tuple[DemoDepartment, ...] = (
    DemoDepartment("rnd", "研发部", head="wangzhiqiang", hrbp="sunli"),
    DemoDepartment("sales", "销售部", head="lina", hrbp="qianfang"),
    DemoDepartment("mkt", "市场部", head="zhumin", hrbp="wuqian"),
    DemoDepartment("ops", "职能部", head="malihua", hrbp="guochen"),
)

PEOPLE: tuple[DemoPerson, ...] = (
    # leadership
    DemoPerson("liujianguo", "刘建国", None, None, ("leader",)),
    DemoPerson("chensiyuan", "陈思远", None, "liujianguo", ("leader",)),
    # 研发部: a head, two team leads, eleven engineers
    DemoPerson("wangzhiqiang", "王志强", "rnd", "chensiyuan"),
    DemoPerson("zhaolei", "赵磊", "rnd", "wangzhiqiang"),
    DemoPerson("huangjing", "黄静", "rnd", "wangzhiqiang"),
    DemoPerson("zhoujie", "周杰", "rnd", "zhaolei"),
    DemoPerson("wuhao", "吴昊", "rnd", "zhaolei"),
    DemoPerson("zhengyu", "郑宇", "rnd", "zhaolei"),
    DemoPerson("fengxiaodong", "冯晓东", "rnd", "zhaolei"),
    DemoPerson("hexinyi", "何欣怡", "rnd", "zhaolei"),
    DemoPerson("kongxiangrui", "孔祥瑞", "rnd", "zhaolei"),
    DemoPerson("machao", "马超", "rnd", "huangjing"),
    DemoPerson("linjiaqi", "林佳琪", "rnd", "huangjing"),
    DemoPerson("xuwentao", "徐文涛", "rnd", "huangjing"),
    DemoPerson("gaoting", "高婷", "rnd", "huangjing"),
    DemoPerson("luobin", "罗斌", "rnd", "huangjing"),
    # 销售部
    DemoPerson("lina", "李娜", "sales", "liujianguo"),
    DemoPerson("zhangwei", "张伟", "sales", "lina"),
    DemoPerson("yangfan", "杨帆", "sales", "lina"),
    DemoPerson("liuyang", "刘洋", "sales", "lina"),
    DemoPerson("chenjing", "陈静", "sales", "lina"),
    DemoPerson("xulei", "许磊", "sales", "lina"),
    DemoPerson("hanmei", "韩梅", "sales", "lina"),
    DemoPerson("dengchao", "邓超", "sales", "lina"),
    DemoPerson("caoxue", "曹雪", "sales", "lina"),
    # 市场部
    DemoPerson("zhumin", "朱敏", "mkt", "liujianguo"),
    DemoPerson("xietingting", "谢婷婷", "mkt", "zhumin"),
    DemoPerson("songjia", "宋佳", "mkt", "zhumin"),
    DemoPerson("tangming", "唐明", "mkt", "zhumin"),
    DemoPerson("dongxiao", "董晓", "mkt", "zhumin"),
    DemoPerson("penglijuan", "彭丽娟", "mkt", "zhumin"),
    DemoPerson("yuanye", "袁野", "mkt", "zhumin"),
    # 职能部: head, HR admin with the four HRBPs, finance and admin
    DemoPerson("malihua", "马丽华", "ops", "liujianguo"),
    DemoPerson("zhouyaqin", "周雅琴", "ops", "malihua", ("hr_admin",)),
    DemoPerson("sunli", "孙丽", "ops", "zhouyaqin", ("hrbp",)),
    DemoPerson("qianfang", "钱芳", "ops", "zhouyaqin", ("hrbp",)),
    DemoPerson("wuqian", "吴倩", "ops", "zhouyaqin", ("hrbp",)),
    DemoPerson("guochen", "郭晨", "ops", "zhouyaqin", ("hrbp",)),
    DemoPerson("jiangtao", "蒋涛", "ops", "malihua"),
    DemoPerson("shenyue", "沈悦", "ops", "malihua"),
)

HRBP_OF_HRBPS = "sunli"
"""职能部's HRBP is 郭晨; 郭晨's own HRBP is 孙丽."""

ROLE_ORDER = ("employee", "manager", "hrbp", "hr_admin", "leader")


def _roles(person: DemoPerson) -> str:
    roles = {"employee", *person.roles}
    if any(p.manager == person.user_id for p in PEOPLE):
        roles.add("manager")
    return ",".join(r for r in ROLE_ORDER if r in roles)


async def seed_demo(session: AsyncSession) -> None:
    """Create the simulator workspace's organisation; a workspace that already has people is left alone."""
    ws = await session.scalar(
        select(Workspace).where(Workspace.platform == SIM_PLATFORM, Workspace.app_id == SIM_WORKSPACE)
    )
    if ws is None:
        ws = Workspace(platform=SIM_PLATFORM, app_id=SIM_WORKSPACE, name=COMPANY_NAME)
        session.add(ws)
        await session.flush()
    elif await session.scalar(select(func.count()).select_from(Person).where(Person.workspace_id == ws.id)):
        return
    departments = {
        d.code: Department(workspace_id=ws.id, platform_dept_id=d.code, name=d.name) for d in DEPARTMENTS
    }
    session.add_all(departments.values())
    await session.flush()
    people = {
        p.user_id: Person(
            workspace_id=ws.id,
            platform_user_id=p.user_id,
            name=p.name,
            roles=_roles(p),
            department_id=departments[p.department].id if p.department else None,
        )
        for p in PEOPLE
    }
    session.add_all(people.values())
    await session.flush()
    hrbp_of = {d.code: d.hrbp for d in DEPARTMENTS}
    for p in PEOPLE:
        row = people[p.user_id]
        row.manager_id = people[p.manager].id if p.manager else None
        hrbp = hrbp_of.get(p.department) if p.department else None
        if hrbp == p.user_id:  # an HRBP is not their own HRBP: a colleague covers them
            hrbp = HRBP_OF_HRBPS
        row.hrbp_id = people[hrbp].id if hrbp else None
    for d in DEPARTMENTS:
        departments[d.code].head_id = people[d.head].id
        departments[d.code].hrbp_id = people[d.hrbp].id
    await session.flush()


def demo_settings(db_path: Path, host: str, port: int) -> Settings:
    """The simulator on, every real platform off, whatever the environment says."""
    return Settings(
        database={"url": f"sqlite+aiosqlite:///{db_path}"},
        server={"host": host, "port": port, "public_url": f"http://{host}:{port}"},
        media={"dir": db_path.parent / f"{db_path.stem}-media"},
        sim={"enabled": True},
        # A short tick, so a fast-forwarded clock shows its reminders and escalations within seconds.
        schedule={"tick_seconds": 10},
        wecom={"enabled": False},
        dingtalk={"enabled": False},
        feishu={"enabled": False},
    )


async def prepare_demo_database(settings: Settings) -> None:
    """Migrate the (fresh) database and seed the organisation."""
    url = settings.database.url
    await migrate(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await seed_demo(session)
    finally:
        await engine.dispose()


def fresh_database(db_path: Path) -> None:
    """Delete the previous demo database, including SQLite's WAL side files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def run_demo(
    db_path: str | Path = "perfloop-demo.db",
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    configure: Callable[[Service], None] | None = None,
    log_level: str = "WARNING",
) -> None:
    """Create a fresh demo database, seed it, start the service with the simulator and block until Ctrl+C.

    ``configure`` lets the CLI attach what ``perfloop run`` attaches (scheduler jobs in
    ``service.background``) before the server starts.
    """
    path = Path(db_path).resolve()
    fresh_database(path)
    settings = demo_settings(path, host, port)
    setup_logging(log_level)
    asyncio.run(prepare_demo_database(settings))
    service = build_service(settings)
    if configure is not None:
        configure(service)
    t = Translator(settings.i18n.default_locale)
    url = f"http://{host}:{port}/sim"

    def announce(_aiohttp_banner: str) -> None:
        # aiohttp calls this once the socket listens, so the URL printed is ready to open.
        print(t("sim.demo.ready", url=url), flush=True)
        print(t("sim.demo.seeded", people=len(PEOPLE), departments=len(DEPARTMENTS)), flush=True)
        print(t("sim.demo.database", path=path), flush=True)
        print(t("sim.demo.hint"), flush=True)

    web.run_app(
        create_app(service), host=host, port=port, print=announce, access_log=None, shutdown_timeout=5
    )
