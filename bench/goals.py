"""The goal tree at 100,000 people: the cycle's roll-up, and ``/okr tree`` for a 2,000-person department.

    .venv/bin/python bench/goals.py [--people 100000] [--department 2000] [--db sqlite|postgresql|both]
                                    [--repeat 5] [--quick] [--json bench/results/goals.json]

For each database (a fresh SQLite file; a throw-away PostgreSQL database on 127.0.0.1:5432, dropped
afterwards) it migrates the schema and bulk-loads (sqlite3 ``executemany`` / asyncpg ``COPY``) a company
aligned the way issue 17 describes it: departments of ``--department`` people, each with a head (reporting to
the CEO) and teams of ten (a team lead reporting to the head); 3 company objectives set by the CEO; 3
objectives per department set by its head, each aligned to a company objective; 3 goals per person (weights
50/30/20), each with 3 key results: a team lead's goals align to the department's objectives, a member's to
the team lead's, one goal in twelve is left unaligned. Progress values are spread so every colour occurs.
Loading is not timed. Then it times (median of ``--repeat``):

- ``roll-up``: the whole cycle rolled up (``handlers.goals.rollup.cycle_roll_up``): every objective's
  progress, from goals alone (key results are never read); the target is < 1 s;
- ``/okr tree <department>``: the command as a department member sends it, through the dispatcher: the
  department's objectives and their subtree (progress, colours, counts, coverage), the tree image drawn
  (Pillow) and stored, the card queued; the target is < 1 s;
- ``/okr tree`` (company, as the CEO): the same for the company objectives over everyone (no target: for
  information);
- ``/okr``: one person's own goals card.

``--quick``: 10,000 people, SQLite only, 3 repeats. Prints a table and writes the figures as JSON: the median
wall-clock time, and the median CPU time of this process (SQLite's engine runs in its thread) plus the
PostgreSQL backends serving the database, which a busy shared machine inflates far less than the wall clock;
``/proc/loadavg`` says how busy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from adapters.registry import AdapterRegistry
from bench.common import RESULTS, database, databases, load_average
from bot.app.dispatcher import Dispatcher
from bot.app.outbox import OutboxDelivery
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.events import TextMessage
from bot.core.router import Router
from handlers.goals import tree, view
from handlers.goals.rollup import cycle_roll_up
from storage.db import create_engine, session_factory

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
STARTS, ENDS = date(2026, 10, 1), date(2026, 12, 31)
TEAM = 10
OBJECTIVES = 3
KEY_RESULTS = 3
WEIGHTS = (50, 30, 20)
UNALIGNED_EVERY = 12


# ------------------------------------------------------------------ the synthetic company
class Company:
    """Ids and shape of the generated org; person ids are 1..n, department ids 1..d."""

    def __init__(self, people: int, department: int) -> None:
        self.n = people
        self.size = department
        self.departments = (people - 2) // department + 1

    def department_of(self, i: int) -> int:
        """Person 1 is the CEO (in department 1); everyone else by blocks of ``size``."""
        return 1 if i == 1 else (i - 2) // self.size + 1

    def head_of(self, d: int) -> int:
        return (d - 1) * self.size + 2

    def lead_of(self, i: int) -> int:
        """The first person of each team of ten inside a department (the head leads the first team)."""
        d = self.department_of(i)
        offset = i - self.head_of(d)
        return self.head_of(d) + (offset // TEAM) * TEAM

    def manager_of(self, i: int) -> int | None:
        if i == 1:
            return None
        d = self.department_of(i)
        head = self.head_of(d)
        if i == head:
            return 1
        lead = self.lead_of(i)
        return head if i == lead else lead

    # goal ids: company objectives 1..3, department objectives next, then 3 per person
    def company_goal(self, k: int) -> int:
        return k + 1

    def department_goal(self, d: int, k: int) -> int:
        return OBJECTIVES + (d - 1) * OBJECTIVES + k + 1

    def person_goal(self, i: int, k: int) -> int:
        return OBJECTIVES + self.departments * OBJECTIVES + (i - 1) * OBJECTIVES + k + 1

    def parent_of_person_goal(self, i: int, k: int) -> int | None:
        if i == 1:
            return self.company_goal(k)
        if (i + k) % UNALIGNED_EVERY == 0:
            return None
        lead = self.lead_of(i)
        if i == lead:
            return self.department_goal(self.department_of(i), k)
        return self.person_goal(lead, k)


def progress_of(seed: int) -> float:
    """Spread over 0..1 so that on-track, at-risk and off-track all occur (the cycle is 60 % through)."""
    return ((seed * 2654435761) % 1000) / 1000


def people_rows(c: Company) -> Iterator[tuple[Any, ...]]:
    for i in range(1, c.n + 1):
        d = c.department_of(i)
        roles = "employee"
        if i == 1:
            roles += ",leader,hr_admin"
        elif i == c.head_of(d) or i == c.lead_of(i):
            roles += ",manager"
        yield (
            i,
            1,
            f"u{i}",
            f"员工{i}",
            d,
            c.manager_of(i),
            roles,
            "Asia/Shanghai",
            "zh-CN",
            True,
            False,
            NOW,
            NOW,
        )


PEOPLE_COLS = (
    "id",
    "workspace_id",
    "platform_user_id",
    "name",
    "department_id",
    "manager_id",
    "roles",
    "timezone",
    "locale",
    "active",
    "paused",
    "created_at",
    "updated_at",
)


def department_rows(c: Company) -> Iterator[tuple[Any, ...]]:
    for d in range(1, c.departments + 1):
        yield (d, 1, f"d{d}", f"部门{d}", c.head_of(d) if c.head_of(d) <= c.n else None, True)


DEPARTMENT_COLS = ("id", "workspace_id", "platform_dept_id", "name", "head_id", "active")


def goal_rows(c: Company) -> Iterator[tuple[Any, ...]]:
    """Rows in ``GOAL_COLS`` order: the company's, the departments', then everyone's objectives."""
    titles = ("提升客户满意度 NPS", "新产品按期上线", "降低交付缺陷率")
    for k in range(OBJECTIVES):
        gid = c.company_goal(k)
        yield (
            gid,
            1,
            1,
            None,
            k,
            f"公司目标{k + 1}：{titles[k]}",
            "",
            0,
            "company",
            None,
            progress_of(gid),
            NOW,
        )
    for d in range(1, c.departments + 1):
        head = c.head_of(d)
        if head > c.n:
            continue
        for k in range(OBJECTIVES):
            gid = c.department_goal(d, k)
            yield (
                gid,
                1,
                head,
                c.company_goal(k),
                k,
                f"部门{d}目标{k + 1}：{titles[k]}",
                "",
                0,
                "department",
                d,
                progress_of(gid),
                NOW,
            )
    for i in range(1, c.n + 1):
        for k in range(OBJECTIVES):
            gid = c.person_goal(i, k)
            yield (
                gid,
                1,
                i,
                c.parent_of_person_goal(i, k),
                k,
                f"员工{i}目标{k + 1}：{titles[k]}",
                "",
                WEIGHTS[k],
                "person",
                None,
                progress_of(gid),
                NOW,
            )


GOAL_COLS = (
    "id",
    "cycle_id",
    "person_id",
    "parent_id",
    "position",
    "objective",
    "key_result",
    "weight",
    "level",
    "department_id",
    "own_progress",
    "created_at",
)


def key_result_rows(c: Company) -> Iterator[tuple[Any, ...]]:
    """3 number KRs per goal; the goal's ``own_progress`` above is their equal-weight mean in spirit (the
    bench never reads them back: the roll-up must not)."""
    kid = 0
    total = c.person_goal(c.n, OBJECTIVES - 1)
    for gid in range(1, total + 1):
        for j in range(KEY_RESULTS):
            kid += 1
            p = progress_of(gid * 7 + j)
            yield (kid, gid, j, f"关键结果{j + 1}", "number", "个", 0.0, 100.0, 100.0 * p, "[]", 0, p)


KR_COLS = (
    "id",
    "goal_id",
    "position",
    "title",
    "kind",
    "unit",
    "start_value",
    "target_value",
    "current_value",
    "milestones",
    "weight",
    "progress",
)


def participant_rows(c: Company) -> Iterator[tuple[Any, ...]]:
    for i in range(1, c.n + 1):
        yield (i, 1, i, "confirmed")


PARTICIPANT_COLS = ("id", "cycle_id", "person_id", "goals_status")

TABLES: list[tuple[str, tuple[str, ...], Callable[[Company], Iterator[tuple[Any, ...]]]]] = [
    ("departments", DEPARTMENT_COLS, department_rows),
    ("people", PEOPLE_COLS, people_rows),
    ("cycle_participants", PARTICIPANT_COLS, participant_rows),
    ("goals", GOAL_COLS, goal_rows),
    ("key_results", KR_COLS, key_result_rows),
]


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def load_sqlite(path: Path, c: Company) -> dict[str, int]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    counts: dict[str, int] = {}
    with conn:
        conn.execute(
            "INSERT INTO workspaces (id, platform, app_id, name, created_at) "
            "VALUES (1, 'rec', 'rec-app', 'bench', ?)",
            (_sqlite_value(NOW),),
        )
        conn.execute(
            "INSERT INTO cycles (id, workspace_id, code, status, scope, starts_on, ends_on, started_at, "
            "created_at, goal_visibility) VALUES (1, 1, '2026-Q4', 'active', '[]', ?, ?, ?, ?, 'company')",
            (STARTS.isoformat(), ENDS.isoformat(), _sqlite_value(NOW), _sqlite_value(NOW)),
        )
    for table, cols, rows in TABLES:
        counter = [0]

        def gen(
            rows: Callable[[Company], Iterator[tuple[Any, ...]]] = rows, counter: list[int] = counter
        ) -> Iterator[tuple[Any, ...]]:
            for r in rows(c):
                counter[0] += 1
                yield tuple(_sqlite_value(v) for v in r)

        with conn:
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", gen()
            )
        counts[table] = counter[0]
    conn.execute("ANALYZE")
    conn.close()
    return counts


async def load_pg(dsn: str, c: Company) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    counts: dict[str, int] = {}
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, platform, app_id, name, created_at) "
            "VALUES (1, 'rec', 'rec-app', 'bench', $1)",
            NOW,
        )
        await conn.execute(
            "INSERT INTO cycles (id, workspace_id, code, status, scope, starts_on, ends_on, started_at, "
            "created_at, goal_visibility) "
            "VALUES (1, 1, '2026-Q4', 'active', '[]', $1, $2, $3, $3, 'company')",
            STARTS,
            ENDS,
            NOW,
        )
        for table, cols, rows in TABLES:
            counter = [0]

            def gen(
                rows: Callable[[Company], Iterator[tuple[Any, ...]]] = rows, counter: list[int] = counter
            ) -> Iterator[tuple[Any, ...]]:
                for r in rows(c):
                    counter[0] += 1
                    yield r

            await conn.copy_records_to_table(table, records=gen(), columns=list(cols))
            counts[table] = counter[0]
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(counter[0], 1)})"
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


# ------------------------------------------------------------------ timing
def bench_service(settings: Settings) -> Service:
    """A Service whose router holds only the goal-tree views: the bench measures them, not start-up."""
    clock = FixedClock(NOW)
    engine = create_engine(settings.database.url)
    factory = session_factory(engine)
    registry = AdapterRegistry()
    router = Router()
    router.include(view.router)
    router.include(tree.router)
    dispatcher = Dispatcher(factory=factory, settings=settings, router=router, registry=registry, clock=clock)
    outbox = OutboxDelivery(factory=factory, registry=registry, settings=settings, clock=clock)
    return Service(
        settings=settings,
        engine=engine,
        factory=factory,
        clock=clock,
        registry=registry,
        dispatcher=dispatcher,
        outbox=outbox,
    )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (the database server's backends), from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a backend that has gone
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Server:
    """The PostgreSQL backends serving the bench database (none for SQLite: it runs in this process)."""

    def __init__(self, url: str) -> None:
        self.dsn = url.replace("+asyncpg", "") if url.startswith("postgresql") else None

    async def pids(self) -> list[int]:
        if self.dsn is None:
            return []
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return [r["pid"] for r in rows]


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int, server: Server) -> dict[str, Any]:
    """Wall-clock seconds, and CPU seconds (this process, with SQLite's engine in its thread, plus the
    PostgreSQL backends): on a shared machine the wall clock grows with everyone's load, the CPU much less."""
    await fn()  # one warm-up run: pools, caches, the font
    walls, cpus = [], []
    for _ in range(repeat):
        pids = await server.pids()
        before = time.process_time() + cpu_seconds(pids)
        started = time.perf_counter()
        await fn()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() + cpu_seconds(pids) - before)
    return {
        "median_s": round(statistics.median(walls), 4),
        "min_s": round(min(walls), 4),
        "cpu_median_s": round(statistics.median(cpus), 4),
        "runs": len(walls),
    }


_event_ids = iter(range(1, 10**9))


async def command(service: Service, sender: str, text: str) -> None:
    event = TextMessage(
        platform="rec", workspace="rec-app", event_id=f"bench-{next(_event_ids)}", sender_id=sender, text=text
    )
    answer = await service.dispatcher.dispatch(event)
    if answer.toast_kind == "error":
        raise RuntimeError(f"{text!r} was refused: {answer.toast}")


async def measure(url: str, media: Path, c: Company, repeat: int) -> dict[str, Any]:
    settings = Settings(database={"url": url}, media={"dir": media}, sim={"enabled": False})
    service = bench_service(settings)
    out: dict[str, Any] = {}
    server = Server(url)
    try:

        async def roll_up() -> None:
            async with service.factory() as s:
                result = await cycle_roll_up(s, 1)
                out["objectives_rolled"] = len(result.rolled)

        out["roll-up"] = await timed(roll_up, repeat, server)
        department = min(2, c.departments)
        member = c.head_of(department) + TEAM + 1
        out["/okr tree <department>"] = await timed(
            lambda: command(service, f"u{member}", f"/okr tree 部门{department}"), repeat, server
        )
        out["/okr tree"] = await timed(lambda: command(service, "u1", "/okr tree"), repeat, server)
        out["/okr"] = await timed(lambda: command(service, f"u{member}", "/okr"), repeat, server)
        async with service.factory() as s:
            result = await cycle_roll_up(s, 1)
        out["company_progress"] = {
            str(c.company_goal(k)): round(result.progress(c.company_goal(k), 0.0), 4)
            for k in range(OBJECTIVES)
        }
    finally:
        await service.close()
    return out


async def run(kind: str, c: Company, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with database(kind, Path(tmp)) as url:
            started = time.perf_counter()
            if kind == "sqlite":
                counts = await asyncio.to_thread(load_sqlite, Path(url.split("///", 1)[1]), c)
            else:
                counts = await load_pg(url.replace("+asyncpg", ""), c)
            load_s = time.perf_counter() - started
            print(f"  {kind}: loaded {counts} in {load_s:.1f}s", file=sys.stderr)
            result = await measure(url, Path(tmp) / "media", c, repeat)
    return {"db": kind, "load_s": round(load_s, 1), "rows": counts, "load": load_average(), **result}


NAMES = ("roll-up", "/okr tree <department>", "/okr tree", "/okr")
TARGETS = {"roll-up": 1.0, "/okr tree <department>": 1.0}


def print_table(results: list[dict[str, Any]], c: Company) -> None:
    print(
        f"\nperfloop goal-tree bench — {c.n:,} people × {OBJECTIVES} objectives × {KEY_RESULTS} key results, "
        f"departments of {c.size:,}; median wall-clock seconds (CPU seconds: this process + database server)"
    )
    print(f"{'database':<12}{'load':>8}" + "".join(f"{n:>26}" for n in NAMES) + "  loadavg")
    for r in results:
        cells = "".join(f"{r[n]['median_s']:>17.3f} ({r[n]['cpu_median_s']:.3f})" for n in NAMES)
        print(f"{r['db']:<12}{r['load_s']:>7.1f}s{cells}  {r['load']}")
    for r in results:
        verdicts = ", ".join(
            f"{n} {r[n]['median_s']:.3f} s (< {t:.0f} s: {'met' if r[n]['median_s'] < t else 'NOT met'})"
            for n, t in TARGETS.items()
        )
        print(f"{r['db']}: {verdicts}; {r['objectives_rolled']:,} objectives with aligned goals rolled up")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--department", type=int, default=2_000, help="people per department")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 people, SQLite only, 3 repeats")
    parser.add_argument("--json", type=Path, default=RESULTS / "goals.json")
    args = parser.parse_args()
    if args.quick:
        args.people, args.db, args.repeat = 10_000, "sqlite", 3
    if args.people < args.department + 2 or args.department < TEAM:
        parser.error("--people must exceed --department, and a department holds at least one team of ten")
    c = Company(args.people, args.department)
    results = [await run(kind, c, args.repeat) for kind in databases(args.db)]
    print_table(results, c)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"people": c.n, "department": c.size, "load_average": load_average(), "results": results},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"\nload average {load_average()}; written to {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
