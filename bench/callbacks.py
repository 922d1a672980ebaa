"""Callback throughput: signed, encrypted card clicks against the real server, against two yardsticks.

    .venv/bin/python bench/callbacks.py [--clicks 2000] [--rounds 4] [--concurrency 32] [--rate 300]
                                        [--rate-seconds 5] [--db sqlite|postgresql|both] [--quick]
                                        [--before /tmp/before]

The server under test is a child process running what ``perfloop run`` runs (see bench/common.py) with WeCom
and Feishu enabled (Feishu only if its adapter imports) and pointed at the protocol fakes. The clicks are
real: every person of a seeded org is a participant of an active cycle, and each click is that person's
"收到" (``kickoff.ack``) on the kickoff card — signature and timestamp checked, body decrypted, the event
recorded for dedupe, the participant stamped with a compare-and-set, an audit row written, the new card
rendered (Feishu: in the answer; WeCom: an outbox update delivered afterwards through
``update_template_card`` to the fake, which runs in this process). Every click is by a different person, so
none is a duplicate or a refusal.

The yardsticks (issue 22): the *minimal durable receiver* (``bench/common.py durable``: the same adapters
verify, decrypt and parse, then one idempotent insert and a commit per request, on the same database) —
what any receiver that must not lose a click costs; and, unless ``--no-bare``, bare aiohttp (reads the
body, answers 200). With ``--before PATH`` the server of another checkout (the unchanged code: ``git worktree
add /tmp/before HEAD``) is measured too, on its own fresh database migrated and seeded by its own code.

The machine this runs on is shared, and its load moves by the minute, so the targets of one database run
side by side: all their servers are up at once, and the closed loop goes in ``--rounds`` rounds, each
round giving every target ``--clicks / --rounds`` clicks in turn (the order rotating from round to round).
"vs durable" is the median over rounds of each round's ratio; req/s is the median round; latencies are
pooled over the rounds. Then each target gets the fixed rate in turn.

Phases per platform and database, all from this (second) process over loopback:
1. closed loop: ``--concurrency`` keep-alive connections, each sending its next click as soon as the last
   was answered → req/s, p50/p99, the server's CPU per request, and (perfloop) the mean click group;
2. fixed rate: ``--rate`` req/s for ``--rate-seconds`` s, open loop, latency counted from each request's
   slot (a server falling behind shows in p99).
Afterwards each database is checked: every click recorded exactly once (one inbound event, one
acknowledgement, one audit row per click). Prints a table and writes bench/results/callbacks.json.

Targets (issue 22): closed loop ≥ 1,000 clicks/s on PostgreSQL and ≥ 500/s on SQLite, ≥ 60 % of the
durable receiver; p99 ≤ 100 ms at 300 clicks/s; every click recorded exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS,
    ROOT,
    ServerProcess,
    closed_loop,
    database,
    databases,
    fixed_rate,
    http_request,
    load_average,
    percentile,
    seed_workspace_with,
)
from cards.actions import pack
from cards.flow_actions import KickoffAck
from tests.fakes.wecom import FakeWeCom, SentMessage

try:  # Feishu is measured when its adapter and fake are present
    import adapters.feishu.adapter  # noqa: F401
    from tests.fakes.feishu import FakeFeishu
except ImportError:  # pragma: no cover - depends on the checkout
    FakeFeishu = None  # type: ignore[assignment,misc]

CYCLE = "2026-Q1"
TASK_ID = "pl-bench-kickoff"


class Platform:
    """One platform's side of the bench: its fake, its settings section, and its pre-signed clicks."""

    name: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def user(self, i: int) -> str:
        raise NotImplementedError

    @property
    def app_id(self) -> str:
        raise NotImplementedError

    def section(self) -> dict[str, Any]:
        raise NotImplementedError

    def click(self, port: int, user: str, cycle_id: int) -> bytes:
        raise NotImplementedError


class WeCom(Platform):
    name = "wecom"

    def __init__(self) -> None:
        self.fake = FakeWeCom()
        # The kickoff card every person holds: clicks carry its task id, updates must keep it.
        self.card = SentMessage(
            body={"template_card": {"card_type": "button_interaction", "task_id": TASK_ID}},
            recipients=[],
            invalid=[],
            msgid="msg-bench-kickoff",
            response_code=None,
        )

    async def start(self) -> None:
        await self.fake.start()

    async def close(self) -> None:
        await self.fake.close()

    def user(self, i: int) -> str:
        return f"wc{i:06d}"

    @property
    def app_id(self) -> str:
        return self.fake.corp_id

    def section(self) -> dict[str, Any]:
        f = self.fake
        return {
            "enabled": True,
            "corp_id": f.corp_id,
            "agent_id": f.agent_id,
            "secret": f.secret,
            "token": f.token,
            "encoding_aes_key": f.encoding_aes_key,
            "api_base": f.url,
        }

    def click(self, port: int, user: str, cycle_id: int) -> bytes:
        self.card.recipients.append(user)
        xml, _code = self.fake.click_xml(user, self.card, pack(KickoffAck(cycle_id=cycle_id)))
        body, query = self.fake.signed(xml)
        return http_request(
            port,
            f"/callbacks/wecom?{urlencode(query)}",
            body.encode(),
            {"Content-Type": "text/xml; charset=utf-8"},
        )


class Feishu(Platform):
    name = "feishu"

    def __init__(self) -> None:
        assert FakeFeishu is not None
        self.fake = FakeFeishu()

    async def start(self) -> None:
        await self.fake.start()

    async def close(self) -> None:
        await self.fake.close()

    def user(self, i: int) -> str:
        return f"ou_{i:06d}"

    @property
    def app_id(self) -> str:
        return self.fake.app_id

    def section(self) -> dict[str, Any]:
        f = self.fake
        return {
            "enabled": True,
            "app_id": f.app_id,
            "app_secret": f.app_secret,
            "verification_token": f.verification_token,
            "encrypt_key": f.encrypt_key,
            "api_base": f.url,
            "mode": "webhook",
        }

    def click(self, port: int, user: str, cycle_id: int) -> bytes:
        payload = self.fake.card_click(user, pack(KickoffAck(cycle_id=cycle_id)), message_id="om_bench")
        body, headers = self.fake.seal(payload)
        return http_request(port, "/callbacks/feishu", body, headers)


def platforms(requested: list[str]) -> list[Platform]:
    out: list[Platform] = []
    for name in requested:
        if name == "wecom":
            out.append(WeCom())
        elif name == "feishu":
            if FakeFeishu is None:
                print("Feishu adapter not importable: skipped", file=sys.stderr)
            else:
                out.append(Feishu())
    return out


async def recorded(url: str, platform: str, cycle_id: int | None) -> dict[str, int]:
    """What the database holds after a run: the platform's inbound events, and (perfloop) acknowledged
    participants and acknowledgement audit rows: each must equal the clicks sent (recorded exactly once)."""
    from sqlalchemy import func, select

    from storage.db import create_engine
    from storage.models import AuditLog, CycleParticipant, InboundEvent

    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            events = select(func.count()).where(InboundEvent.platform == platform)
            out = {"events": int(await c.scalar(events) or 0)}
            if cycle_id is not None:
                out["acknowledged"] = int(
                    await c.scalar(
                        select(func.count()).where(
                            CycleParticipant.cycle_id == cycle_id,
                            CycleParticipant.acknowledged_at.is_not(None),
                        )
                    )
                    or 0
                )
                out["audit_rows"] = int(
                    await c.scalar(
                        select(func.count()).where(
                            AuditLog.action == "cycle.acknowledged", AuditLog.entity_id == cycle_id
                        )
                    )
                    or 0
                )
            return out
    finally:
        await engine.dispose()


@dataclass
class Target:
    """One server under test on one database: perfloop (this checkout or ``--before``) or the durable
    receiver."""

    label: str
    server: ServerProcess
    url: str
    cycles: dict[str, int]
    """Platform → the active cycle whose participants click (perfloop); empty for the durable receiver."""
    offset: int = 0
    """The durable receiver's users are other people than perfloop's: every request is a new event."""
    used: dict[str, int] = field(default_factory=dict)
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    groups: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def clicks(self, p: Platform, n: int) -> list[bytes]:
        start = self.used.get(p.name, 0)
        self.used[p.name] = start + n
        cycle = self.cycles.get(p.name, 1)
        return [p.click(self.port, p.user(self.offset + i), cycle) for i in range(start, start + n)]


async def click_groups(port: int) -> tuple[float, float]:
    """(transactions, clicks in them) from the server's ``/metrics``; zeros where there is no group commit."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        text = (await reader.read()).decode("utf-8", "replace")
    finally:
        writer.close()
    found = dict(re.findall(r"^(perfloop_click_group(?:s|_items)_total) (\S+)$", text, re.M))
    return float(found.get("perfloop_click_groups_total", 0)), float(
        found.get("perfloop_click_group_items_total", 0)
    )


async def closed_round(t: Target, p: Platform, n: int, concurrency: int) -> None:
    clicks = t.clicks(p, n)
    perfloop = t.server.mode == "serve"
    g0 = await click_groups(t.port) if perfloop else (0.0, 0.0)
    cpu0 = t.server.cpu_seconds()
    result = await closed_loop(t.port, clicks, concurrency)
    cpu = t.server.cpu_seconds() - cpu0
    g1 = await click_groups(t.port) if perfloop else (0.0, 0.0)
    t.rounds.setdefault(p.name, []).append(
        {"req_per_s": result.rps, "cpu_s": cpu, "requests": result.requests}
    )
    t.latencies.setdefault(p.name, []).extend(result.latencies)
    t.statuses.setdefault(p.name, Counter()).update(result.statuses)
    t.cpu_seconds[p.name] = t.cpu_seconds.get(p.name, 0.0) + cpu
    t.groups.setdefault(p.name, []).append((g1[0] - g0[0], g1[1] - g0[1]))


def settings_for(url: str, tmp: Path, plats: list[Platform]) -> dict[str, Any]:
    return {
        "database": {"url": url},
        "sim": {"enabled": False},
        "media": {"dir": str(tmp / "media")},
        **{p.name: p.section() for p in plats},
    }


async def run_db(
    db: str, tmp: Path, plats: list[Platform], args: argparse.Namespace, stack: contextlib.AsyncExitStack
) -> list[dict[str, Any]]:
    warmup, rate_n = 200, int(args.rate * args.rate_seconds)
    per_round = max(1, args.clicks // args.rounds)
    per_platform = warmup + per_round * args.rounds + rate_n
    roots = [("after", ROOT)] + ([("before", args.before.resolve())] if args.before is not None else [])
    targets: list[Target] = []
    url = await stack.enter_async_context(database(db, tmp))
    server = ServerProcess(
        "durable", settings_for(url, tmp, plats), log_path=RESULTS / f"callbacks-durable-{db}.log"
    )
    server.start()
    stack.callback(server.stop)
    targets.append(Target("durable", server, url, {}, offset=900_000))
    for label, root in roots:
        url = await stack.enter_async_context(database(db, tmp, root=root))
        cycles = {}
        for p in plats:
            users = [p.user(i) for i in range(per_platform)]
            seeded = await seed_workspace_with(
                root, url, platform=p.name, app_id=p.app_id, user_ids=users, active_cycle=CYCLE
            )
            cycles[p.name] = seeded["cycle_id"]
        server = ServerProcess(
            "serve",
            settings_for(url, tmp, plats),
            log_path=RESULTS / f"callbacks-{label}-{db}.log",
            root=root,
        )
        server.start()
        stack.callback(server.stop)
        targets.append(Target(label, server, url, cycles))
    results: list[dict[str, Any]] = []
    for p in plats:
        load_start = load_average()
        for t in targets:
            await closed_loop(t.port, t.clicks(p, warmup), min(args.concurrency, 8))
        for r in range(args.rounds):
            for t in targets[r % len(targets) :] + targets[: r % len(targets)]:
                await closed_round(t, p, per_round, args.concurrency)
        paced: dict[str, dict[str, Any]] = {}
        for t in targets:
            g0 = await click_groups(t.port) if t.server.mode == "serve" else (0.0, 0.0)
            paced[t.label] = (await fixed_rate(t.port, t.clicks(p, rate_n), args.rate)).summary()
            g1 = await click_groups(t.port) if t.server.mode == "serve" else (0.0, 0.0)
            paced[t.label]["mean_group"] = (
                round((g1[1] - g0[1]) / (g1[0] - g0[0]), 1) if g1[0] > g0[0] else None
            )
        await asyncio.sleep(1.0)  # let the outbox finish the card updates before counting
        load_end = load_average()
        durable = targets[0].rounds[p.name]
        for t in targets:
            rounds = t.rounds[p.name]
            groups = t.groups[p.name]
            got = await recorded(t.url, p.name, t.cycles.get(p.name))
            row: dict[str, Any] = {
                "db": db,
                "platform": p.name,
                "kind": t.label,
                "target": f"durable receiver {p.name}"
                if t.label == "durable"
                else f"perfloop {t.label} {p.name}",
                "load": f"{load_start} → {load_end}",
                "closed": {
                    "requests": sum(x["requests"] for x in rounds),
                    "req_per_s": round(statistics.median(x["req_per_s"] for x in rounds), 1),
                    "rounds_req_per_s": [round(x["req_per_s"], 1) for x in rounds],
                    "p50_ms": round(percentile(t.latencies[p.name], 50) * 1000, 2),
                    "p99_ms": round(percentile(t.latencies[p.name], 99) * 1000, 2),
                    "statuses": {str(k): v for k, v in sorted(t.statuses[p.name].items())},
                },
                "server_cpu_per_req_ms": round(
                    t.cpu_seconds[p.name] / sum(x["requests"] for x in rounds) * 1000, 3
                ),
                "vs_durable": round(
                    statistics.median(
                        x["req_per_s"] / d["req_per_s"] for x, d in zip(rounds, durable, strict=True)
                    ),
                    3,
                ),
                "mean_group": round(sum(g[1] for g in groups) / sum(g[0] for g in groups), 1)
                if sum(g[0] for g in groups)
                else None,
                "fixed_rate": paced[t.label],
                "clicks_sent": t.used[p.name],
                "events_recorded": got["events"],
                "peak_rss_mb": t.server.peak_rss_mb(),
            }
            if t.label != "durable":
                row["clicks_recorded"] = got["acknowledged"]
                row["audit_rows"] = got["audit_rows"]
            results.append(row)
    return results


async def run_bare(plats: list[Platform], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Bare aiohttp, driven exactly like the real server and with the same bodies (WeCom's first)."""
    server = ServerProcess("bare")
    server.start()
    try:
        t = Target("bare", server, "", {})
        p = plats[0]
        await closed_loop(t.port, t.clicks(p, 200), 8)
        load = load_average()
        for _ in range(args.rounds):
            await closed_round(t, p, max(1, args.clicks // args.rounds), args.concurrency)
        paced = (
            await fixed_rate(t.port, t.clicks(p, int(args.rate * args.rate_seconds)), args.rate)
        ).summary()
        rounds = t.rounds[p.name]
        return [
            {
                "db": "-",
                "platform": p.name,
                "kind": "bare",
                "target": f"bare aiohttp ({p.name} bodies)",
                "load": load,
                "closed": {
                    "req_per_s": round(statistics.median(x["req_per_s"] for x in rounds), 1),
                    "p50_ms": round(percentile(t.latencies[p.name], 50) * 1000, 2),
                    "p99_ms": round(percentile(t.latencies[p.name], 99) * 1000, 2),
                    "statuses": {str(k): v for k, v in sorted(t.statuses[p.name].items())},
                },
                "server_cpu_per_req_ms": round(
                    t.cpu_seconds[p.name] / sum(x["requests"] for x in rounds) * 1000, 3
                ),
                "vs_durable": None,
                "mean_group": None,
                "fixed_rate": paced,
                "peak_rss_mb": server.peak_rss_mb(),
            }
        ]
    finally:
        server.stop()


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\ncard-click callbacks, concurrency {args.concurrency}, {args.rounds} rounds of "
        f"{args.clicks // args.rounds} clicks per target; fixed rate {args.rate:g} req/s for "
        f"{args.rate_seconds:g} s "
        "(latency from the request's slot); 'vs durable' = median over rounds of req/s ÷ the minimal durable "
        "receiver's in the same round (same database and platform)"
    )
    print(
        f"{'target':<34}{'db':<11}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'vs durable':>11}"
        f"{'cpu ms/req':>11}{'@rate p50':>10}{'@rate p99':>10}{'group':>7}{'RSS MB':>8}  load"
    )
    for r in results:
        c, f = r["closed"], r["fixed_rate"]
        ratio = f"{r['vs_durable']:.0%}" if r["kind"] not in ("bare", "durable") else "-"
        group = r.get("mean_group") or "-"
        print(
            f"{r['target']:<34}{r['db']:<11}{c['req_per_s']:>8}{c['p50_ms']:>8}{c['p99_ms']:>8}{ratio:>11}"
            f"{r['server_cpu_per_req_ms']:>11}{f['p50_ms']:>10}{f['p99_ms']:>10}{group:>7}"
            f"{r['peak_rss_mb']:>8}  {r['load']}"
        )
    for r in results:
        bad = {k: v for k, v in r["closed"]["statuses"].items() if k != "200"}
        bad_rate = {k: v for k, v in r["fixed_rate"]["statuses"].items() if k != "200"}
        if bad or bad_rate:
            print(f"  ! {r['target']} {r['db']}: non-200 answers {bad} / {bad_rate}")
        sent = r.get("clicks_sent")
        for key in ("clicks_recorded", "audit_rows", "events_recorded"):
            if key in r and r[key] != sent:
                print(f"  ! {r['target']} {r['db']}: {key} {r[key]} of {sent} clicks")
    print(
        "targets (issue 22): closed loop ≥ 1,000/s PostgreSQL, ≥ 500/s SQLite; p99 ≤ 100 ms at 300/s; "
        "≥ 60 % of the durable receiver; every click recorded exactly once"
    )
    for r in results:
        if r["kind"] in ("bare", "durable"):
            continue
        floor = 1000 if r["db"] == "postgresql" else 500
        once = all(
            r.get(k) == r.get("clicks_sent") for k in ("clicks_recorded", "audit_rows", "events_recorded")
        )
        checks = {
            f"≥{floor}/s": r["closed"]["req_per_s"] >= floor,
            "p99@rate≤100": r["fixed_rate"]["p99_ms"] <= 100,
            "≥60% durable": (r.get("vs_durable") or 0) >= 0.6,
            "once": once,
        }
        r["targets"] = checks
        print(
            f"  {r['target']:<32}{r['db']:<11}"
            + "  ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items())
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=int, default=2000, help="closed-loop clicks per target, over all rounds")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--rate-seconds", type=float, default=5.0)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--platforms", default="wecom,feishu")
    ap.add_argument("--quick", action="store_true", help="1,200 clicks in 3 rounds, 3 s at the fixed rate")
    ap.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/before <rev>`) measured in the same rounds, on "
        "its own fresh database",
    )
    ap.add_argument("--no-bare", action="store_true", help="skip the bare aiohttp yardstick")
    ap.add_argument("--out", type=Path, default=RESULTS / "callbacks.json")
    args = ap.parse_args()
    if args.quick:
        args.clicks, args.rounds, args.rate_seconds = 1200, 3, 3.0
    RESULTS.mkdir(parents=True, exist_ok=True)
    plats = platforms(args.platforms.split(","))
    started = time.perf_counter()
    loads = [load_average()]
    for p in plats:
        await p.start()
    results: list[dict[str, Any]] = []
    try:
        if not args.no_bare:
            results += await run_bare(plats, args)
        with tempfile.TemporaryDirectory() as tmp:
            for db in databases(args.db):
                async with contextlib.AsyncExitStack() as stack:
                    results += await run_db(db, Path(tmp), plats, args, stack)
    finally:
        for p in plats:
            await p.close()
    loads.append(load_average())
    print_table(results, args)
    print(
        f"(took {time.perf_counter() - started:.0f} s; load average at start {loads[0]}, at end {loads[1]})"
    )
    args.out.write_text(
        json.dumps(
            {
                "clicks": args.clicks,
                "rounds": args.rounds,
                "concurrency": args.concurrency,
                "rate": args.rate,
                "rate_seconds": args.rate_seconds,
                "loadavg": loads,
                "before": str(args.before) if args.before else None,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
