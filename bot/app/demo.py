"""``perfloop demo``: a fresh SQLite database, a believable organisation, the simulator, one URL to open.

The seed is a small company of 40 (two leaders, four departments with heads, team leads, one HRBP per
department and an HR admin) so every flow has someone to talk to: employees to check in, managers to
acknowledge, HRBPs to escalate to, leaders to receive the digest.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.demo_feedback import run_peer_round
from bot.app.http import create_app
from bot.app.kickoff_cli import KickoffFailed, kickoff_from_cli
from bot.app.listen import ListenError
from bot.app.listen import listen as bind
from bot.app.logs import setup_logging
from bot.app.service import Service, build_service
from bot.core.config import Settings, format_validation_error, is_loopback
from bot.core.localtime import local_today
from cards.catalogue import Translator
from storage.db import create_engine, migrate, session_factory
from storage.models import Department, Person, Workspace

log = logging.getLogger("perfloop.demo")

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

HR_ADMIN = "zhouyaqin"
HR_ADMIN_NAME = "周雅琴"
"""Who starts the walk-through in the README (the one ``hr_admin`` below)."""

PEER_ROUND_SUBJECT = "zhoujie"
PEER_ROUND_NAMES = {"subject": "周杰", "manager": "赵磊"}
"""Whom ``--peer-round`` is about and who sees the aggregate card (his line manager): named in the README."""

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


class DemoError(Exception):
    """A reason the demo cannot start, already phrased as the one line the person should read."""


DEFAULT_TICK_SECONDS = 10
"""A short tick, so a fast-forwarded clock shows its reminders and escalations within seconds."""


def demo_settings(
    db_path: Path, host: str | None = None, port: int | None = None, *, base: Settings | None = None
) -> Settings:
    """The demo's settings: ``base`` (the TOML file and ``PERFLOOP_*`` variables, as ``perfloop`` loaded
    them) with only what makes it a demo forced on top.

    Forced: a fresh SQLite file at ``db_path`` (a configured production database is never touched), its
    media beside it, the simulator on and every real platform off. The address comes from the flags, else
    ``[server]`` host/port (``PERFLOOP_SERVER__PORT=18080 make demo`` works as the README promises), else
    127.0.0.1:8080. Everything else (time zone, locale, cadence, digest…) is the configuration's; the
    scheduler tick defaults to a few seconds unless configured.
    """
    base = base if base is not None else Settings()
    host = host or base.server.host
    port = base.server.port if port is None else port
    data = base.model_dump()
    data["database"] = {**data["database"], "url": f"sqlite+aiosqlite:///{db_path}"}
    data["server"] = {**data["server"], "host": host, "port": port, "public_url": f"http://{host}:{port}"}
    data["media"] = {**data["media"], "dir": db_path.parent / f"{db_path.stem}-media"}
    data["sim"] = {**data["sim"], "enabled": True}
    if "tick_seconds" not in base.schedule.model_fields_set:
        data["schedule"] = {**data["schedule"], "tick_seconds": DEFAULT_TICK_SECONDS}
    for platform in ("wecom", "dingtalk", "feishu"):
        data[platform] = {**data[platform], "enabled": False}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise DemoError(format_validation_error(exc)) from None
    if not settings.sim.allow_remote and not is_loopback(settings.server.host):
        raise DemoError(
            Translator(settings.i18n.default_locale)("sim.demo.remote_host", host=settings.server.host)
        )
    return settings


def listen(settings: Settings) -> socket.socket:
    """The demo's port, bound before the old database is deleted or anything starts."""
    try:
        return bind(settings, texts="sim.demo")
    except ListenError as exc:
        raise DemoError(str(exc)) from None


def _t(settings: Settings) -> Translator:
    return Translator(settings.i18n.default_locale)


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
    host: str | None = None,
    port: int | None = None,
    *,
    base: Settings | None = None,
    configure: Callable[[Service], None] | None = None,
    peer_round: bool = False,
    log_level: str = "WARNING",
) -> None:
    """Create a fresh demo database, seed it, start the service with the simulator and block until Ctrl+C.

    ``base`` is the loaded configuration (``demo_settings`` says what the demo keeps of it); ``host``/``port``
    left None come from it. The port is bound first: when it is taken nothing else happens (the previous
    demo database is not even deleted) and ``DemoError`` says so. ``configure`` lets the CLI attach what
    ``perfloop run`` attaches (scheduler jobs in ``service.background``) before the server starts.
    """
    path = Path(db_path).resolve()
    settings = demo_settings(path, host, port, base=base)
    sock = listen(settings)
    try:
        fresh_database(path)
        setup_logging(log_level)
        asyncio.run(prepare_demo_database(settings))
        service = build_service(settings)
    except BaseException:
        sock.close()
        raise
    if configure is not None:
        configure(service)
    if peer_round:
        service.background.append(play_peer_round)
    t = _t(settings)
    today = local_today(service.clock.now(), settings.schedule.default_timezone)
    bound = sock.getsockname()[1]
    url = f"http://{_url_host(settings.server.host)}:{bound}/sim"

    def announce(_aiohttp_banner: str) -> None:
        # aiohttp calls this once the socket listens, so the URL printed is ready to open.
        print(t("sim.demo.ready", url=url), flush=True)
        print(t("sim.demo.seeded", people=len(PEOPLE), departments=len(DEPARTMENTS)), flush=True)
        print(t("sim.demo.database", path=path), flush=True)
        print(t("sim.demo.hint"), flush=True)
        cycle = current_quarter(today)
        if peer_round:
            print(t("sim.demo.peer_round", hr=HR_ADMIN_NAME, cycle=cycle, **PEER_ROUND_NAMES), flush=True)
        else:
            print(t("sim.demo.first_step", hr=HR_ADMIN_NAME, cycle=cycle), flush=True)

    web.run_app(create_app(service), sock=sock, print=announce, access_log=None, shutdown_timeout=5)


async def start_current_cycle(service: Service) -> str:
    """Step 1 of the walk-through done for the visitor: the HR admin starts this quarter's cycle for the
    whole company, exactly as ``perfloop kickoff`` does (same checks, same kickoff cards)."""
    today = local_today(service.clock.now(), service.settings.schedule.default_timezone)
    return await kickoff_from_cli(service, code=current_quarter(today), departments=[], hr_user_id=HR_ADMIN)


async def play_peer_round(service: Service, stop: asyncio.Event) -> None:
    """``perfloop demo --peer-round``: this quarter's cycle, then one anonymous peer-feedback round for 周杰
    in it, so the walk-through's later steps and the round share one current cycle (a made-up cycle beside
    it would make step 1's kickoff warn about an overlap)."""
    del stop
    try:
        await start_current_cycle(service)
    except KickoffFailed as exc:  # the round still runs, in a cycle of its own
        log.warning("demo: this quarter's cycle was not started", extra={"reason": str(exc)})
    await run_peer_round(service, subject=PEER_ROUND_SUBJECT)
    service.outbox.notify()


def current_quarter(day: date) -> str:
    """The cycle code the walk-through starts with (``2026-Q4``): the quarter the demo runs in, so the
    kickoff preview shows a current cycle rather than warning about a past one."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _url_host(host: str) -> str:
    """An address a browser can open: a bracketed IPv6 literal, loopback for a wildcard bind."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
