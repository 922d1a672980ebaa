"""Monthly growth snapshots for 10,000 people: figures, images and outbox rows, on one process.

    .venv/bin/python bench/snapshots.py [--people 10000] [--db sqlite|postgresql|both]
                                        [--processes 0] [--json bench/results/snapshots.json]

For each database it migrates a fresh schema and bulk-loads a company (teams of ten) with a September 2026
for everyone: 3 goals in an active cycle, 3 check-ins (one missed for every fifth person, the latest with
progress per goal), 4 action items (done, done late, open past its deadline, open later), 2 evidence
photos with ratings, 2 kudos, and a released peer-feedback round for every tenth person (the radar). Then,
with the clock on Thursday 8 October 2026 10:00 in Shanghai (the first workday after National Day), it
times one run of the snapshot sweep (``handlers.snapshot.api.run_wave``), the code the scheduler's leader
runs: every snapshot computed, its image drawn (JPEG, in ``--processes`` worker processes; 0 = one per CPU)
and stored, its row and its outbox row written. "queued" is the number of outbox rows it left; the target
is all of them in under 60 s. Loading the records is not timed. It also times the sweep on the ticks around
the wave: on a holiday before the first workday ("idle tick", nearly every tick of a month: one query) and
later on the first workday, once the wave is done ("tick after wave": two queries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text

from adapters.registry import AdapterRegistry
from bench.common import RESULTS, database, databases, load_average
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings
from handlers.snapshot.api import Renderer, run_wave
from storage.models import (
    ActionItem,
    CheckIn,
    Cycle,
    CycleParticipant,
    Evidence,
    Goal,
    OutboxMessage,
    PeerFeedback,
    Person,
    Recognition,
    Snapshot,
    Workspace,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 8, 10, 0, tzinfo=SH).astimezone(UTC)
IDLE = datetime(2026, 10, 6, 10, 0, tzinfo=SH).astimezone(UTC)
"""A holiday before the first workday: what nearly every tick of a month looks like."""
AFTER = datetime(2026, 10, 8, 15, 0, tzinfo=SH).astimezone(UTC)
"""Later on the first workday: the wave is done, the tick only finds it marked finished."""
LOADED = datetime(2026, 8, 20, tzinfo=UTC)


def sh(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=SH).astimezone(UTC)


def people(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        head = ((i - 1) // 10) * 10 + 1
        yield {
            "id": i,
            "workspace_id": 1,
            "platform_user_id": f"u{i}",
            "name": f"员工{i}",
            "manager_id": None if i == head else head,
            "roles": "employee,manager" if i == head else "employee",
            "timezone": "Asia/Shanghai",
            "locale": "en" if i % 7 == 0 else "zh-CN",
            "active": True,
            "paused": False,
            "created_at": LOADED,
            "updated_at": LOADED,
        }


def records(n: int) -> dict[type[Any], list[dict[str, Any]]]:
    out: dict[type[Any], list[dict[str, Any]]] = {
        Goal: [],
        CycleParticipant: [],
        CheckIn: [],
        ActionItem: [],
        Evidence: [],
        Recognition: [],
        PeerFeedback: [],
    }
    gid = 0
    for i in range(1, n + 1):
        out[CycleParticipant].append({"cycle_id": 1, "person_id": i, "goals_status": "confirmed"})
        goals = []
        for k in range(3):
            gid += 1
            goals.append(gid)
            out[Goal].append(
                {
                    "id": gid,
                    "cycle_id": 1,
                    "person_id": i,
                    "position": k,
                    "objective": f"目标 {k + 1}：提升交付质量与协作效率",
                    "key_result": "",
                    "weight": (50, 30, 20)[k],
                    "created_at": LOADED,
                }
            )
        for k, day in enumerate((4, 18, 25)):
            missed = k == 0 and i % 5 == 0
            out[CheckIn].append(
                {
                    "person_id": i,
                    "cycle_id": 1,
                    "period": f"2026-09-{day:02d}",
                    "status": "missed" if missed else "acknowledged",
                    "progress": {str(g): (i * 7 + j * 13 + k * 10) % 101 for j, g in enumerate(goals)},
                    "due_at": sh(9, day, 16),
                    "submitted_at": None if missed else sh(9, day, 18),
                    "created_at": sh(9, day, 16),
                }
            )
        for deadline, status, done in (
            (date(2026, 9, 10), "accepted", sh(9, 9)),
            (date(2026, 9, 15), "done", sh(10, 2)),
            (date(2026, 9, 28), "open", None),
            (date(2026, 10, 20), "open", None),
        ):
            out[ActionItem].append(
                {
                    "owner_id": i,
                    "source": "manual",
                    "deliverable": "交付物",
                    "deadline": deadline,
                    "status": status,
                    "evidence_required": False,
                    "escalation_level": 0,
                    "done_at": done,
                    "created_at": LOADED,
                }
            )
        for k, rating in enumerate(("meets", "improve" if i % 3 == 0 else None)):
            out[Evidence].append(
                {
                    "person_id": i,
                    "file_path": "bench",
                    "sha256": f"{i * 2 + k:064x}",
                    "size": 1000,
                    "mime": "image/jpeg",
                    "received_at": sh(9, 5 + k * 10),
                    "platform_media_ref": "",
                    "rating": rating,
                }
            )
        for k in range(2):
            out[Recognition].append(
                {
                    "from_person_id": i % n + 1,
                    "to_person_id": i,
                    "reason": "谢谢",
                    "points": 1 + k,
                    "created_at": sh(9, 3 + k * 20),
                }
            )
        if i % 10 == 2:
            for k in range(3):
                out[PeerFeedback].append(
                    {
                        "cycle_id": 1,
                        "subject_id": i,
                        "rater_id": (i + k) % n + 1,
                        "role": "peer",
                        "status": "answered",
                        "scores": {
                            "responsiveness": 4,
                            "quality": 3 + k % 2,
                            "collaboration": 4,
                            "ownership": 3,
                        },
                        "released_at": sh(9, 20),
                        "created_at": LOADED,
                    }
                )
    return out


async def load(url: str, n: int) -> dict[str, int]:
    from storage.db import create_engine

    engine = create_engine(url)
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        await conn.execute(
            insert(Workspace),
            [{"id": 1, "platform": "rec", "app_id": "rec-app", "name": "bench", "created_at": LOADED}],
        )
        rows = list(people(n))
        for start in range(0, len(rows), 2000):
            await conn.execute(insert(Person), rows[start : start + 2000])
        counts["people"] = len(rows)
        await conn.execute(
            insert(Cycle),
            [
                {
                    "id": 1,
                    "workspace_id": 1,
                    "code": "2026-H2",
                    "status": "active",
                    "scope": [],
                    "starts_on": date(2026, 7, 1),
                    "ends_on": date(2026, 12, 31),
                    "created_at": LOADED,
                }
            ],
        )
        for model, table_rows in records(n).items():
            for start in range(0, len(table_rows), 2000):
                await conn.execute(insert(model), table_rows[start : start + 2000])
            counts[model.__tablename__] = len(table_rows)
        if engine.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT setval(pg_get_serial_sequence('goals', 'id'), (SELECT max(id) FROM goals))")
            )
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    return counts


def _media_files(media: Path) -> tuple[int, int]:
    found = [p for p in media.rglob("*") if p.is_file()]
    return len(found), sum(p.stat().st_size for p in found)


async def _idle_tick(service: Service, renderer: Renderer) -> float:
    """Seconds of a sweep run that finds nothing due (the median of five)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        report = await run_wave(service, renderer=renderer)
        times.append(time.perf_counter() - started)
        assert report.total == 0
    return sorted(times)[2]


async def measure(url: str, media: Path, processes: int) -> dict[str, Any]:
    settings = Settings(
        database={"url": url},
        media={"dir": media},
        sim={"enabled": False},
        snapshot={"render_processes": processes},
    )
    clock = FixedClock(IDLE)
    service = build_service(settings, clock=clock, registry=AdapterRegistry())
    renderer = Renderer.from_settings(settings)
    try:
        idle_before = await _idle_tick(service, renderer)
        clock.set(NOW)
        started = time.perf_counter()
        report = await run_wave(service, renderer=renderer)
        wall = time.perf_counter() - started
        clock.set(AFTER)
        idle_after = await _idle_tick(service, renderer)
        async with service.factory() as s:
            queued = await s.scalar(select(func.count()).select_from(OutboxMessage))
            stored = await s.scalar(select(func.count()).select_from(Snapshot))
            radar = await s.scalar(
                select(func.count())
                .select_from(Snapshot)
                .where(Snapshot.figures["radar"].as_string() != "null")
            )
    finally:
        renderer.close()
        await service.close()
    files, size = await asyncio.to_thread(_media_files, media)
    return {
        "wall_s": round(wall, 2),
        "idle_tick_ms": round(idle_before * 1000, 2),
        "tick_after_wave_ms": round(idle_after * 1000, 2),
        "sent": report.sent,
        "queued_outbox_rows": int(queued or 0),
        "snapshot_rows": int(stored or 0),
        "with_radar": int(radar or 0),
        "image_files": files,
        "media_mb": round(size / 1e6, 1),
        "processes": renderer.processes,
    }


async def run(kind: str, n: int, processes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with database(kind, Path(tmp)) as url:
            started = time.perf_counter()
            counts = await load(url, n)
            load_s = time.perf_counter() - started
            print(f"  {kind}: loaded {counts} in {load_s:.1f}s", file=sys.stderr)
            result = await measure(url, Path(tmp) / "media", processes)
    return {
        "db": kind,
        "people": n,
        "load_s": round(load_s, 1),
        "rows": counts,
        "load": load_average(),
        **result,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--processes", type=int, default=0, help="render processes; 0 = one per CPU")
    parser.add_argument("--json", type=Path, default=RESULTS / "snapshots.json")
    args = parser.parse_args()
    results = [await run(kind, args.people, args.processes) for kind in databases(args.db)]
    print(f"\nperfloop snapshot bench — {args.people:,} people, {os.cpu_count()} CPUs")
    print(f"{'database':<12}{'wall':>9}{'queued':>9}{'radar':>8}{'images':>9}{'media':>10}{'procs':>7}  load")
    for r in results:
        print(
            f"{r['db']:<12}{r['wall_s']:>8.1f}s{r['queued_outbox_rows']:>9,}{r['with_radar']:>8,}"
            f"{r['image_files']:>9,}{r['media_mb']:>8.1f}MB{r['processes']:>7}  {r['load']}"
        )
        verdict = "met" if r["wall_s"] < 60 and r["queued_outbox_rows"] == args.people else "NOT met"
        print(
            f"{r['db']}: {args.people:,} snapshots rendered and queued in {r['wall_s']:.1f} s"
            f" (< 60 s: {verdict}); idle tick {r['idle_tick_ms']:.1f} ms,"
            f" tick after the wave {r['tick_after_wave_ms']:.1f} ms"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"people": args.people, "results": results}, indent=2, ensure_ascii=False) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
