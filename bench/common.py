"""Shared pieces of the load benchmarks: throw-away databases, a seeded org, the server under test as a child
process, and a small keep-alive HTTP load generator.

The server is a separate process so that the load generator (and the fake platforms, which play the other
end of the wire) never share its CPU or its memory figures: ``python bench/common.py serve CONFIG.json``
runs what ``perfloop run`` runs — ``build_service`` + ``create_app`` (callbacks, outbox workers, JSON
request logs) — on a loopback port, plus one bench-only route, ``POST /bench/kickoff``, that starts a cycle
exactly as ``perfloop kickoff`` does. The org-sync job is left out: it would sync against the fakes' (empty)
contact lists. ``python bench/common.py bare`` is the first yardstick: an aiohttp handler that reads the body
and answers 200. ``python bench/common.py durable CONFIG.json`` is the second (issue 22): a *minimal durable
receiver* — the same adapters verify, check the replay window, decrypt and parse each callback, then one
idempotent ``INSERT … ON CONFLICT DO NOTHING`` into ``inbound_events`` and a commit per request, on the same
engine settings and database; no domain work, no request log.

``ServerProcess(root=…)`` runs another checkout's ``bench/common.py`` (``bench/callbacks.py --before``), so
the unchanged code is measured in the same run as the changed one.

The load generator speaks HTTP/1.1 over raw asyncio streams with keep-alive: aiohttp's client costs several
times more CPU per request, and on a 2-core machine the client's ceiling would otherwise be what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results"
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


# ------------------------------------------------------------------------------------------ machine
def load_average() -> str:
    """``uptime``'s load figures: the machine is shared, so every table says how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


# ------------------------------------------------------------------------------------------ databases
def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


async def _migrate(url: str, root: Path) -> None:
    """Upgrade with ``root``'s own migrations: another checkout (``--before``) may have a different head."""
    if root == ROOT:
        from storage.db import migrate

        await migrate(url)
        return
    code = "import asyncio, sys; from storage.db import migrate; asyncio.run(migrate(sys.argv[1]))"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, url, cwd=root)
    if await proc.wait() != 0:
        raise RuntimeError(f"migrating {url} with {root} failed")


@contextlib.asynccontextmanager
async def database(kind: str, tmp: Path, pg_admin: str = PG_ADMIN, root: Path = ROOT) -> AsyncIterator[str]:
    """A fresh, migrated database URL: a new SQLite file, or a PostgreSQL database dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db"
        await _migrate(url, root)
        yield url
        return
    name = f"perfloop_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(pg_admin, isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        await _migrate(url, root)
        yield url
    finally:
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def databases(requested: str) -> list[str]:
    kinds = ["sqlite", "postgresql"] if requested == "both" else [requested]
    if "postgresql" in kinds and not pg_reachable():
        print("PostgreSQL not reachable on 127.0.0.1:5432: skipped", file=sys.stderr)
        kinds.remove("postgresql")
    return kinds


async def seed_workspace(
    url: str,
    *,
    platform: str,
    app_id: str,
    user_ids: Sequence[str],
    active_cycle: str | None = None,
) -> dict[str, int]:
    """A workspace with one person per user id (the first is also an HR admin, so it can start a cycle).

    With ``active_cycle`` the cycle is created already started, everyone a participant — what a kickoff
    leaves behind, without sending the cards. Bulk inserts: seeding is not what is being measured.
    """
    from sqlalchemy import insert, select

    from storage.db import create_engine, session_factory
    from storage.models import Cycle, CycleParticipant, Person, Workspace

    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        async with session_factory(engine)() as s, s.begin():
            ws = Workspace(platform=platform, app_id=app_id, name=f"bench {platform}")
            s.add(ws)
            await s.flush()
            rows = [
                {
                    "workspace_id": ws.id,
                    "platform_user_id": uid,
                    "name": f"员工{i:06d}",
                    "roles": "employee,hr_admin" if i == 0 else "employee",
                    "timezone": "Asia/Shanghai",
                    "locale": "zh-CN",
                    "active": True,
                    "paused": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, uid in enumerate(user_ids)
            ]
            for start in range(0, len(rows), 5000):
                await s.execute(insert(Person), rows[start : start + 5000])
            out = {"workspace_id": ws.id}
            if active_cycle:
                cycle = Cycle(
                    workspace_id=ws.id, code=active_cycle, status="active", scope=[], started_at=now
                )
                s.add(cycle)
                await s.flush()
                ids = list(await s.scalars(select(Person.id).where(Person.workspace_id == ws.id)))
                parts = [{"cycle_id": cycle.id, "person_id": pid, "goals_status": "none"} for pid in ids]
                for start in range(0, len(parts), 5000):
                    await s.execute(insert(CycleParticipant), parts[start : start + 5000])
                out["cycle_id"] = cycle.id
        return out
    finally:
        await engine.dispose()


async def seed_workspace_with(root: Path, url: str, **kwargs: Any) -> dict[str, int]:
    """``seed_workspace`` with ``root``'s own models: another checkout's schema may differ from this one."""
    if root == ROOT:
        return await seed_workspace(url, **kwargs)
    code = (
        "import asyncio, json, sys; from bench.common import seed_workspace; "
        "a = json.loads(sys.argv[2]); print(json.dumps(asyncio.run(seed_workspace(sys.argv[1], **a))))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, url, json.dumps(kwargs), cwd=root, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"seeding {url} with {root} failed")
    seeded: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return seeded


# ------------------------------------------------------------------------------------------ child process
@dataclass
class ServerProcess:
    """The server under test in its own process; ``peak_rss_mb`` reads the kernel's high-water mark."""

    mode: str  # "serve", "bare" or "durable"
    settings: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    root: Path = ROOT
    """The checkout whose ``bench/common.py`` runs the server (another one for ``--before``)."""

    def start(self, timeout: float = 60.0) -> int:
        RESULTS.mkdir(parents=True, exist_ok=True)
        config = RESULTS / f".server-{uuid.uuid4().hex[:8]}.json"
        config.write_text(json.dumps({"settings": self.settings}))
        log = open(self.log_path or os.devnull, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.root / "bench" / "common.py"), self.mode, str(config)],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=self.root,
        )
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"READY "):
                self.port = int(line.split()[1])
                config.unlink(missing_ok=True)
                return self.port
            if not line and self.proc.poll() is not None:
                break
        config.unlink(missing_ok=True)
        raise RuntimeError(f"server did not start (exit {self.proc.poll()}): see {self.log_path}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _serve(settings_data: dict[str, Any]) -> None:
    from aiohttp import web

    from bot.app.http import create_app
    from bot.app.kickoff_cli import KickoffFailed, kickoff_from_cli
    from bot.app.logs import setup_logging
    from bot.app.service import build_service
    from bot.core.config import Settings

    settings = Settings.model_validate(settings_data)
    setup_logging(settings.server.log_level)
    service = build_service(settings)
    app = create_app(service)

    async def kickoff(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            today = datetime.now(UTC).date()
            summary = await kickoff_from_cli(
                service,
                code=body["code"],
                departments=[],
                hr_user_id=body["hr"],
                dates=f"{today}~{today + timedelta(days=89)}",  # a bench code is not a quarter
                allow_overlap=True,  # the limited and the unlimited run start a cycle each for everyone
                finish=False,  # as in a running service: the first chunk now, the rest by its writer
            )
        except KickoffFailed as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"summary": summary})

    async def outbox_depth(request: web.Request) -> web.Response:
        return web.json_response(await service.outbox.depth())

    app.router.add_post("/bench/kickoff", kickoff)
    app.router.add_get("/bench/outbox", outbox_depth)
    await _run(app, "serve")


async def _bare() -> None:
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")

    app = web.Application()
    app.router.add_route("*", "/callbacks/{platform}", ok)
    await _run(app, "bare")


async def _durable(settings_data: dict[str, Any]) -> None:
    """The minimal durable receiver: verify + decrypt + parse (the platform's own adapter code), one
    idempotent insert and a commit per request, nothing else: what any receiver that must not lose a click
    costs."""
    from aiohttp import web
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from adapters.base import CallbackAnswer, CallbackRejected
    from adapters.registry import AdapterRegistry
    from bot.core.config import Settings
    from bot.core.events import UrlVerification
    from storage.db import create_engine, is_sqlite
    from storage.models import InboundEvent

    settings = Settings.model_validate(settings_data)
    registry = AdapterRegistry.from_settings(settings)
    url = settings.database.url
    engine = create_engine(url, pool_size=settings.database.pool_size)
    insert = sqlite_insert if is_sqlite(url) else pg_insert
    table = InboundEvent.__table__

    async def receive(request: web.Request) -> web.StreamResponse:
        platform = request.match_info["platform"]
        if platform not in registry:
            raise web.HTTPNotFound()
        adapter = registry.get(platform)
        try:
            parsed = await adapter.parse_callback(request)
        except CallbackRejected as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        if isinstance(parsed, UrlVerification):
            return adapter.answer_verification(parsed)
        if parsed is not None:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(table)
                    .values(
                        platform=parsed.platform,
                        event_id=parsed.event_id,
                        kind=parsed.kind,
                        answer={},
                        received_at=datetime.now(UTC),
                    )
                    .on_conflict_do_nothing(index_elements=["platform", "event_id"])
                )
        return adapter.answer_callback(parsed, CallbackAnswer())

    app = web.Application()
    app.router.add_route("*", "/callbacks/{platform}", receive)
    try:
        await _run(app, "durable")
    finally:
        for adapter in registry:
            await adapter.close()
        await engine.dispose()


async def _run(app: Any, mode: str) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # where serving CPU goes (startup excluded): BENCH_PROFILE=x.prof
        import cProfile

        # Process CPU time, not wall time: waiting on the database or the network costs nothing, and a shared
        # machine's preemptions do not show up as time spent in whatever call was running.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
    print(f"READY {runner.addresses[0][1]}", flush=True)
    await stop.wait()
    if profile is not None:
        profile.disable()
        # One file per server: x.prof → x.serve-<port>.prof (a bench may run several servers at once).
        base, dot, ext = os.environ["BENCH_PROFILE"].rpartition(".")
        port = runner.addresses[0][1]
        profile.dump_stats(f"{base}.{mode}-{port}.{ext}" if dot else f"{ext}.{mode}-{port}")
    await runner.cleanup()


# ------------------------------------------------------------------------------------------ load generator
@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    late_starts: int = 0
    """Fixed-rate runs: requests the generator itself started more than 10 ms after their slot."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "req_per_s": round(self.rps, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=float("nan")) * 1000, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "late_starts": self.late_starts,
        }


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def roundtrip(self, request: bytes) -> tuple[int, bool]:
        """Send one request, read the whole answer; (status, server keeps the connection open)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
            elif name == "transfer-encoding":
                raise RuntimeError("chunked answers are not expected from a callback endpoint")
        if length:
            await self.reader.readexactly(length)
        return status, keep

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, requests: Sequence[bytes], concurrency: int) -> LoadResult:
    """``concurrency`` keep-alive connections, each sending its next request as soon as the last answered."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    it = iter(requests)

    async def worker() -> None:
        conn = await _Conn.open(port)
        try:
            for req in it:
                t0 = time.perf_counter()
                status, keep = await conn.roundtrip(req)
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
                if not keep:
                    conn.close()
                    conn = await _Conn.open(port)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, statuses)


async def fixed_rate(port: int, requests: Sequence[bytes], rate: float, max_conns: int = 512) -> LoadResult:
    """Open loop: request i is due at ``i / rate`` s whatever happened to the ones before it; its latency
    counts from that slot, so a server that falls behind shows it (no coordinated omission)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    idle: list[_Conn] = []
    opened = 0
    late = 0
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def fire(conn: _Conn, req: bytes, due: float) -> None:
        nonlocal opened
        status, keep = await conn.roundtrip(req)
        latencies.append(loop.time() - due)
        statuses[status] += 1
        if keep:
            idle.append(conn)
            freed.set()
        else:
            conn.close()
            opened -= 1

    freed = asyncio.Event()
    start = loop.time() + 0.05
    for i, req in enumerate(requests):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.01:
            late += 1
        while not idle and opened >= max_conns:
            freed.clear()
            await freed.wait()
        if idle:
            conn = idle.pop()
        else:
            conn = await _Conn.open(port)
            opened += 1
        task = loop.create_task(fire(conn, req, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return LoadResult(len(latencies), loop.time() - start, latencies, statuses, late)


# ------------------------------------------------------------------------------------------ entry
if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        asyncio.run(_serve(json.loads(Path(sys.argv[2]).read_text())["settings"]))
    elif len(sys.argv) == 3 and sys.argv[1] == "durable":
        asyncio.run(_durable(json.loads(Path(sys.argv[2]).read_text())["settings"]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "bare":
        asyncio.run(_bare())
    else:
        print("usage: common.py serve CONFIG.json | durable CONFIG.json | bare", file=sys.stderr)
        sys.exit(2)
