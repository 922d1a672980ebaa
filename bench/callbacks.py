"""Callback throughput: signed, encrypted card clicks against the real server, compared with bare aiohttp.

    /work/venv/bin/python bench/callbacks.py [--clicks 2000] [--concurrency 32] [--rate 300]
                                             [--rate-seconds 5] [--db sqlite|postgresql|both] [--quick]

The server under test is a child process running what ``perfloop run`` runs (see bench/common.py) with WeCom
and Feishu enabled (Feishu only if its adapter imports) and pointed at the protocol fakes. The clicks are
real: every person of a seeded org is a participant of an active cycle, and each click is that person's
"收到" (``kickoff.ack``) on the kickoff card — signature and timestamp checked, body decrypted, the event
recorded for dedupe, the participant stamped with a compare-and-set, an audit row written, the new card
rendered (Feishu: in the answer; WeCom: an outbox update delivered afterwards through
``update_template_card`` to the fake, which runs in this process). Every click is by a different person, so
none is a duplicate or a refusal.

Phases per platform and database, all from this (second) process over loopback:
1. closed loop: ``--clicks`` clicks on ``--concurrency`` keep-alive connections → req/s, p50/p99;
2. fixed rate: ``--rate`` req/s for ``--rate-seconds`` s, open loop, latency counted from each request's
   slot (a server falling behind shows in p99).
Then the same two phases against a bare aiohttp handler that reads the body and answers 200, in its own
process, with the same request bodies. Prints a table and writes bench/results/callbacks.json.

Targets (issue 10): perfloop ≥ 50 % of bare aiohttp req/s; p99 < 100 ms at 300 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS,
    LoadResult,
    ServerProcess,
    closed_loop,
    database,
    databases,
    fixed_rate,
    http_request,
    load_average,
    seed_workspace,
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


async def acknowledged(url: str, cycle_id: int) -> int:
    from sqlalchemy import func, select

    from storage.db import create_engine
    from storage.models import CycleParticipant

    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            return int(
                await c.scalar(
                    select(func.count()).where(
                        CycleParticipant.cycle_id == cycle_id, CycleParticipant.acknowledged_at.is_not(None)
                    )
                )
                or 0
            )
    finally:
        await engine.dispose()


async def run_db(db: str, tmp: Path, plats: list[Platform], args: argparse.Namespace) -> list[dict[str, Any]]:
    warmup = 200
    rate_n = int(args.rate * args.rate_seconds)
    per_platform = warmup + args.clicks + rate_n
    results: list[dict[str, Any]] = []
    async with database(db, tmp) as url:
        cycles: dict[str, int] = {}
        for p in plats:
            users = [p.user(i) for i in range(per_platform)]
            seeded = await seed_workspace(
                url, platform=p.name, app_id=p.app_id, user_ids=users, active_cycle=CYCLE
            )
            cycles[p.name] = seeded["cycle_id"]
        settings: dict[str, Any] = {
            "database": {"url": url},
            "sim": {"enabled": False},
            "media": {"dir": str(tmp / "media")},
            **{p.name: p.section() for p in plats},
        }
        server = ServerProcess("serve", settings, log_path=RESULTS / f"callbacks-server-{db}.log")
        port = server.start()
        try:
            for p in plats:
                cycle_id = cycles[p.name]
                clicks = [p.click(port, p.user(i), cycle_id) for i in range(per_platform)]
                await closed_loop(port, clicks[:warmup], min(args.concurrency, 8))
                load = load_average()
                cpu0 = server.cpu_seconds()
                closed = await closed_loop(port, clicks[warmup : warmup + args.clicks], args.concurrency)
                cpu1 = server.cpu_seconds()
                paced = await fixed_rate(port, clicks[warmup + args.clicks :], args.rate)
                await asyncio.sleep(1.0)  # let the outbox finish the card updates before counting
                acked = await acknowledged(url, cycle_id)
                results.append(
                    {
                        "db": db,
                        "target": f"perfloop {p.name}",
                        "load": load,
                        "closed": closed.summary(),
                        "server_cpu_per_req_ms": round((cpu1 - cpu0) / closed.requests * 1000, 3),
                        "fixed_rate": paced.summary(),
                        "clicks_recorded": acked,
                        "clicks_sent": per_platform,
                        "peak_rss_mb": server.peak_rss_mb(),
                    }
                )
        finally:
            server.stop()
    return results


async def run_bare(plats: list[Platform], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The yardstick, driven exactly like the real server and with the same bodies (WeCom's first)."""
    server = ServerProcess("bare")
    port = server.start()
    results = []
    try:
        p = plats[0]
        n = 200 + args.clicks + int(args.rate * args.rate_seconds)
        clicks = [p.click(port, p.user(i), 1) for i in range(n)]
        await closed_loop(port, clicks[:200], 8)
        load = load_average()
        cpu0 = server.cpu_seconds()
        closed: LoadResult = await closed_loop(port, clicks[200 : 200 + args.clicks], args.concurrency)
        cpu1 = server.cpu_seconds()
        paced = await fixed_rate(port, clicks[200 + args.clicks :], args.rate)
        results.append(
            {
                "db": "-",
                "target": f"bare aiohttp ({p.name} bodies)",
                "load": load,
                "closed": closed.summary(),
                "server_cpu_per_req_ms": round((cpu1 - cpu0) / closed.requests * 1000, 3),
                "fixed_rate": paced.summary(),
                "peak_rss_mb": server.peak_rss_mb(),
            }
        )
    finally:
        server.stop()
    return results


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    bare = next(r for r in results if r["db"] == "-")["closed"]["req_per_s"]
    print(
        f"\ncard-click callbacks, concurrency {args.concurrency}; fixed rate {args.rate:g} req/s for "
        f"{args.rate_seconds:g} s (latency from the request's slot)"
    )
    print(
        f"{'target':<34}{'db':<11}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'vs bare':>8}"
        f"{'cpu ms/req':>11}{'@rate p50':>10}{'@rate p99':>10}{'RSS MB':>8}  load"
    )
    for r in results:
        c, f = r["closed"], r["fixed_rate"]
        ratio = f"{c['req_per_s'] / bare:.0%}" if r["db"] != "-" else "100%"
        print(
            f"{r['target']:<34}{r['db']:<11}{c['req_per_s']:>8}{c['p50_ms']:>8}{c['p99_ms']:>8}{ratio:>8}"
            f"{r['server_cpu_per_req_ms']:>11}{f['p50_ms']:>10}{f['p99_ms']:>10}{r['peak_rss_mb']:>8}"
            f"  {r['load']}"
        )
    for r in results:
        bad = {k: v for k, v in r["closed"]["statuses"].items() if k != "200"}
        bad_rate = {k: v for k, v in r["fixed_rate"]["statuses"].items() if k != "200"}
        if bad or bad_rate:
            print(f"  ! {r['target']} {r['db']}: non-200 answers {bad} / {bad_rate}")
        if "clicks_recorded" in r and r["clicks_recorded"] != r["clicks_sent"]:
            recorded, sent = r["clicks_recorded"], r["clicks_sent"]
            print(f"  ! {r['target']} {r['db']}: {recorded} of {sent} clicks recorded")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--rate-seconds", type=float, default=5.0)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--platforms", default="wecom,feishu")
    ap.add_argument("--quick", action="store_true", help="1,000 clicks and 3 s at the fixed rate")
    ap.add_argument("--out", type=Path, default=RESULTS / "callbacks.json")
    args = ap.parse_args()
    if args.quick:
        args.clicks, args.rate_seconds = 1000, 3.0
    RESULTS.mkdir(parents=True, exist_ok=True)
    plats = platforms(args.platforms.split(","))
    started = time.perf_counter()
    for p in plats:
        await p.start()
    results: list[dict[str, Any]] = []
    try:
        results += await run_bare(plats, args)
        with tempfile.TemporaryDirectory() as tmp:
            for db in databases(args.db):
                results += await run_db(db, Path(tmp), plats, args)
    finally:
        for p in plats:
            await p.close()
    print_table(results, args)
    print(f"(took {time.perf_counter() - started:.0f} s)")
    args.out.write_text(
        json.dumps(
            {
                "clicks": args.clicks,
                "concurrency": args.concurrency,
                "rate": args.rate,
                "rate_seconds": args.rate_seconds,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
