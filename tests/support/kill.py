"""Running ``perfloop run`` as a real subprocess for the kill tests: start it, wait for ``/healthz``, SIGKILL
it at a chosen moment, start it again.

The point of these tests is what survives a process that dies without any chance to clean up, so nothing in
here is in-process: the service is the command an operator runs, configured by a TOML file plus
``PERFLOOP_*`` environment variables, talking to a fake platform that lives in the test process (and so
outlives every kill). Only the subprocess is ever signalled, by its own pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.context import Outbox
from cards.notice import notice_card
from storage.db import create_engine, session_factory
from storage.models import Cycle, CycleParticipant, Department, Person, Workspace
from tests.fakes.wecom import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN, FakeWeCom

ROOT = Path(__file__).resolve().parents[2]
WECOM_SECRET = "kill-test-wecom-secret-0123456789"
AGENT_ID = 1000002


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml(sections: dict[str, dict[str, Any]]) -> str:
    """Just enough TOML for a perfloop config: tables of str/int/float/bool and one level of sub-tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines: list[str] = []
    for name, table in sections.items():
        subs = {k: v for k, v in table.items() if isinstance(v, dict)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {value(v)}" for k, v in table.items() if not isinstance(v, dict))
        for sub, inner in subs.items():
            lines.append(f"[{name}.{sub}]")
            lines.extend(f"{k} = {value(v)}" for k, v in inner.items())
        lines.append("")
    return "\n".join(lines)


def wecom_config(
    tmp: Path,
    db_url: str,
    *,
    per_second: float,
    burst: int = 1,
    sections: dict[str, dict[str, Any]] | None = None,
    **outbox: Any,
) -> dict[str, dict[str, Any]]:
    """A config with WeCom enabled (the secret comes from the environment, as in production); ``sections``
    adds whole config sections (``{"cycles": {"kickoff_chunk": 20}}``)."""
    return (sections or {}) | {
        # One public URL for every replica, as behind a load balancer: it is part of the rendered card, and a
        # resend is only recognised by WeCom's duplicate check when the whole message is identical.
        "server": {"host": "127.0.0.1", "port": 8080, "public_url": "https://perfloop.example.com"},
        "database": {"url": db_url, "pool_size": 5},
        "media": {"dir": str(tmp / "media")},
        "wecom": {
            "enabled": True,
            "corp_id": SAMPLE_CORP_ID,
            "agent_id": AGENT_ID,
            "token": SAMPLE_TOKEN,
            "encoding_aes_key": SAMPLE_AES_KEY,
            "rate_limit": {"per_second": per_second, "burst": burst},
        },
        "outbox": {"workers": 4, "batch_size": 5, "lease_seconds": 5, "poll_seconds": 0.2, **outbox},
    }


@dataclass
class PerfloopProcess:
    """One ``perfloop run`` subprocess; its combined output goes to ``log_path`` (kept across restarts)."""

    config: Path
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLOOP_")}
        env.update(self.env)
        env["PERFLOOP_SERVER__PORT"] = str(self.port)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.app.cli", "--config", str(self.config), "run"],
                cwd=self.log_path.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def wait_healthy(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"perfloop exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"perfloop not healthy within {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, in-flight requests and claimed outbox rows abandoned."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM) at the end of a test; SIGKILL if it does not go within 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    path.write_text(toml(sections), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- the fake
class WatchedWeCom(FakeWeCom):
    """The fake WeCom with a hook on every ``message/send``: the test decides, while a send is on the wire,
    whether to kill the process that made it. The hook runs after the fake recorded (and showed) the message
    and before the HTTP answer goes back, so the killed process never learns that this send succeeded."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.on_send: Callable[[web.Request], None] | None = None
        self.sends_by_token: Counter[str] = Counter()

    async def _send(self, request: web.Request) -> web.Response:
        response = await super()._send(request)
        self.sends_by_token[request.query.get("access_token", "")] += 1
        if self.on_send is not None:
            self.on_send(request)
        return response

    def token_order(self) -> list[str]:
        """Access tokens in the order they were issued (each perfloop process fetches its own)."""
        return list(self._tokens)

    def shown_counts(self) -> Counter[str]:
        """How many cards each user actually saw (resends hidden by the duplicate check do not count)."""
        counts: Counter[str] = Counter()
        for m in self.shown:
            if m.body.get("msgtype") != "template_card":
                continue
            counts.update(u for u in m.recipients if u not in m.invalid)
        return counts

    def suppressed(self) -> int:
        return sum(1 for m in self.messages if not m.shown)


def user_ids(n: int) -> list[str]:
    return [f"u{i:05d}" for i in range(n)]


def fill_fake(fake: FakeWeCom, ids: Iterable[str]) -> None:
    """Everyone in one department, so the start-up org sync finds the org it already has."""
    fake.add_department(1, "总部")
    for uid in ids:
        fake.add_user(uid, f"员工{uid}", [1])


async def seed_wecom_org(
    engine: AsyncEngine,
    ids: list[str],
    *,
    broadcast_per_call: int | None = None,
    now: Any = None,
    hr_admins: Iterable[str] = (),
) -> int:
    """People (matching the fake's org; ``hr_admins`` may start a cycle) and, optionally, a broadcast to all
    of them queued in the outbox through ``Outbox.broadcast`` in one transaction, as a kickoff would. Returns
    the outbox rows written."""
    admins = set(hr_admins)
    factory = session_factory(engine)
    rows = 0
    async with factory() as session, session.begin():
        ws = Workspace(platform="wecom", app_id=SAMPLE_CORP_ID, name="wecom:kill")
        session.add(ws)
        await session.flush()
        dept = Department(workspace_id=ws.id, platform_dept_id="1", name="总部")
        session.add(dept)
        await session.flush()
        await session.execute(
            insert(Person),
            [
                {
                    "workspace_id": ws.id,
                    "platform_user_id": uid,
                    "name": f"员工{uid}",
                    "department_id": dept.id,
                    "roles": "employee,hr_admin" if uid in admins else "employee",
                }
                for uid in ids
            ],
        )
        if broadcast_per_call is not None:
            outbox = Outbox(session=session, workspace=ws, now=now, recipients_per_call=broadcast_per_call)
            people = [Person(platform_user_id=uid, locale="zh-CN") for uid in ids]
            rows = await outbox.broadcast(
                people,
                lambda t: notice_card(t, "绩效周期开始", "请在本周五前填写目标。"),
                card_key="kill-test-kickoff",
                dedupe_prefix="kill-test-kickoff",
            )
    return rows


def engine_for(url: str) -> AsyncEngine:
    return create_engine(url)


async def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def seed_active_cycle(engine: AsyncEngine, code: str = "2026-Q1") -> int:
    """An active cycle with every person of the (one) workspace as a participant, as a kickoff leaves it
    (without its cards); returns the cycle id."""
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        ws = (await session.scalars(select(Workspace))).one()
        cycle = Cycle(workspace_id=ws.id, code=code, status="active", scope=[], started_at=datetime.now(UTC))
        session.add(cycle)
        await session.flush()
        ids = list(await session.scalars(select(Person.id).where(Person.workspace_id == ws.id)))
        await session.execute(
            insert(CycleParticipant),
            [{"cycle_id": cycle.id, "person_id": pid, "goals_status": "none"} for pid in ids],
        )
        return cycle.id
