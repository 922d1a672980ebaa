"""Kickoff broadcast through each fake platform, at its rate limit and with none.

    .venv/bin/python bench/broadcast.py [--sizes 10000] [--db sqlite|postgresql|both]
                                        [--platforms wecom,feishu,dingtalk] [--scale feishu=6,…]
                                        [--modes limited,unlimited] [--margin 0]
                                        [--big-db postgresql] [--limited-max 10000] [--quick | --full]

For each database, platform and company size, a child process runs the real server (bench/common.py) and is
asked to start a cycle for everyone — ``kickoff_from_cli``, what a confirmation does inside ``perfloop run``:
the first chunk of participants and kickoff cards committed with the start, the rest written by the
server's kickoff writer a chunk per transaction while the outbox workers already deliver to the protocol
fake of that platform, which runs in this process and counts what it receives. Wall time is from the kickoff
request to the last card arriving at the fake; "1st s" is when the first one arrived; every person must get
exactly one card. Peak RSS is the server's VmHWM; "queue s" is the kickoff request itself (the first chunk).

Two runs per case (``--modes``):
- limited: the fake enforces the platform's documented limits and perfloop's ``rate_limit`` is set to them
  (burst 1, ``margin_seconds`` = ``--margin``); the floor is the least time those limits allow for the API
  calls (``calls / rate``, or longer where a per-minute limit binds) and the ratio wall / floor is the figure
  (target ≤ 1.03); "send" is the same ratio without the kickoff request; "429s" are the fake's rate-limit
  answers (target 0);
- unlimited: no limit anywhere; cards/s.

Limits (PLATFORMS.md): WeCom 10,000 calls/min per API (the kickoff card has a button, so one
``message/send`` per person since issue 16); Feishu 50 calls/s **and** 1,000/min per app (one call per
person; both windows enforced by the fake and kept by the limiter); DingTalk 20 calls/s per app (one
``createAndDeliver`` per person for a card with buttons; the DingTalk client takes the limiter per call). The
real Feishu and DingTalk limits would make 10,000 people take 9 and 8 minutes, so the fake's limits and
perfloop's are multiplied by the same factor (``SCALES``, shown as ×N): the ratio is what is measured, and
it holds as long as the limit, not the machine, sets the pace.

Default: 10,000 people on both databases (sizes above 10,000 only on ``--big-db``, limited runs only up to
``--limited-max``). ``--full``: 10,000 and 100,000 everywhere, limited included (over an hour).
``--quick``: SQLite only. Results go to ``bench/results/broadcast.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS,
    ServerProcess,
    database,
    databases,
    load_average,
    seed_workspace,
)
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom

try:  # Feishu is measured when its adapter and fake are present
    import adapters.feishu.adapter  # noqa: F401
    from tests.fakes.feishu import FakeFeishu
except ImportError:  # pragma: no cover - depends on the checkout
    FakeFeishu = None  # type: ignore[assignment,misc]


class LimitedDingTalk(FakeDingTalk):
    """DingTalk's fake with the per-app QPS limit enforced on card delivery (the fake itself only has
    injected throttling): beyond ``per_second`` calls in any 1-s window the answer is DingTalk's
    ``403 Forbidden.AccessDenied.QpsLimitForApi``."""

    def __init__(self, per_second: int | None) -> None:
        super().__init__()
        self.per_second = per_second
        self.throttled = 0
        self._window: list[float] = []

    async def h_create_and_deliver(self, request: web.Request) -> web.Response:
        if self.per_second is not None:
            now = time.monotonic()
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.per_second:
                self.throttled += 1
                return self.api_error(403, "Forbidden.AccessDenied.QpsLimitForApi", "调用该接口超过限流")
            self._window.append(now)
        return await super().h_create_and_deliver(request)


class Case:
    """One platform's fake, settings section and delivery count for a company of ``size``."""

    name: str
    limit_per_s: float
    """The documented limit in API calls per second."""
    limit_per_min: int | None = None
    """The documented limit in API calls per minute, where there is one besides the per-second one."""
    per_call: int
    """People per API call for the kickoff card."""

    headroom = 1.0
    """perfloop's ``rate_limit`` as a fraction of the platform's (``--headroom``)."""
    burst = 1
    """perfloop's limiter burst in the limited runs (``--burst``)."""
    margin = 0.0
    """perfloop's ``margin_seconds`` in the limited runs (``--margin``); 0, the default."""

    def __init__(self, size: int, scale: float | None) -> None:
        self.size = size
        self.scale = scale
        self.throttled = 0

    @property
    def calls(self) -> int:
        return math.ceil(self.size / self.per_call)

    @property
    def rate(self) -> float | None:
        return None if self.scale is None else self.limit_per_s * self.scale

    @property
    def per_minute(self) -> int | None:
        if self.scale is None or self.limit_per_min is None:
            return None
        return int(self.limit_per_min * self.scale)

    def floor(self) -> float:
        """The least time the platform's limits allow for ``calls``: call k at k / rate at the earliest, and
        no call before the one ``per_minute`` earlier is a minute old. ``calls / rate`` when the minute
        limit never binds."""
        assert self.rate is not None
        interval = 1.0 / self.rate
        per_min = self.per_minute
        at: list[float] = []
        for k in range(self.calls):
            t = k * interval
            if per_min is not None and k >= per_min:
                t = max(t, at[k - per_min] + 60.0)
            at.append(t)
        return at[-1] + interval

    def user(self, i: int) -> str:
        raise NotImplementedError

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def section(self) -> dict[str, Any]:
        raise NotImplementedError

    def delivered(self) -> Counter[str]:
        raise NotImplementedError

    def count(self) -> int:
        """Cards delivered so far, cheaply (polled every 10 ms while the broadcast runs)."""
        raise NotImplementedError

    @property
    def app_id(self) -> str:
        raise NotImplementedError

    def rate_limit(self) -> dict[str, Any]:
        if self.rate is None:
            return {"per_second": 1e9, "burst": 1_000_000}
        out: dict[str, Any] = {
            "per_second": self.rate * self.headroom,
            "burst": self.burst,
            "margin_seconds": self.margin,
        }
        if self.per_minute is not None:
            out["per_minute"] = int(self.per_minute * self.headroom)
        return out


class WeComCase(Case):
    name = "wecom"
    limit_per_s = 10_000 / 60
    limit_per_min = 10_000
    per_call = 1
    """The kickoff card has a button: one ``message/send`` per person, so each card can be updated on its own
    (issue 16, docs/security.md H17)."""

    def __init__(self, size: int, scale: float | None) -> None:
        super().__init__(size, scale)
        self.fake = FakeWeCom(corp_id=f"wwbench{size}")
        if self.per_minute is not None:
            self.fake.rate_limit_per_minute = self.per_minute
        self.fake.add_department(1, "公司")
        for i in range(size):
            self.fake.add_user(self.user(i), f"员工{i}", [1])

    def user(self, i: int) -> str:
        return f"wc{self.size}-{i:06d}"

    @property
    def app_id(self) -> str:
        return self.fake.corp_id

    async def start(self) -> None:
        await self.fake.start()

    async def close(self) -> None:
        self.throttled = sum(1 for _path, code in self.fake.calls if code == 45009)
        await self.fake.close()

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
            "rate_limit": self.rate_limit(),
        }

    def count(self) -> int:
        return sum(len(m.recipients) - len(m.invalid) for m in self.fake.messages if m.shown)

    def delivered(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for m in self.fake.shown:
            bad = set(m.invalid)
            out.update(u for u in m.recipients if u not in bad)
        return out


class FeishuCase(Case):
    name = "feishu"
    limit_per_s = 50
    limit_per_min = 1000
    per_call = 1

    def __init__(self, size: int, scale: float | None) -> None:
        super().__init__(size, scale)
        assert FakeFeishu is not None
        self.fake = FakeFeishu(app_id=f"cli_bench{size}")
        self.fake.per_second_limit = int(self.rate) if self.rate is not None else 10**9
        self.fake.per_minute_limit = int(self.per_minute) if self.per_minute is not None else 10**9

    def user(self, i: int) -> str:
        return f"ou_{self.size}_{i:06d}"

    @property
    def app_id(self) -> str:
        return self.fake.app_id

    async def start(self) -> None:
        await self.fake.start()

    async def close(self) -> None:
        self.throttled = self.fake.throttled
        await self.fake.close()

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
            "rate_limit": self.rate_limit(),
        }

    def count(self) -> int:
        return len(self.fake.messages)

    def delivered(self) -> Counter[str]:
        return Counter(m.receive_id for m in self.fake.messages)


class DingTalkCase(Case):
    name = "dingtalk"
    limit_per_s = 20
    per_call = 1
    """One outbox row holds 20 people (``max_recipients_per_call``), but a card with buttons is one
    ``createAndDeliver`` call per person; the DingTalk client applies ``rate_limit`` per call itself."""

    def __init__(self, size: int, scale: float | None) -> None:
        super().__init__(size, scale)
        self.fake = LimitedDingTalk(int(self.rate) if self.rate is not None else None)
        self.fake.app_key = f"dingbench{size}"

    def user(self, i: int) -> str:
        return f"dt{self.size}-{i:06d}"

    @property
    def app_id(self) -> str:
        return self.fake.app_key

    async def start(self) -> None:
        await self.fake.start()

    async def close(self) -> None:
        self.throttled = self.fake.throttled
        await self.fake.stop()

    def section(self) -> dict[str, Any]:
        from tests.fakes import dingtalk as d

        return {
            "enabled": True,
            "app_key": self.fake.app_key,
            "app_secret": d.APP_SECRET,
            "robot_code": d.ROBOT_CODE,
            "token": d.TOKEN,
            "aes_key": d.AES_KEY,
            "corp_id": d.CORP_ID,
            "api_base": self.fake.url,
            "oapi_base": self.fake.url,
            "mode": "http",
            "card_template_id": "StandardCard",
            "rate_limit": self.rate_limit(),
        }

    def count(self) -> int:
        return len(self.fake.cards)

    def delivered(self) -> Counter[str]:
        return Counter(c["user"] for c in self.fake.cards.values() if c["delivered"])


CASES: dict[str, type[Case]] = {"wecom": WeComCase, "feishu": FeishuCase, "dingtalk": DingTalkCase}


SCALES = {"wecom": 1.0, "feishu": 6.0, "dingtalk": 25.0}
"""Limit multipliers for the limited runs (``--scale`` overrides). WeCom at its real 10,000/min: 10,000 calls
have a floor of 60 s. Feishu ×6: 300/s and 6,000/min, so 10,000 calls take at least 73.3 s (6,000 in the first
20 s, the rest once the first ones are a minute old: both windows are exercised). DingTalk ×25: 500/s, 20 s.
Each raised limit stays under what the unlimited run delivers on a quiet machine, so the limiter, not the
machine, sets the pace; on a busy one it may not (compare the unlimited cards/s)."""


async def run_case(url: str, db: str, tmp: Path, case: Case, code: str, timeout: float) -> dict[str, Any]:
    await case.start()
    settings: dict[str, Any] = {
        "database": {"url": url},
        "sim": {"enabled": False},
        "media": {"dir": str(tmp / "media")},
        "server": {"public_url": "http://127.0.0.1:9"},
        case.name: case.section(),
    }
    server = ServerProcess(
        "serve", settings, log_path=RESULTS / f"broadcast-server-{db}-{case.name}-{case.size}-{code[-1]}.log"
    )
    server.start()
    try:
        load = load_average()
        async with aiohttp.ClientSession() as http:
            t0 = time.perf_counter()
            async with http.post(
                f"{server.base_url}/bench/kickoff",
                json={"code": code, "hr": case.user(0)},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                answer = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"kickoff failed: {answer}")
            queued = time.perf_counter() - t0
            deadline = t0 + timeout
            first: float | None = None
            while time.perf_counter() < deadline:
                n = case.count()
                if n and first is None:
                    first = time.perf_counter() - t0
                if n >= case.size:
                    break
                await asyncio.sleep(0.01)
            wall = time.perf_counter() - t0
        counts = case.delivered()
        rss = server.peak_rss_mb()
        cpu = server.cpu_seconds()
    finally:
        server.stop()
        await case.close()
    once = len(counts) == case.size and set(counts.values()) == {1}
    out: dict[str, Any] = {
        "db": db,
        "platform": case.name,
        "people": case.size,
        "mode": "limited" if case.rate is not None else "unlimited",
        "api_calls": case.calls,
        "load": load,
        "queue_s": round(queued, 2),
        "first_card_s": round(first, 2) if first is not None else None,
        "wall_s": round(wall, 2),
        "cards_per_s": round(len(counts) / wall, 1),
        "delivered": len(counts),
        "exactly_once": once,
        "throttled_answers": case.throttled,
        "server_cpu_s": round(cpu, 1),
        "peak_rss_mb": rss,
    }
    if case.rate is not None:
        floor = case.floor()
        out |= {
            "limit_per_s": case.limit_per_s,
            "limit_per_min": case.limit_per_min,
            "scale": case.scale,
            "rate_per_s": round(case.rate, 1),
            "rate_per_min": case.per_minute,
            "margin_s": case.margin,
            "floor_s": round(floor, 2),
            "ratio": round(wall / floor, 3),
            "send_ratio": round((wall - queued) / floor, 3),
        }
    return out


async def run_db(db: str, tmp: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with database(db, tmp) as url:
        for name in args.platforms:
            cls = CASES[name]
            for size in args.sizes:
                probe = cls(size, None)
                await seed_workspace(
                    url,
                    platform=name,
                    app_id=probe.app_id,
                    user_ids=[probe.user(i) for i in range(size)],
                )
                if size > 10_000 and db not in args.big_db:
                    continue
                modes: list[float | None] = []
                if "limited" in args.modes:
                    modes.append(args.scale[name])
                if "unlimited" in args.modes:
                    modes.append(None)
                for scale in modes:
                    if scale is not None and size > args.limited_max:
                        continue
                    case = cls(size, scale)
                    code = f"B{size}-{'L' if scale else 'U'}"
                    r = await run_case(url, db, tmp, case, code, args.timeout)
                    print_row(r)
                    results.append(r)
    return results


HEADER = (
    f"{'db':<11}{'platform':<9}{'people':>7} {'mode':<10}{'calls':>7} {'limit':<17}{'floor s':>8}"
    f"{'wall s':>8}{'ratio':>7}{'send':>7}{'cards/s':>9}{'queue s':>8}{'1st s':>6}{'RSS MB':>8}{'once':>5}"
    f"{'429s':>6}  load"
)


def print_row(r: dict[str, Any]) -> None:
    limit = "-"
    if r["mode"] == "limited":
        limit = f"{r['rate_per_s']:g}/s"
        if r.get("rate_per_min"):
            limit += f",{r['rate_per_min']}/min"
        if r["scale"] != 1:
            limit += f"(×{r['scale']:g})"
    first = r.get("first_card_s")
    print(
        f"{r['db']:<11}{r['platform']:<9}{r['people']:>7} {r['mode']:<10}{r['api_calls']:>7} {limit:<17}"
        f"{r.get('floor_s', '-'):>8}{r['wall_s']:>8}{r.get('ratio', '-'):>7}{r.get('send_ratio', '-'):>7}"
        f"{r['cards_per_s']:>9}{r['queue_s']:>8}{'-' if first is None else first:>6}"
        f"{r['peak_rss_mb']:>8}{'yes' if r['exactly_once'] else 'NO':>5}"
        f"{r['throttled_answers']:>6}  {r['load']}",
        flush=True,
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000", help="comma-separated company sizes (--full: 10000,100000)")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--platforms", default="wecom,feishu,dingtalk")
    ap.add_argument(
        "--scale",
        default=",".join(f"{k}={v:g}" for k, v in SCALES.items()),
        help="limit multipliers for the limited runs, e.g. feishu=6,dingtalk=25",
    )
    ap.add_argument(
        "--limited-max", type=int, default=10_000, help="skip limited runs above this many people"
    )
    ap.add_argument(
        "--big-db",
        default="postgresql",
        help="databases that also run the sizes above 10,000 (comma-separated)",
    )
    ap.add_argument(
        "--headroom", type=float, default=1.0, help="perfloop's rate limit as a fraction of the platform's"
    )
    ap.add_argument("--burst", type=int, default=1, help="perfloop's rate-limit burst in the limited runs")
    ap.add_argument(
        "--margin",
        type=float,
        default=Case.margin,
        help="perfloop's rate-limit margin_seconds in the limited runs",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="give up on one run after this many s")
    ap.add_argument("--modes", default="limited,unlimited", help="which runs: limited, unlimited or both")
    ap.add_argument("--quick", action="store_true", help="10,000 people, SQLite only")
    ap.add_argument(
        "--full",
        action="store_true",
        help="10,000 and 100,000 people on every database, limited runs at 100,000 too (about an hour)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "broadcast.json")
    args = ap.parse_args()
    if args.full:
        args.sizes = "10000,100000"
    args.sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.db = "sqlite"
    args.scale = SCALES | {k: float(v) for k, v in (kv.split("=") for kv in args.scale.split(",") if kv)}
    args.big_db = args.big_db.split(",")
    args.modes = [m.strip() for m in args.modes.split(",")]
    Case.burst, Case.headroom, Case.margin = args.burst, args.headroom, args.margin
    if args.full:
        args.big_db, args.limited_max = ["sqlite", "postgresql"], max(args.sizes)
    args.platforms = [p for p in args.platforms.split(",") if p != "feishu" or FakeFeishu is not None]
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(HEADER, flush=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for db in databases(args.db):
            results += await run_db(db, Path(tmp), args)
    print(f"(took {time.perf_counter() - started:.0f} s)")
    args.out.write_text(json.dumps({"scales": args.scale, "results": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
