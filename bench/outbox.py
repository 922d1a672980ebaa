"""Outbox throughput: cards queued + delivered per second to a no-limit in-process adapter.

    python bench/outbox.py [--people 10000] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]

For each database (a fresh SQLite file; a throw-away PostgreSQL database if reachable) and each delivery
shape (one recipient per call, as on Feishu; 1,000 per call, as WeCom's message/send allows) it times
(a) queueing the broadcast in one transaction and (b) delivering it with the configured workers, and checks
every person received exactly one card. Prints a table and writes bench/results/outbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.registry import AdapterRegistry
from bot.app.service import build_service
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.context import Outbox
from cards.model import Card, Header, Markdown
from storage.db import migrate
from storage.models import Person, Workspace
from tests.fakes.recording import RecordingAdapter


class OnePerCall(RecordingAdapter):
    max_recipients_per_call: ClassVar[int] = 1


async def run_case(url: str, people: int, adapter: RecordingAdapter) -> dict[str, Any]:
    await migrate(url)
    settings = Settings(database={"url": url}, sim={"enabled": False})
    registry = AdapterRegistry()
    registry.add(adapter)
    service = build_service(settings, clock=Clock(), registry=registry)
    try:
        async with service.factory() as s, s.begin():
            ws = Workspace(platform="rec", app_id="rec-app", name="bench")
            s.add(ws)
            await s.flush()
            s.add_all(
                Person(workspace_id=ws.id, platform_user_id=f"u{i:06d}", name=f"员工{i}")
                for i in range(people)
            )
        async with service.factory() as s:
            from sqlalchemy import select

            ws = (await s.scalars(select(Workspace))).one()
            persons = list((await s.scalars(select(Person))).all())
        card = Card(
            header=Header(title="2026-Q1 绩效周期启动"), elements=[Markdown(text="请确认本周期目标。")]
        )
        t0 = time.perf_counter()
        async with service.factory() as s, s.begin():
            out = Outbox(
                session=s,
                workspace=ws,
                now=service.clock.now(),
                recipients_per_call=adapter.max_recipients_per_call,
            )
            rows = await out.broadcast(
                persons, lambda t: card, card_key="kickoff:bench", dedupe_prefix="kickoff:bench"
            )
        t1 = time.perf_counter()
        await service.outbox.drain(timeout=900)
        t2 = time.perf_counter()
        counts = Counter(d.recipient for d in adapter.sent)
        assert len(counts) == people and set(counts.values()) == {1}, "a person got 0 or 2 cards"
        return {
            "rows": rows,
            "queue_s": round(t1 - t0, 3),
            "deliver_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "cards_per_s": round(people / (t2 - t0), 1),
        }
    finally:
        await service.close()


def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "outbox.json")
    args = ap.parse_args()
    results: list[dict[str, Any]] = []
    shapes = [("1 per call", OnePerCall), ("1000 per call", RecordingAdapter)]
    with tempfile.TemporaryDirectory() as tmp:
        for shape, cls in shapes:
            url = f"sqlite+aiosqlite:///{tmp}/bench-{uuid.uuid4().hex[:6]}.db"
            results.append({"db": "sqlite", "shape": shape, **await run_case(url, args.people, cls())})
    if pg_reachable():
        for shape, cls in shapes:
            name = f"perfloop_bench_{uuid.uuid4().hex[:8]}"
            admin = create_async_engine(args.pg, isolation_level="AUTOCOMMIT")
            async with admin.connect() as c:
                await c.execute(text(f'CREATE DATABASE "{name}"'))
            url = args.pg.rsplit("/", 1)[0] + f"/{name}"
            try:
                results.append(
                    {"db": "postgresql", "shape": shape, **await run_case(url, args.people, cls())}
                )
            finally:
                async with admin.connect() as c:
                    await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await admin.dispose()
    else:
        print("PostgreSQL not reachable on 127.0.0.1:5432: skipped", file=sys.stderr)
    print(f"\noutbox broadcast to {args.people} people (no rate limit, in-process adapter)")
    print(f"{'db':<11}{'shape':<15}{'rows':>7}{'queue s':>9}{'deliver s':>11}{'total s':>9}{'cards/s':>10}")
    for r in results:
        print(
            f"{r['db']:<11}{r['shape']:<15}{r['rows']:>7}{r['queue_s']:>9}{r['deliver_s']:>11}"
            f"{r['total_s']:>9}{r['cards_per_s']:>10}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"people": args.people, "results": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
