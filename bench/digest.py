"""Digest and report query times on a company of 100,000 people with one year of records.

    /work/venv/bin/python bench/digest.py [--people 100000] [--db sqlite|postgresql|both]
                                          [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]
                                          [--without-indexes] [--repeat 3] [--json bench/results/digest.json]

For each database (a fresh SQLite file; a throw-away PostgreSQL database, dropped afterwards) it migrates
the schema, bulk-loads the records (sqlite3 ``executemany`` / asyncpg ``COPY``) — per person 26 check-ins
(every two weeks), 12 action items (a third need photo evidence, most of those have one), 2 kudos, and a
progress-gap audit entry for 1 % of people each month — then times:

- ``digest company``: every aggregate the leader's digest runs (``handlers.digest.compute_figures``);
- ``digest team``: the same for one manager's team (``[digest] managers_too``);
- ``chart``: rendering the 30-day trend PNG (matplotlib, in a worker thread);
- ``send_digest``: the whole flow function once (figures, chart, media store, card, outbox row);
- ``report quarter``: ``perfloop report --cycle 2026-Q3 --format csv`` (company, per department, per person).

``--without-indexes`` drops the indexes of migration 0002 first, to show what they buy. Prints a table and
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.registry import AdapterRegistry
from bot.app.dispatcher import Dispatcher
from bot.app.outbox import OutboxDelivery
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.router import Router
from cards.charts import Series, trend_chart_png
from handlers.digest.digest import compute_figures, send_digest
from storage.db import create_engine, migrate, session_factory
from storage.queries.metrics import PROGRESS_GAP_ACTION, Scope

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
START = DAY - timedelta(days=365)
SH = ZoneInfo("Asia/Shanghai")
INDEXES_0002 = (
    "ix_checkins_due_person_status",
    "ix_action_items_deadline_owner",
    "ix_action_items_created_owner",
    "ix_recognitions_created_to",
    "ix_recognitions_to",
    "ix_audit_action_at",
)


# ------------------------------------------------------------------ the synthetic company


def at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def people_rows(n: int) -> Iterator[tuple[Any, ...]]:
    """Teams of ten (person 10k+1 manages 10k+2 … 10k+10), departments of fifty, five leaders."""
    for i in range(1, n + 1):
        head = ((i - 1) // 10) * 10 + 1
        manager = head if i != head else (1 if i != 1 else None)
        roles = "employee"
        if i == head:
            roles += ",manager"
        if i <= 5:
            roles += ",leader"
        yield (
            i,
            1,
            f"u{i}",
            f"员工{i}",
            (i - 1) // 50 + 1,
            manager,
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


def checkin_rows(n: int) -> Iterator[tuple[Any, ...]]:
    cid = 0
    for i in range(1, n + 1):
        first = START + timedelta(days=i % 10)
        for k in range(26):
            cid += 1
            due = at(first + timedelta(days=14 * k), 8)
            r = (i * 31 + k * 17) % 100
            status = (
                "acknowledged"
                if r < 70
                else "submitted"
                if r < 80
                else "missed"
                if r < 90
                else "skipped"
                if r < 95
                else "followup"
            )
            if due > NOW:
                status = "open"
            submitted = (
                due + timedelta(hours=2) if status in ("acknowledged", "submitted", "followup") else None
            )
            yield (cid, i, f"{due.date().isoformat()}", status, "{}", due, submitted, NOW)


CHECKIN_COLS = ("id", "person_id", "period", "status", "progress", "due_at", "submitted_at", "created_at")


def item_rows(n: int) -> Iterator[tuple[Any, ...]]:
    iid = 0
    for i in range(1, n + 1):
        for k in range(12):
            iid += 1
            deadline = START + timedelta(days=30 * k + i % 28)
            created = at(deadline - timedelta(days=14), 3)
            r = (i * 7 + k * 13) % 100
            if r < 62:
                status, done = "accepted", at(deadline - timedelta(days=1), 9)
            elif r < 80:
                status, done = "done", at(deadline + timedelta(days=2), 9)
            elif r < 85:
                status, done = "closed", None
            else:
                status, done = "open", None
            if done is not None and done > NOW:
                status, done = "open", None
            first_response = created + timedelta(hours=(i + k) % 48) if r < 90 else None
            required = (i + k) % 10 < 3
            manager = ((i - 1) // 10) * 10 + 1
            yield (
                iid,
                i,
                manager,
                "manual",
                f"交付物 {k}",
                deadline,
                status,
                required,
                0,
                first_response,
                done,
                created,
            )


ITEM_COLS = (
    "id",
    "owner_id",
    "acceptor_id",
    "source",
    "deliverable",
    "deadline",
    "status",
    "evidence_required",
    "escalation_level",
    "first_response_at",
    "done_at",
    "created_at",
)


def evidence_rows(n: int) -> Iterator[tuple[Any, ...]]:
    iid = eid = 0
    for i in range(1, n + 1):
        for k in range(12):
            iid += 1
            if (i + k) % 10 < 3 and (i + k) % 3 != 0:
                eid += 1
                deadline = START + timedelta(days=30 * k + i % 28)
                yield (
                    eid,
                    i,
                    iid,
                    "bench",
                    f"{eid:064x}",
                    1000,
                    "image/jpeg",
                    at(deadline - timedelta(days=3), 5),
                    "",
                )


EVIDENCE_COLS = (
    "id",
    "person_id",
    "action_item_id",
    "file_path",
    "sha256",
    "size",
    "mime",
    "received_at",
    "platform_media_ref",
)


def kudos_rows(n: int) -> Iterator[tuple[Any, ...]]:
    rid = 0
    for i in range(1, n + 1):
        for j in range(2):
            rid += 1
            yield (
                rid,
                (i + 6) % n + 1,
                i,
                "谢谢",
                1 + (i + j) % 3,
                at(START + timedelta(days=(i * 13 + j * 101) % 365), 6),
            )


KUDOS_COLS = ("id", "from_person_id", "to_person_id", "reason", "points", "created_at")


def audit_rows(n: int) -> Iterator[tuple[Any, ...]]:
    aid = 0
    for i in range(1, n + 1, 100):
        for month in range(12):
            aid += 1
            yield (
                aid,
                at(START + timedelta(days=30 * month + 5), 8),
                i,
                PROGRESS_GAP_ACTION,
                "person",
                i,
                json.dumps({"key": f"gap:{aid}"}),
            )


AUDIT_COLS = ("id", "at", "actor_id", "action", "entity", "entity_id", "detail")

TABLES: list[tuple[str, tuple[str, ...], Callable[[int], Iterator[tuple[Any, ...]]]]] = [
    ("people", PEOPLE_COLS, people_rows),
    ("checkins", CHECKIN_COLS, checkin_rows),
    ("action_items", ITEM_COLS, item_rows),
    ("evidence", EVIDENCE_COLS, evidence_rows),
    ("recognitions", KUDOS_COLS, kudos_rows),
    ("audit_log", AUDIT_COLS, audit_rows),
]


def departments(n: int) -> list[tuple[Any, ...]]:
    return [(d, 1, f"d{d}", f"部门{d}", True) for d in range(1, (n - 1) // 50 + 2)]


# ------------------------------------------------------------------ loading


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def load_sqlite(path: Path, n: int) -> dict[str, int]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    counts: dict[str, int] = {}
    with conn:
        conn.execute(
            "INSERT INTO workspaces (id, platform, app_id, name, created_at) VALUES (1, 'rec', 'rec-app', "
            "'bench', ?)",
            (_sqlite_value(NOW),),
        )
        conn.executemany(
            "INSERT INTO departments (id, workspace_id, platform_dept_id, name, active) "
            "VALUES (?, ?, ?, ?, ?)",
            [tuple(_sqlite_value(v) for v in r) for r in departments(n)],
        )
        conn.execute(
            "INSERT INTO cycles (id, workspace_id, code, status, scope, starts_on, ends_on, created_at) "
            "VALUES (1, 1, '2026-Q3', 'closed', '[]', '2026-07-01', '2026-09-30', ?)",
            (_sqlite_value(NOW),),
        )
    for table, cols, rows in TABLES:
        counter = [0]

        def gen(
            rows: Callable[[int], Iterator[tuple[Any, ...]]] = rows, counter: list[int] = counter
        ) -> Iterator[tuple[Any, ...]]:
            for r in rows(n):
                counter[0] += 1
                yield tuple(_sqlite_value(v) for v in r)

        started = time.perf_counter()
        with conn:
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", gen()
            )
        counts[table] = counter[0]
        print(
            f"  sqlite {table}: {counter[0]:,} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr
        )
    conn.execute("ANALYZE")
    conn.close()
    return counts


async def load_pg(dsn: str, n: int) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    counts: dict[str, int] = {}
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, platform, app_id, name, created_at) VALUES "
            "(1, 'rec', 'rec-app', 'bench', $1)",
            NOW,
        )
        await conn.copy_records_to_table(
            "departments",
            records=departments(n),
            columns=["id", "workspace_id", "platform_dept_id", "name", "active"],
        )
        await conn.execute(
            "INSERT INTO cycles (id, workspace_id, code, status, scope, starts_on, ends_on, "
            "created_at) VALUES (1, 1, '2026-Q3', 'closed', '[]', '2026-07-01', '2026-09-30', $1)",
            NOW,
        )
        for table, cols, rows in TABLES:
            counter = [0]

            def gen(
                rows: Callable[[int], Iterator[tuple[Any, ...]]] = rows, counter: list[int] = counter
            ) -> Iterator[tuple[Any, ...]]:
                for r in rows(n):
                    counter[0] += 1
                    yield r

            started = time.perf_counter()
            await conn.copy_records_to_table(table, records=gen(), columns=list(cols))
            counts[table] = counter[0]
            print(
                f"  postgresql {table}: {counter[0]:,} rows in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(counter[0], 1)})"
            )
        # VACUUM sets the visibility map as autovacuum would in a running system, so PostgreSQL can answer
        # the range aggregations from the indexes alone (index-only scans); ANALYZE refreshes the statistics.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


# ------------------------------------------------------------------ timing


def bench_service(settings: Settings) -> Service:
    """A Service with an empty router: the flow functions are called directly, so the bench does not depend
    on every handler module importing cleanly."""
    clock = FixedClock(NOW)
    engine = create_engine(settings.database.url)
    factory = session_factory(engine)
    registry = AdapterRegistry()
    dispatcher = Dispatcher(
        factory=factory, settings=settings, router=Router(), registry=registry, clock=clock
    )
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


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        runs.append(time.perf_counter() - started)
    return {"min_s": round(min(runs), 4), "median_s": round(statistics.median(runs), 4), "runs": len(runs)}


async def measure(
    url: str, media: Path, repeat: int, *, only_report: bool = False, trees: tuple[Path, ...] = ()
) -> dict[str, Any]:
    if only_report:
        return _reports(url, repeat, trees)
    settings = Settings(database={"url": url}, media={"dir": media}, sim={"enabled": False})
    service = bench_service(settings)
    out: dict[str, Any] = {}
    try:

        async def digest(scope: Scope) -> None:
            async with service.factory() as s:
                await compute_figures(s, scope, day=DAY, tz=SH, period_days=14, trend_days=30)

        out["digest company"] = await timed(lambda: digest(Scope(1)), repeat)
        out["digest team"] = await timed(lambda: digest(Scope(1, manager_id=11)), repeat)
        async with service.factory() as s:
            figures = await compute_figures(s, Scope(1), day=DAY, tz=SH, period_days=14, trend_days=30)
        out["chart"] = await timed(
            lambda: trend_chart_png(
                [p.day for p in figures.trend],
                [
                    Series([p.checkin_rate for p in figures.trend]),
                    Series([p.fulfilment_rate for p in figures.trend]),
                ],
            ),
            repeat,
        )
        out["send_digest"] = await timed(
            lambda: service.dispatcher.run_for_person(1, lambda ctx: _drop(send_digest(ctx, day=DAY))), 1
        )
        out.update(_reports(url, repeat, trees))
        out["figures"] = {
            "checkin_rate": figures.now.checkin_rate,
            "fulfilment_rate": figures.now.fulfilment_rate,
            "overdue": figures.overdue_total,
        }
    finally:
        await service.close()
    return out


async def _drop(coro: Awaitable[Any]) -> None:
    await coro


REPORT_CHILD = r"""
import asyncio, json, os, sys, tempfile, time
sys.path.insert(0, os.getcwd())
from bench.digest import bench_service
from bot.core.config import Settings
import bot.app.report as report

async def main(url, repeat):
    runs, first, size = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        service = bench_service(Settings(database={"url": url}, media={"dir": tmp}, sim={"enabled": False}))
        for _ in range(repeat):
            started, first_at, size = time.perf_counter(), None, 0
            if hasattr(report, "stream_report"):
                async for piece in report.stream_report(service, cycle="2026-Q3", fmt="csv"):
                    first_at = first_at or time.perf_counter()
                    size += len(piece)
            else:  # before the report streamed: the whole text at once
                size = len(await report.build_report(service, cycle="2026-Q3", fmt="csv"))
                first_at = time.perf_counter()
            runs.append(time.perf_counter() - started)
            first.append(first_at - started)
        await service.close()
    hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(json.dumps({"runs": runs, "first": first, "bytes": size, "peak_rss_mb": round(hwm / 1024, 1)}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _reports(url: str, repeat: int, trees: tuple[Path, ...]) -> dict[str, Any]:
    """The report by this checkout and, side by side on the same data, by each of ``trees`` (``--tree``)."""
    out: dict[str, Any] = {"report quarter": report_in_child(url, repeat, ROOT)}
    for tree in trees:
        out[f"report quarter ({tree.name})"] = report_in_child(url, repeat, tree)
    return out


def report_in_child(url: str, repeat: int, tree: Path) -> dict[str, Any]:
    """``perfloop report --cycle 2026-Q3 --format csv`` as the code in ``tree`` writes it, in a process of its
    own (its peak RSS is the report's): median and min of ``repeat`` runs, and when the first piece of the
    file was ready (the whole file, before the report streamed)."""
    proc = subprocess.run(
        [sys.executable, "-c", REPORT_CHILD, url, str(repeat)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"report child failed in {tree}:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "min_s": round(min(got["runs"]), 4),
        "median_s": round(statistics.median(got["runs"]), 4),
        "first_piece_s": round(statistics.median(got["first"]), 4),
        "runs": len(got["runs"]),
        "bytes": got["bytes"],
        "peak_rss_mb": got["peak_rss_mb"],
        "tree": str(tree),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


async def drop_indexes(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for name in INDEXES_0002:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    await engine.dispose()


async def run_sqlite(
    people: int,
    repeat: int,
    without_indexes: bool,
    *,
    only_report: bool = False,
    trees: tuple[Path, ...] = (),
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await migrate(url)
        if without_indexes:
            await drop_indexes(url)
        started = time.perf_counter()
        counts = await asyncio.to_thread(load_sqlite, path, people)
        load_s = time.perf_counter() - started
        result = await measure(url, Path(tmp) / "media", repeat, only_report=only_report, trees=trees)
        return {"db": "sqlite", "load_s": round(load_s, 1), "rows": counts, **result}


def _pg_reachable(url: str) -> bool:
    host = url.split("@", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 5432)), timeout=2):
            return True
    except OSError:
        return False


async def run_pg(
    admin_url: str,
    people: int,
    repeat: int,
    without_indexes: bool,
    *,
    reuse: str | None = None,
    keep: bool = False,
    only_report: bool = False,
    trees: tuple[Path, ...] = (),
) -> dict[str, Any] | None:
    """A throw-away database, loaded and dropped afterwards; ``reuse`` names one a ``keep`` run left loaded
    (the load is three of the four minutes)."""
    if not _pg_reachable(admin_url):
        print(f"PostgreSQL at {admin_url} is unreachable: skipped", file=sys.stderr)
        return None
    name = reuse or f"perfloop_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        load_s, counts = 0.0, {}
        if reuse is None:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            await migrate(url)
            if without_indexes:
                await drop_indexes(url)
            started = time.perf_counter()
            counts = await load_pg(url.replace("+asyncpg", ""), people)
            load_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            result = await measure(url, Path(tmp) / "media", repeat, only_report=only_report, trees=trees)
        return {"db": "postgresql", "load_s": round(load_s, 1), "rows": counts, **result}
    finally:
        if keep or reuse:
            print(f"kept the loaded database {name!r} (reuse it with --reuse-pg {name})", file=sys.stderr)
        else:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def print_table(results: list[dict[str, Any]], people: int) -> None:
    names = ["digest company", "digest team", "chart", "send_digest", "report quarter"]
    print(f"\nperfloop digest/report bench — {people:,} people, one year of records")
    print(f"{'database':<12}{'load':>9}" + "".join(f"{n:>17}" for n in names))
    for r in results:
        cells = "".join(f"{r[n]['median_s']:>16.3f}s" if n in r else f"{'–':>17}" for n in names)
        print(f"{r['db']:<12}{r['load_s']:>8.1f}s{cells}")
    print(
        f"\n{'database':<12}{'report by':<26}{'median s':>10}{'min s':>8}"
        f"{'first piece s':>15}{'peak RSS MB':>13}  load"
    )
    for r in results:
        for key, rep in r.items():
            if key.startswith("report quarter"):
                tree = Path(rep["tree"]).name
                print(
                    f"{r['db']:<12}{tree[:25]:<26}{rep['median_s']:>10.3f}{rep['min_s']:>8.3f}"
                    f"{rep['first_piece_s']:>15.3f}{rep['peak_rss_mb']:>13.1f}  {rep['load']}"
                )
    for r in results:
        rows = ", ".join(f"{k} {v:,}" for k, v in r["rows"].items())
        print(f"{r['db']}: {rows}; report {r['report quarter']['bytes']:,} bytes; figures {r.get('figures')}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="an admin URL; a throw-away database is created beside it and dropped afterwards",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--without-indexes", action="store_true", help="drop migration 0002's indexes first")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "digest.json")
    parser.add_argument("--only-report", action="store_true", help="time the report alone")
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        default=[],
        help="also time the report of this checkout (repeatable)",
    )
    parser.add_argument(
        "--keep-pg", action="store_true", help="leave the loaded PostgreSQL database in place"
    )
    parser.add_argument("--reuse-pg", default=None, help="a database --keep-pg left loaded: skip the load")
    args = parser.parse_args()
    if args.people < 20:
        parser.error("--people must be at least 20")
    results: list[dict[str, Any]] = []
    trees = tuple(t.resolve() for t in args.tree)
    if args.db in ("sqlite", "both"):
        results.append(
            await run_sqlite(
                args.people, args.repeat, args.without_indexes, only_report=args.only_report, trees=trees
            )
        )
    if args.db in ("postgresql", "both"):
        pg = await run_pg(
            args.pg,
            args.people,
            args.repeat,
            args.without_indexes,
            reuse=args.reuse_pg,
            keep=args.keep_pg,
            only_report=args.only_report,
            trees=trees,
        )
        if pg is not None:
            results.append(pg)
    print_table(results, args.people)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"people": args.people, "without_indexes": args.without_indexes, "results": results},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
