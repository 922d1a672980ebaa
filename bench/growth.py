"""Table growth over a simulated year, and what retention leaves of it (issue 16 #12).

    python bench/growth.py [--people 10000] [--days 365] [--db both|sqlite|postgresql] [--batch 10000]

For each database it (1) generates a year of rows for ``--people`` people at the rates below, in bulk and
with each row's real age (the service is not exercised: what is measured is storage, not throughput);
(2) measures every growing table (rows, bytes with indexes); (3) runs the retention sweep once, as the
scheduler would on the first day it is deployed on such a database (``bot.app.retention.run_retention``,
default ``[retention]`` ages, ``--batch`` rows per transaction), timing it; (4) compacts the files (SQLite
``VACUUM``; PostgreSQL ``VACUUM FULL``: a deployment that sweeps daily never grows past this, because each
day's sweep frees about one day of rows and the next day's rows reuse the space); (5) measures again, and
the size of the audit archive on disk. Prints a table and writes ``bench/results/growth.json``.

Rates, per 10,000 people and year (the issue's figures for the first two; the others estimated from the
flows: about 0.6 audit rows per inbound event plus the scheduled ones; one ledger key per scheduled step;
one card reference per card-keyed send):

    inbound_events   4,200,000   ~60 B answer
    outbox           5,100,000   ~10 MB card JSON a day (~700 B a card)
    audit_log        2,600,000
    scheduled_sends  1,400,000
    card_messages    1,800,000

The stated bound (with the defaults, at 10,000 people): after retention the five tables hold 7 days of
events, 7 days of full cards, 90 days of sent rows, and 400 days of ledger keys, card references and audit
rows; they stay under 2 GB on either database (measured after one year: PostgreSQL 7.7 GB -> 1.7 GB, SQLite
~6.6 GB -> ~1.5 GB extrapolated from 2,000 people), and stop growing after the first 400 days: from then on
each day's sweep frees about what the day wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, database, databases, load_average
from bot.app.retention import run_retention
from bot.core.clock import FixedClock
from bot.core.config import RetentionConfig, Settings
from cards.model import Card, Header, Markdown
from storage.db import create_engine, session_factory

PER_YEAR_10K = {
    "inbound_events": 4_200_000,
    "outbox": 5_100_000,
    "audit_log": 2_600_000,
    "scheduled_sends": 1_400_000,
    "card_messages": 1_800_000,
}
TABLES = list(PER_YEAR_10K)
END = datetime(2027, 11, 24, 2, 0, tzinfo=UTC)


def card_json() -> str:
    body = "本周进展：" + "完成接口联调与回归测试，" * 12
    card = Card(header=Header(title="双周签到 2026-11-19"), elements=[Markdown(text=body)])
    return json.dumps(card.model_dump(mode="json"), ensure_ascii=False)


CARD = card_json()
ANSWER = json.dumps({"toast": "已提交", "toast_kind": "success", "card": None}, ensure_ascii=False)


def day_rows(
    day: int, days: int, people: int, rnd: random.Random, counters: dict[str, int]
) -> dict[str, list[tuple[Any, ...]]]:
    """One simulated day's rows per table (timestamps spread over that day)."""
    start = END - timedelta(days=days - day)
    scale = people / 10_000 / 365
    out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}

    def at() -> datetime:
        return start + timedelta(seconds=rnd.random() * 86_400)

    for table, per_year in PER_YEAR_10K.items():
        n = int(per_year * scale + rnd.random())
        for _ in range(n):
            counters[table] += 1
            i = counters[table]
            pid = rnd.randint(1, people)
            t = at()
            if table == "inbound_events":
                out[table].append(("feishu", f"ev-{i}", "card_action", pid, ANSWER, t))
            elif table == "outbox":
                refs = json.dumps({"invalid": [], "refs": {f"u{pid}": f"om_{i:016x}"}})
                out[table].append(
                    (
                        1,
                        "feishu",
                        "send",
                        json.dumps([f"u{pid}"]),
                        CARD,
                        f"checkin:{i}",
                        None,
                        None,
                        "sent",
                        1,
                        t,
                        None,
                        None,
                        None,
                        refs,
                        t,
                        t,
                    )
                )
            elif table == "audit_log":
                out[table].append(
                    (t, pid, "checkin.submitted", "checkin", i, json.dumps({"period": "2026-11-19"}))
                )
            elif table == "scheduled_sends":
                out[table].append(("checkin.remind", pid, f"{i}", "sent", t, None, t))
            else:
                out[table].append(("feishu", f"checkin:{i}", f"u{pid}", f"om_{i:016x}", t))
    return out


COLUMNS = {
    "inbound_events": ("platform", "event_id", "kind", "person_id", "answer", "received_at"),
    "outbox": (
        "workspace_id",
        "platform",
        "op",
        "recipients",
        "card",
        "card_key",
        "target_ref",
        "dedupe_key",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_by",
        "claimed_until",
        "last_error",
        "result",
        "created_at",
        "sent_at",
    ),
    "audit_log": ("at", "actor_id", "action", "entity", "entity_id", "detail"),
    "scheduled_sends": ("flow", "person_id", "period", "status", "due_at", "reason", "created_at"),
    "card_messages": ("platform", "card_key", "platform_user_id", "message_ref", "created_at"),
}
JSON_COLUMNS = {"answer", "recipients", "card", "result", "detail"}


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def generate(days: int, people: int, seed: int = 16) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    rnd = random.Random(seed)
    counters = dict.fromkeys(TABLES, 0)
    for day in range(days):
        yield day_rows(day, days, people, rnd, counters)


# ------------------------------------------------------------------------------------------ loading
def load_sqlite(path: str, days: int, people: int) -> dict[str, int]:
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    con.execute(
        "INSERT INTO workspaces (id, platform, app_id, name, created_at) "
        "VALUES (1, 'feishu', 'cli_x', 'bench', ?)",
        (_sqlite_value(END),),
    )
    con.executemany(
        "INSERT INTO people (id, workspace_id, platform_user_id, name, roles, timezone, locale, active, "
        "paused, created_at, updated_at) "
        "VALUES (?, 1, ?, ?, 'employee', 'Asia/Shanghai', 'zh-CN', 1, 0, ?, ?)",
        [(i, f"u{i}", f"员工{i}", _sqlite_value(END), _sqlite_value(END)) for i in range(1, people + 1)],
    )
    totals = dict.fromkeys(TABLES, 0)
    for rows in generate(days, people):
        for table, batch in rows.items():
            cols = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            con.executemany(sql, [tuple(_sqlite_value(v) for v in r) for r in batch])
            totals[table] += len(batch)
        con.commit()
    con.close()
    return totals


async def load_postgres(url: str, days: int, people: int) -> dict[str, int]:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await con.execute(
            "INSERT INTO workspaces (id, platform, app_id, name, created_at) "
            "VALUES (1, 'feishu', 'cli_x', 'bench', $1)",
            END,
        )
        await con.copy_records_to_table(
            "people",
            records=[
                (i, 1, f"u{i}", f"员工{i}", "employee", "Asia/Shanghai", "zh-CN", True, False, END, END)
                for i in range(1, people + 1)
            ],
            columns=[
                "id",
                "workspace_id",
                "platform_user_id",
                "name",
                "roles",
                "timezone",
                "locale",
                "active",
                "paused",
                "created_at",
                "updated_at",
            ],
        )
        await con.execute("SELECT setval(pg_get_serial_sequence('people', 'id'), $1)", people)
        totals = dict.fromkeys(TABLES, 0)
        for rows in generate(days, people):
            for table, batch in rows.items():
                if batch:
                    await con.copy_records_to_table(table, records=batch, columns=list(COLUMNS[table]))
                totals[table] += len(batch)
        return totals
    finally:
        await con.close()


# ------------------------------------------------------------------------------------------ measuring
def sqlite_sizes(path: str) -> dict[str, int]:
    con = sqlite3.connect(path)
    owner = dict(
        con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall()
    )
    sizes = dict.fromkeys(TABLES, 0)
    for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        if table in sizes:
            sizes[table] += int(size)
    sizes["whole database (file)"] = Path(path).stat().st_size
    con.close()
    return sizes


async def pg_sizes(url: str) -> dict[str, int]:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        sizes = {t: int(await con.fetchval("SELECT pg_total_relation_size($1::regclass)", t)) for t in TABLES}
        sizes["whole database (file)"] = int(
            await con.fetchval("SELECT pg_database_size(current_database())")
        )
        return sizes
    finally:
        await con.close()


async def row_counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()) for t in TABLES
            }
    finally:
        await engine.dispose()


async def compact(url: str, kind: str) -> None:
    if kind == "sqlite":
        con = sqlite3.connect(url.split("///", 1)[1])
        con.execute("VACUUM")
        con.close()
        return
    import asyncpg

    con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for t in TABLES:
            await con.execute(f"VACUUM FULL {t}")
    finally:
        await con.close()


def archive_bytes(base: Path) -> tuple[int, int]:
    files = list((base / "audit_log").glob("*.jsonl.gz")) if (base / "audit_log").is_dir() else []
    rows = 0
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            rows += sum(1 for _ in fh)
    return sum(f.stat().st_size for f in files), rows


# ------------------------------------------------------------------------------------------ one run
async def run_one(
    kind: str, people: int, days: int, batch: int, audit_days: int, tmp: Path
) -> dict[str, Any]:
    async with database(kind, tmp) as url:
        t0 = time.monotonic()
        if kind == "sqlite":
            path = url.split("///", 1)[1]
            generated = await asyncio.to_thread(load_sqlite, path, days, people)
        else:
            generated = await load_postgres(url, days, people)
        load_s = time.monotonic() - t0
        if kind == "postgresql":
            await _analyze(url)
        before = sqlite_sizes(path) if kind == "sqlite" else await pg_sizes(url)
        archive_dir = tmp / f"archive-{kind}"
        settings = Settings(
            database={"url": url},
            sim={"enabled": False},
            retention=RetentionConfig(
                archive_dir=archive_dir, batch_size=batch, leavers_erase_days=0, audit_log_days=audit_days
            ),
        )
        engine = create_engine(url)
        t1 = time.monotonic()
        try:
            report = await run_retention(session_factory(engine), settings, FixedClock(END))
        finally:
            await engine.dispose()
        sweep_s = time.monotonic() - t1
        kept = await row_counts(url)
        await compact(url, kind)
        after = sqlite_sizes(path) if kind == "sqlite" else await pg_sizes(url)
        arch_bytes, arch_rows = archive_bytes(archive_dir)
        return {
            "db": kind,
            "people": people,
            "days": days,
            "batch_size": batch,
            "audit_log_days": audit_days,
            "generated_rows": generated,
            "load_seconds": round(load_s, 1),
            "bytes_before": before,
            "retention_seconds": round(sweep_s, 1),
            "retention_report": report.counts,
            "rows_after": kept,
            "bytes_after": after,
            "archive": {"files_bytes": arch_bytes, "rows": arch_rows},
        }


async def _analyze(url: str) -> None:
    import asyncpg

    con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await con.execute("ANALYZE")
    finally:
        await con.close()


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def show(result: dict[str, Any]) -> None:
    print(
        f"\n{result['db']}: {result['people']:,} people, {result['days']} days "
        f"(load {result['load_seconds']} s, retention {result['retention_seconds']} s, "
        f"batch {result['batch_size']})"
    )
    print(f"{'table':<24}{'rows/year':>12}{'MB before':>12}{'rows after':>12}{'MB after':>10}")
    for t in TABLES:
        print(
            f"{t:<24}{result['generated_rows'][t]:>12,}{mb(result['bytes_before'][t]):>12}"
            f"{result['rows_after'][t]:>12,}{mb(result['bytes_after'][t]):>10}"
        )
    whole = "whole database (file)"
    print(
        f"{whole:<24}{'':>12}{mb(result['bytes_before'][whole]):>12}{'':>12}{mb(result['bytes_after'][whole]):>10}"
    )
    arch = result["archive"]
    print(f"audit archive: {arch['rows']:,} rows in {mb(arch['files_bytes'])} MB of .jsonl.gz")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--db", choices=["both", "sqlite", "postgresql"], default="both")
    ap.add_argument("--batch", type=int, default=10_000, help="retention batch size (rows per transaction)")
    ap.add_argument(
        "--audit-days",
        type=int,
        default=RetentionConfig().audit_log_days,
        help="[retention] audit_log_days (default: the default; below the simulated days shows the archive)",
    )
    args = ap.parse_args()
    if args.people < 1 or args.days < 1:
        ap.error("--people and --days must be at least 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="perfloop-growth-") as tmp:
        for kind in databases(args.db):
            result = await run_one(kind, args.people, args.days, args.batch, args.audit_days, Path(tmp))
            show(result)
            results.append(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "growth.json"
    out.write_text(
        json.dumps({"load_average": load_average(), "runs": results}, indent=2, ensure_ascii=False)
    )
    print(f"\nload average {load_average()}; written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
