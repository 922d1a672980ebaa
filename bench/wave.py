"""Scheduled waves: 100,000 check-ins due at 16:00 in one zone, and 100,000 action-item reminders at 09:30.

    python bench/wave.py [--people 100000] [--db sqlite|postgresql|both] [--rate 400] [--replicas 3]
                         [--quick] [--no-deliver] [--json bench/results/wave.json]

The company (loaded in bulk, not timed): one leader, teams of ten (a manager and nine people), everyone in
Asia/Shanghai on the default biweekly Friday 16:00 check-in, an active cycle with two goals each, and one open
action item per person due on Friday 2026-12-04 (its owner card already delivered, so the reminder
retires it: an update as well as a send). 1 % are on leave (their check-in is recorded as ``skipped``, their
reminder waits), 0.5 % paused (nothing), 10 % have quiet hours 22:00-07:30 (outside both waves). Everything
the scheduler owed before the waves is already in its ledger, so a tick at the wave's minute owes exactly the
wave.

For each database, each wave is timed in two child processes, so their CPU and peak RSS (``VmHWM``) are
their own:

- **open**: what the scheduler's leader does at the wave's minute, ``Scheduler.tick()`` with every flow's
  schedule entries (``bot/app/flows.py``): find who is due, claim the ledger keys, open the records, queue
  the cards. Repeated until a tick finds nothing more (one tick is expected). Target: < 60 s, < 200 MB.
- **deliver**: the outbox workers (4 × 50, the defaults) deliver the queued rows to an in-process adapter
  (as ``bench/outbox.py``) that only counts, behind a token bucket of ``--rate`` calls/s, burst 1 — a
  per-person platform at a limit the machine can keep up with (about half of the unlimited in-process
  rate), so the limiter sets the pace. The floor is calls ÷ rate; "ratio" is wall ÷ floor.

Then, PostgreSQL only: ``--replicas`` processes, each a replica as ``perfloop run`` runs it (the scheduler
runner with its advisory-lock election, outbox workers with ``rate ÷ replicas`` each, so that together they
keep to the platform's figure), share the check-in wave of a fresh copy of the company: the leader opens
it, all three deliver. Timed from the moment all replicas are up: until every check-in is open ("open s")
and until every card is delivered ("all delivered s"). Checked from the database afterwards: one check-in,
one ledger row and one outbox row per person; and from the replicas' adapters: each person received the
card exactly once. Each replica's log is kept in ``bench/results/wave-replica-N.log``.

The opening is what the target is about; delivering 100,000 one-call-per-person cards takes calls ÷ rate by
construction (about 4 min at 400/s for the check-ins, 8 for the reminders, which are two calls each), so the
full run takes about 35 minutes; ``--quick`` (10,000 people) about 6.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN, RESULTS, database, databases, load_average  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
WAVE_DAY = date(2026, 12, 4)
"""A biweekly check-in Friday on the default cadence (and a workday on the Chinese calendar)."""
REMINDERS_AT = datetime(2026, 12, 4, 9, 30, 30, tzinfo=SH).astimezone(UTC)
CHECKINS_AT = datetime(2026, 12, 4, 16, 0, 30, tzinfo=SH).astimezone(UTC)
SEEDED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=SH).astimezone(UTC)
CYCLE_START = date(2026, 10, 1)
TEAM = 10


# ------------------------------------------------------------------------------------------ the company
def is_paused(i: int) -> bool:
    return i % 200 == 7


def on_leave(i: int) -> bool:
    return i % 100 == 3


def has_quiet_hours(i: int) -> bool:
    return i % 10 == 5


def head_of(i: int) -> int:
    """Person 1 leads; persons 2, 12, 22… head a team; the others report to their team's head."""
    return 2 + ((i - 2) // TEAM) * TEAM


def is_head(i: int) -> bool:
    return i >= 2 and head_of(i) == i


def expected(n: int) -> dict[str, int]:
    """Who the waves owe: everyone but the leader takes check-ins and owns one item."""
    takers = [i for i in range(2, n + 2) if not is_paused(i)]
    return {
        "opened": sum(1 for i in takers if not on_leave(i)),
        "skipped": sum(1 for i in takers if on_leave(i)),
        "reminded": sum(1 for i in takers if not on_leave(i)),
    }


def people_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 2):
        leave = on_leave(i) and i > 1
        yield {
            "id": i,
            "workspace_id": 1,
            "platform_user_id": f"u{i:06d}",
            "name": f"员工{i:06d}",
            "department_id": 1 if i == 1 else (head_of(i) - 2) // TEAM + 2,
            "manager_id": None if i == 1 else (1 if is_head(i) else head_of(i)),
            "roles": "employee,leader,manager"
            if i == 1
            else "employee,manager"
            if is_head(i)
            else "employee",
            "timezone": "Asia/Shanghai",
            "locale": "zh-CN",
            "active": True,
            "paused": is_paused(i) and i > 1,
            "leave_from": date(2026, 12, 1) if leave else None,
            "leave_until": date(2026, 12, 11) if leave else None,
            "created_at": SEEDED_AT,
            "updated_at": SEEDED_AT,
        }


def department_rows(n: int) -> Iterator[dict[str, Any]]:
    yield {"id": 1, "workspace_id": 1, "platform_dept_id": "d1", "name": "总部", "active": True, "head_id": 1}
    for d in range(2, (n - 1) // TEAM + 3):
        head = (d - 2) * TEAM + 2
        yield {
            "id": d,
            "workspace_id": 1,
            "platform_dept_id": f"d{d}",
            "name": f"部门{d}",
            "parent_id": 1,
            "active": True,
            "head_id": head,
        }


def participant_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 2):
        yield {"id": i, "cycle_id": 1, "person_id": i, "goals_status": "confirmed"}


def goal_rows(n: int) -> Iterator[dict[str, Any]]:
    gid = 0
    for i in range(1, n + 2):
        for pos, (objective, weight) in enumerate((("提升客户满意度", 60), ("完成季度交付", 40))):
            gid += 1
            yield {
                "id": gid,
                "cycle_id": 1,
                "person_id": i,
                "position": pos,
                "objective": objective,
                "key_result": "",
                "weight": weight,
                "level": "person",
                "own_progress": 0.3,
                "created_at": SEEDED_AT,
            }


def item_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(2, n + 2):
        yield {
            "id": i - 1,
            "owner_id": i,
            "acceptor_id": 1 if is_head(i) else head_of(i),
            "created_by_id": 1 if is_head(i) else head_of(i),
            "source": "manual",
            "deliverable": "提交客户回访报告",
            "deadline": WAVE_DAY,
            "status": "open",
            "evidence_required": False,
            "escalation_level": 0,
            "created_at": SEEDED_AT,
        }


def card_message_rows(n: int) -> Iterator[dict[str, Any]]:
    """Each item's owner card, delivered when the item was created: the reminder retires it."""
    for i in range(2, n + 2):
        yield {
            "id": i - 1,
            "platform": "rec",
            "card_key": f"action-item:{i - 1}",
            "platform_user_id": f"u{i:06d}",
            "message_ref": f"seed-{i - 1}",
            "created_at": SEEDED_AT,
        }


def quiet_rows(n: int) -> Iterator[dict[str, Any]]:
    qid = 0
    for i in range(2, n + 2):
        if has_quiet_hours(i):
            qid += 1
            yield {"id": qid, "person_id": i, "starts": "22:00", "ends": "07:30"}


def ledger_keys() -> dict[str, list[tuple[str, str, datetime]]]:
    """What the scheduler owed before the waves, per kind of person (leader, head, member): every series'
    latest occurrence at either wave's minute, except the check-in of the wave itself. Computed with the
    scheduler's own cadence functions, so the seeded ledger is exactly what earlier ticks would have left."""
    from bot.core.config import Settings
    from scheduler.cadence import latest, periodic_flows
    from scheduler.calendar import calendar_from_settings
    from storage.models import Person

    settings = Settings(sim={"enabled": False})
    cal = calendar_from_settings(settings)
    reps = {
        "leader": Person(id=1, roles="employee,leader,manager", manager_id=None, timezone="Asia/Shanghai"),
        "head": Person(id=2, roles="employee,manager", manager_id=1, timezone="Asia/Shanghai"),
        "member": Person(id=3, roles="employee", manager_id=2, timezone="Asia/Shanghai"),
    }
    out: dict[str, list[tuple[str, str, datetime]]] = {}
    for kind, rep in reps.items():
        keys: dict[tuple[str, str], datetime] = {}
        for pf in periodic_flows(rep, settings, cal):
            for at in (REMINDERS_AT, CHECKINS_AT):
                occ = latest(pf.series, at, "Asia/Shanghai")
                if occ is None or (pf.flow == "checkin" and occ.period == WAVE_DAY.isoformat()):
                    continue
                keys[(pf.flow, occ.period)] = occ.at
        out[kind] = [(flow, period, at) for (flow, period), at in sorted(keys.items())]
    return out


def ledger_rows(n: int) -> Iterator[dict[str, Any]]:
    keys = ledger_keys()
    lid = 0
    for i in range(1, n + 2):
        kind = "leader" if i == 1 else "head" if is_head(i) else "member"
        for flow, period, at in keys[kind]:
            lid += 1
            yield {
                "id": lid,
                "flow": flow,
                "person_id": i,
                "period": period,
                "status": "sent",
                "due_at": at,
                "created_at": at,
            }


def tables(n: int, *, items: bool) -> list[tuple[str, Callable[[int], Iterator[dict[str, Any]]]]]:
    out: list[tuple[str, Callable[[int], Iterator[dict[str, Any]]]]] = [
        ("departments", department_rows),
        ("people", people_rows),
        ("cycle_participants", participant_rows),
        ("goals", goal_rows),
        ("quiet_hours", quiet_rows),
        ("scheduled_sends", ledger_rows),
    ]
    if items:
        out += [("action_items", item_rows), ("card_messages", card_message_rows)]
    return out


# ------------------------------------------------------------------------------------------ loading
def _full(columns: list[Any], row: dict[str, Any]) -> tuple[Any, ...]:
    """Each of ``columns`` in order: the row's value, else the column's scalar default, else None."""
    values = []
    for col in columns:
        if col.name in row:
            values.append(row[col.name])
        elif col.default is not None and getattr(col.default, "is_scalar", False):
            values.append(col.default.arg)
        elif col.default is not None and getattr(col.default, "is_callable", False):
            values.append(SEEDED_AT if "at" in col.name else None)
        else:
            values.append(None)
    return tuple(values)


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, dict | list):
        return json.dumps(v)
    return v


def _pg_value(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, dict | list) else v


BASE_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "workspaces",
        {"id": 1, "platform": "rec", "app_id": "rec-app", "name": "bench", "created_at": SEEDED_AT},
    ),
    (
        "cycles",
        {
            "id": 1,
            "workspace_id": 1,
            "code": "2026-Q4",
            "status": "active",
            "scope": [],
            "starts_on": CYCLE_START,
            "ends_on": date(2026, 12, 31),
            "started_at": SEEDED_AT,
            "created_at": SEEDED_AT,
            "goal_visibility": "company",
        },
    ),
]


async def seed(url: str, n: int, *, items: bool) -> dict[str, int]:
    """Bulk-load the company (COPY on PostgreSQL). Only the columns the database has are written, so the
    same loader serves an older schema (a worktree of the code before a change, ``bench/idle.py --tree``)."""
    from storage.models import Base

    meta = Base.metadata.tables
    counts: dict[str, int] = {}
    order = [(t, (lambda _n, r=r: iter([r]))) for t, r in BASE_ROWS] + tables(n, items=items)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        conn.execute("PRAGMA synchronous=OFF")
        for name, rows in order:
            present = {r[1] for r in conn.execute(f"PRAGMA table_info({name})")}
            columns = [c for c in meta[name].columns if c.name in present]
            counter = [0]

            def gen(
                rows: Callable[[int], Iterator[dict[str, Any]]] = rows,
                columns: list[Any] = columns,
                counter: list[int] = counter,
            ) -> Iterator[tuple[Any, ...]]:
                for r in rows(n):
                    counter[0] += 1
                    yield tuple(_sqlite_value(v) for v in _full(columns, r))

            names = ", ".join(c.name for c in columns)
            with conn:
                conn.executemany(
                    f"INSERT INTO {name} ({names}) VALUES ({', '.join('?' * len(columns))})", gen()
                )
            counts[name] = counter[0]
        conn.execute("ANALYZE")
        conn.close()
        return counts
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        for name, rows in order:
            present = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1", name
                )
            }
            columns = [c for c in meta[name].columns if c.name in present]
            counter = [0]

            def records(
                rows: Callable[[int], Iterator[dict[str, Any]]] = rows,
                columns: list[Any] = columns,
                counter: list[int] = counter,
            ) -> Iterator[tuple[Any, ...]]:
                for r in rows(n):
                    counter[0] += 1
                    yield tuple(_pg_value(v) for v in _full(columns, r))

            await conn.copy_records_to_table(name, records=records(), columns=[c.name for c in columns])
            counts[name] = counter[0]
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {max(counter[0], 1)})")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


# ------------------------------------------------------------------------------------------ children
def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _cpu_s() -> float:
    t = os.times()
    return round(t.user + t.system, 2)


def _counting_adapter() -> Any:
    from adapters.base import SendResult
    from tests.fakes.recording import RecordingAdapter

    class CountingAdapter(RecordingAdapter):
        """Counts what arrives instead of keeping it: 100,000 parsed cards would be the bench's own memory."""

        max_recipients_per_call: ClassVar[int] = 1

        def __init__(self) -> None:
            super().__init__()
            self.sends: Counter[str] = Counter()
            self.updated: Counter[str] = Counter()
            self.calls = 0
            self.last_at = 0.0
            self.n = 0

        async def send_many(self, recipients: list[str], card: Any, *, idempotency_key: str) -> SendResult:
            result = SendResult()
            self.calls += 1
            self.last_at = time.monotonic()
            if idempotency_key in self.seen_keys:
                return result
            self.seen_keys.add(idempotency_key)
            for rcpt in recipients:
                self.n += 1
                self.sends[rcpt] += 1
                result.message_refs[rcpt] = f"m{self.n}"
            return result

        async def update(self, message_ref: str, card: Any, *, recipient: str) -> None:
            self.calls += 1
            self.last_at = time.monotonic()
            self.updated[recipient] += 1

    return CountingAdapter()


def _service(url: str, at: datetime, adapter: Any, *, pool: int = 10) -> Any:
    from adapters.registry import AdapterRegistry
    from bot.app.service import build_service
    from bot.core.clock import Clock
    from bot.core.config import Settings

    registry = AdapterRegistry()
    registry.add(adapter)
    settings = Settings(database={"url": url, "pool_size": pool}, sim={"enabled": False})
    # The clock starts at the wave's minute and runs on in real time (leases and back-offs need it to move).
    clock = Clock(offset=at - datetime.now(UTC))
    return build_service(settings, clock=clock, registry=registry)


async def child_open(cfg: dict[str, Any]) -> dict[str, Any]:
    from bot.app.flows import SCHEDULE
    from scheduler.engine import Scheduler
    from scheduler.table import JobTable

    service = _service(cfg["url"], datetime.fromisoformat(cfg["at"]), _counting_adapter())
    try:
        scheduler = Scheduler(service, JobTable(SCHEDULE, partial=True))
        ticks: list[dict[str, Any]] = []
        started = time.perf_counter()
        cpu0 = _cpu_s()
        for _ in range(5):
            t0 = time.perf_counter()
            report = await scheduler.tick()
            ticks.append(
                {
                    "s": round(time.perf_counter() - t0, 3),
                    "sent": len(report.sent),
                    "skipped": len(report.skipped),
                    "missed": len(report.missed),
                    "failed": len(report.failed),
                    "waiting": len(report.waiting),
                }
            )
            if not (report.sent or report.skipped or report.missed or report.failed):
                break
        wall = time.perf_counter() - started
        # The last tick found nothing: what an idle tick at this size costs.
        return {
            "open_s": round(wall - (ticks[-1]["s"] if len(ticks) > 1 else 0.0), 3),
            "ticks": ticks,
            "idle_tick_s": ticks[-1]["s"] if len(ticks) > 1 else None,
            "cpu_s": round(_cpu_s() - cpu0, 2),
            "peak_rss_mb": _peak_rss_mb(),
        }
    finally:
        await service.close()


async def _pending(service: Any) -> int:
    depth = await service.outbox.depth()
    return int(depth.get("pending", 0)) + int(depth.get("sending", 0))


async def child_deliver(cfg: dict[str, Any]) -> dict[str, Any]:
    from adapters.ratelimit import TokenBucket
    from bot.app.outbox import OutboxDelivery

    adapter = _counting_adapter()
    service = _service(cfg["url"], datetime.fromisoformat(cfg["at"]), adapter)
    service.outbox = OutboxDelivery(
        factory=service.factory,
        registry=service.registry,
        settings=service.settings,
        clock=service.clock,
        buckets={"rec": TokenBucket(float(cfg["rate"]), 1)},
    )
    stop = asyncio.Event()
    try:
        queued = await _pending(service)
        started = time.monotonic()
        cpu0 = _cpu_s()
        task = asyncio.create_task(service.outbox.run(stop))
        while True:  # the workers drain on their own; poll the queue until it is empty
            if await _pending(service) == 0:
                break
            await asyncio.sleep(0.25)
        stop.set()
        service.outbox.notify()
        await task
        wall = adapter.last_at - started
        floor = adapter.calls / float(cfg["rate"])
        return {
            "rows": queued,
            "calls": adapter.calls,
            "wall_s": round(wall, 2),
            "floor_s": round(floor, 2),
            "ratio": round(wall / floor, 3) if floor else None,
            "cpu_s": round(_cpu_s() - cpu0, 2),
            "peak_rss_mb": _peak_rss_mb(),
            "sends_per_person": dict(Counter(adapter.sends.values())),
            "updates_per_person": dict(Counter(adapter.updated.values())),
            "people_sent": len(adapter.sends),
        }
    finally:
        await service.close()


async def child_replica(cfg: dict[str, Any]) -> dict[str, Any]:
    """One replica, as ``perfloop run`` runs it (scheduler runner + outbox workers), until SIGTERM."""
    from adapters.ratelimit import TokenBucket
    from bot.app.flows import SCHEDULE
    from bot.app.outbox import OutboxDelivery
    from scheduler.jobs import SchedulerRunner
    from scheduler.table import JobTable

    adapter = _counting_adapter()
    service = _service(cfg["url"], datetime.fromisoformat(cfg["at"]), adapter, pool=5)
    service.outbox = OutboxDelivery(
        factory=service.factory,
        registry=service.registry,
        settings=service.settings,
        clock=service.clock,
        buckets={"rec": TokenBucket(float(cfg["rate"]), 1)},
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = SchedulerRunner(
        service, JobTable(SCHEDULE, partial=True), tick_seconds=2.0, lock_retry_seconds=1.0, name=cfg["name"]
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The runner's tick wakes the outbox after each tick; during a long tick the workers poll.
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(service.outbox.run(stop))]
    print("READY", flush=True)
    await stop.wait()
    service.outbox.notify()
    await asyncio.gather(*tasks)
    await service.close()
    report = runner.last_report
    return {
        "name": cfg["name"],
        "ticks": runner.ticks,
        "led": report is not None,
        "last_tick_sent": len(report.sent) if report else 0,
        "calls": adapter.calls,
        "sends": dict(adapter.sends),
        "updates": sum(adapter.updated.values()),
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_s": _cpu_s(),
    }


def run_child(mode: str, cfg: dict[str, Any]) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(prefix="wave-", suffix=".json")[1])
    cfg = {**cfg, "out": str(out)}
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "child", mode, json.dumps(cfg)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} child failed:\n{proc.stderr.decode()[-4000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    finally:
        out.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ checks
async def db_counts(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from storage.db import create_engine, session_factory
    from storage.models import AuditLog, CheckIn, OutboxMessage, ScheduledSend

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:

            async def scalar(stmt: Any) -> int:
                return int(await s.scalar(stmt) or 0)

            period = WAVE_DAY.isoformat()
            out = {
                "checkins": await scalar(
                    select(func.count()).select_from(CheckIn).where(CheckIn.period == period)
                ),
                "checkin_people": await scalar(
                    select(func.count(func.distinct(CheckIn.person_id))).where(CheckIn.period == period)
                ),
                "ledger_checkin": dict(
                    (
                        await s.execute(
                            select(ScheduledSend.status, func.count())
                            .where(ScheduledSend.flow == "checkin", ScheduledSend.period == period)
                            .group_by(ScheduledSend.status)
                        )
                    ).all()
                ),
                "ledger_reminder": await scalar(
                    select(func.count()).select_from(ScheduledSend).where(ScheduledSend.flow == "action.due")
                ),
                "reminded_audit": await scalar(
                    select(func.count())
                    .select_from(AuditLog)
                    .where(AuditLog.action == "action_item.reminded")
                ),
                "checkin_cards": await scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.dedupe_key.like("checkin:%:open"))
                ),
                "reminder_cards": await scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.dedupe_key.like("action-remind:%"))
                ),
                "outbox": dict(
                    (
                        await s.execute(
                            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                        )
                    ).all()
                ),
            }
            return out
    finally:
        await engine.dispose()


def check(cond: bool, what: str, failures: list[str]) -> None:
    if not cond:
        failures.append(what)
        print(f"  CHECK FAILED: {what}", file=sys.stderr)


# ------------------------------------------------------------------------------------------ runs
async def run_db(kind: str, n: int, rate: float, deliver: bool) -> dict[str, Any]:
    want = expected(n)
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with database(kind, Path(tmp), PG_ADMIN) as url:
            t0 = time.perf_counter()
            rows = await seed(url, n, items=True)
            load_s = round(time.perf_counter() - t0, 1)
            print(f"  {kind}: loaded {sum(rows.values()):,} rows in {load_s} s", file=sys.stderr)
            out: dict[str, Any] = {"db": kind, "people": n, "load_s": load_s, "expected": want}
            for wave, at in (("reminders", REMINDERS_AT), ("check-ins", CHECKINS_AT)):
                load = load_average()
                opened = run_child("open", {"url": url, "at": at.isoformat()})
                opened["load"] = load
                print(
                    f"  {kind} {wave} open: {opened['open_s']} s, {opened['peak_rss_mb']} MB", file=sys.stderr
                )
                delivered: dict[str, Any] | None = None
                if deliver:
                    load = load_average()
                    delivered = run_child("deliver", {"url": url, "at": at.isoformat(), "rate": rate})
                    delivered["load"] = load
                    print(
                        f"  {kind} {wave} deliver: {delivered['wall_s']} s, ratio {delivered['ratio']}",
                        file=sys.stderr,
                    )
                out[wave] = {"open": opened, "deliver": delivered}
            counts = await db_counts(url)
            out["counts"] = counts
            check(counts["checkins"] == want["opened"], f"{kind}: check-ins {counts['checkins']}", failures)
            check(counts["checkin_people"] == counts["checkins"], f"{kind}: a person opened twice", failures)
            check(
                counts["ledger_checkin"].get("sent", 0) == want["opened"]
                and counts["ledger_checkin"].get("skipped", 0) == want["skipped"],
                f"{kind}: ledger {counts['ledger_checkin']}",
                failures,
            )
            check(
                counts["checkin_cards"] == want["opened"],
                f"{kind}: check-in cards {counts['checkin_cards']}",
                failures,
            )
            check(
                counts["ledger_reminder"] == want["reminded"],
                f"{kind}: reminders {counts['ledger_reminder']}",
                failures,
            )
            check(counts["reminder_cards"] == want["reminded"], f"{kind}: reminder cards", failures)
            check(counts["reminded_audit"] == want["reminded"], f"{kind}: reminder audit rows", failures)
            if deliver:
                for wave in ("reminders", "check-ins"):
                    d = out[wave]["deliver"]
                    check(
                        d["sends_per_person"] == {"1": want["opened"]}
                        or d["sends_per_person"] == {1: want["opened"]},
                        f"{kind} {wave}: sends per person {d['sends_per_person']}",
                        failures,
                    )
            out["failures"] = failures
            return out


async def run_replicas(n: int, rate: float, replicas: int) -> dict[str, Any] | None:
    if "postgresql" not in databases("postgresql"):
        return None
    want = expected(n)
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with database("postgresql", Path(tmp), PG_ADMIN) as url:
            await seed(url, n, items=False)
            load = load_average()
            procs = _start_replicas(url, rate, replicas, Path(tmp))
            started = time.monotonic()
            from sqlalchemy import func, select

            from storage.db import create_engine, session_factory
            from storage.models import CheckIn, OutboxMessage

            engine = create_engine(url)
            factory = session_factory(engine)
            open_s = None
            deadline = started + 3600
            try:
                while time.monotonic() < deadline:
                    async with factory() as s:
                        opened = int(await s.scalar(select(func.count()).select_from(CheckIn)) or 0)
                        left = int(
                            await s.scalar(
                                select(func.count())
                                .select_from(OutboxMessage)
                                .where(OutboxMessage.status.in_(("pending", "sending")))
                            )
                            or 0
                        )
                    if open_s is None and opened >= want["opened"]:
                        open_s = time.monotonic() - started
                    if open_s is not None and left == 0:
                        break
                    await asyncio.sleep(0.2)
                all_s = time.monotonic() - started
            finally:
                await engine.dispose()
                for proc, _ in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc, _ in procs:
                    proc.wait(timeout=120)
            results = [json.loads(out.read_text()) for _, out in procs]
            for r in range(replicas):  # kept for a look at what each replica did
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / f"wave-replica-{r}.log").write_bytes((Path(tmp) / f"replica-{r}.log").read_bytes())
            sends: Counter[str] = Counter()
            for r in results:
                sends.update(r.pop("sends"))
            calls = sum(r["calls"] for r in results)
            floor = calls / rate
            out_row = {
                "replicas": replicas,
                "people": n,
                "load": load,
                "open_s": round(open_s, 2) if open_s is not None else None,
                "all_delivered_s": round(all_s, 2),
                "calls": calls,
                "floor_s": round(floor, 2),
                "ratio": round(all_s / floor, 3) if floor else None,
                "leaders": [r["name"] for r in results if r["led"]],
                "per_replica": results,
                "sends_per_person": dict(Counter(sends.values())),
            }
            # From the database: one check-in, one ledger row, one outbox row per person.
            db = await _replica_db_checks(url)
            out_row["db"] = db
            check(
                db["checkins"] == want["opened"] == db["checkin_people"],
                f"replicas: check-ins {db}",
                failures,
            )
            check(db["ledger_sent"] == want["opened"], f"replicas: ledger {db}", failures)
            check(db["cards"] == want["opened"], f"replicas: cards {db}", failures)
            check(
                out_row["sends_per_person"] == {1: want["opened"]},
                f"replicas: sends {out_row['sends_per_person']}",
                failures,
            )
            out_row["failures"] = failures
            return out_row


def _start_replicas(
    url: str, rate: float, replicas: int, tmp: Path
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start the replica processes and wait until each says it is up (each sends at ``rate / replicas``)."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for r in range(replicas):
        out = tmp / f"replica-{r}.json"
        cfg = {
            "url": url,
            "at": CHECKINS_AT.isoformat(),
            "rate": rate / replicas,
            "name": f"r{r}",
            "out": str(out),
        }
        with (tmp / f"replica-{r}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "child", "replica", json.dumps(cfg)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        procs.append((proc, out))
    for proc, _ in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"READY":
            raise RuntimeError("a replica did not start")
    return procs


async def _replica_db_checks(url: str) -> dict[str, int]:
    counts = await db_counts(url)
    return {
        "checkins": counts["checkins"],
        "checkin_people": counts["checkin_people"],
        "ledger_sent": int(counts["ledger_checkin"].get("sent", 0)),
        "cards": counts["checkin_cards"],
    }


def print_table(results: list[dict[str, Any]], replicas: dict[str, Any] | None, rate: float) -> None:
    print(
        f"\nperfloop scheduled waves — rate {rate:g} calls/s, burst 1"
        " (in-process adapter, one call per person)"
    )
    head = (
        f"{'db':<11}{'wave':<11}{'people':>8}{'open s':>8}{'idle tick s':>12}{'RSS MB':>8}{'CPU s':>7}"
        f"{'calls':>8}{'floor s':>8}{'wall s':>8}{'ratio':>7}{'dRSS MB':>8}  load"
    )
    print(head)
    for r in results:
        for wave in ("reminders", "check-ins"):
            o, d = r[wave]["open"], r[wave]["deliver"]
            line = (
                f"{r['db']:<11}{wave:<11}{r['people']:>8,}{o['open_s']:>8.2f}"
                f"{(o['idle_tick_s'] if o['idle_tick_s'] is not None else float('nan')):>12.2f}"
                f"{o['peak_rss_mb']:>8.0f}{o['cpu_s']:>7.1f}"
            )
            if d:
                line += f"{d['calls']:>8,}{d['floor_s']:>8.1f}{d['wall_s']:>8.1f}"
                line += f"{d['ratio']:>7.3f}{d['peak_rss_mb']:>8.0f}"
            else:
                line += " " * 39
            print(line + f"  {o['load']}")
    if replicas:
        print(
            f"\n{replicas['replicas']} replicas on PostgreSQL, check-in wave of {replicas['people']:,}: "
            f"open {replicas['open_s']} s, all delivered {replicas['all_delivered_s']} s "
            f"(floor {replicas['floor_s']} s, ratio {replicas['ratio']}); leader(s) {replicas['leaders']}; "
            f"sends per person {replicas['sends_per_person']}; peak RSS "
            f"{[r['peak_rss_mb'] for r in replicas['per_replica']]} MB; load {replicas['load']}"
        )
    bad = [f for r in results for f in r["failures"]] + (replicas["failures"] if replicas else [])
    print("all checks passed" if not bad else f"CHECKS FAILED: {bad}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--rate", type=float, default=400.0, help="the platform's calls/s (all replicas together)"
    )
    parser.add_argument("--replicas", type=int, default=3, help="0: skip the replica run")
    parser.add_argument("--quick", action="store_true", help="10,000 people")
    parser.add_argument("--no-deliver", action="store_true", help="time the opening only")
    parser.add_argument("--json", type=Path, default=RESULTS / "wave.json")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.people
    results = []
    for kind in databases(args.db):
        results.append(await run_db(kind, n, args.rate, not args.no_deliver))
    replicas = (
        await run_replicas(n, args.rate, args.replicas) if args.replicas and not args.no_deliver else None
    )
    print_table(results, replicas, args.rate)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"people": n, "rate": args.rate, "results": results, "replicas": replicas},
            indent=2,
            ensure_ascii=False,
            default=str,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


def _child_main(mode: str, cfg: dict[str, Any]) -> None:
    fn = {"open": child_open, "deliver": child_deliver, "replica": child_replica}[mode]
    result = asyncio.run(fn(cfg))
    Path(cfg["out"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        _child_main(sys.argv[2], json.loads(sys.argv[3]))
    else:
        asyncio.run(main())
