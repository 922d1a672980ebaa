"""A burst of 2,000 encrypted WeCom callbacks with ``perfloop run`` SIGKILLed in the middle of it and WeCom
retrying every callback it got no answer for: each message is recorded exactly once and answered exactly once.

What makes it hold: the dispatcher commits the ``inbound_events`` row (unique per platform + MsgId), the
handler's effect and its outbox rows in one transaction. A callback killed before the commit left nothing and
its retry is processed afresh; one killed after the commit but before the answer is a duplicate on retry and
gets the stored answer without running the handler again.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.db import session_factory
from storage.models import InboundEvent, OutboxMessage
from tests.support.kill import (
    WECOM_SECRET,
    PerfloopProcess,
    WatchedWeCom,
    engine_for,
    fill_fake,
    free_port,
    seed_wecom_org,
    user_ids,
    wait_until,
    wecom_config,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SENDERS = 200
PER_SENDER = 10
TOTAL = SENDERS * PER_SENDER
CONCURRENCY = 20
KILL_AFTER = 700


class RetryingWeCom:
    """WeCom's side of the burst: each callback is POSTed until perfloop answers 200 within 5 s; a refused
    connection, a reset, a timeout or a 5xx is retried (WeCom retries three times over a few seconds; here
    until the test's deadline so a restart in between is covered)."""

    def __init__(self, url: str, callbacks: list[tuple[str, dict[str, str]]]) -> None:
        self.url = url
        self.callbacks = callbacks
        self.answered = 0
        self.failed_attempts = 0
        self.attempts: Counter[int] = Counter()

    async def _one(self, http: aiohttp.ClientSession, index: int) -> None:
        body, query = self.callbacks[index]
        while True:
            self.attempts[index] += 1
            try:
                async with http.post(
                    f"{self.url}/callbacks/wecom?{urlencode(query)}",
                    data=body,
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                ) as resp:
                    await resp.read()
                    if resp.status == 200:
                        self.answered += 1
                        return
                    assert resp.status >= 500, f"callback {index} refused with {resp.status}"
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.failed_attempts += 1
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(self.callbacks)):
            queue.put_nowait(i)
        timeout = aiohttp.ClientTimeout(total=5)

        async def worker() -> None:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while not queue.empty():
                    await self._one(http, queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _counts(url: str) -> tuple[int, int, int]:
    engine = engine_for(url)
    try:
        async with session_factory(engine)() as session:
            events = await session.scalar(select(func.count()).select_from(InboundEvent))
            distinct = await session.scalar(select(func.count(func.distinct(InboundEvent.event_id))))
            replies = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.op == "send")
            )
            return int(events or 0), int(distinct or 0), int(replies or 0)
    finally:
        await engine.dispose()


async def test_callback_burst_with_a_kill_records_every_message_once(tmp_path: Path, sqlite_url: str) -> None:
    senders = user_ids(SENDERS)
    fake = WatchedWeCom(secret=WECOM_SECRET)
    fill_fake(fake, senders)
    await fake.start()
    engine = engine_for(sqlite_url)
    try:
        await seed_wecom_org(engine, senders)
    finally:
        await engine.dispose()
    config = write_config(
        tmp_path / "perfloop.toml", wecom_config(tmp_path, sqlite_url, per_second=1000.0, burst=100)
    )
    env = {"PERFLOOP_WECOM__API_BASE": fake.url, "PERFLOOP_WECOM__SECRET": WECOM_SECRET}
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log", env=env)

    # Every callback is encrypted and signed once, as WeCom does, and re-sent byte for byte on retry.
    msg_ids = [str(7_100_000_000_000_000_000 + i) for i in range(TOTAL)]
    callbacks = [
        fake.signed(fake.text_xml(senders[i % SENDERS], "/help", msg_id=msg_ids[i])) for i in range(TOTAL)
    ]
    random.Random(10).shuffle(callbacks)
    client = RetryingWeCom(proc.url, callbacks)
    try:
        proc.start()
        await proc.wait_healthy()
        started = time.monotonic()
        burst = asyncio.create_task(client.run())
        await wait_until(lambda: client.answered >= KILL_AFTER, timeout=60, what="the first answers")
        proc.kill()
        assert proc.proc is not None and proc.proc.returncode == -signal.SIGKILL
        answered_at_kill = client.answered
        assert answered_at_kill < TOTAL, "the kill must land in the middle of the burst"
        await asyncio.sleep(0.5)  # WeCom keeps retrying into a dead port for a while
        proc.start()
        await proc.wait_healthy()
        await asyncio.wait_for(burst, timeout=60)
        burst_seconds = time.monotonic() - started

        # WeCom also retries callbacks whose answer was merely slow: replay a sample that was answered.
        replay = RetryingWeCom(proc.url, random.Random(11).sample(callbacks, 100))
        await replay.run()

        events, distinct, replies = await _counts(sqlite_url)
        assert (events, distinct) == (TOTAL, TOTAL), "every message recorded exactly once"
        assert replies == TOTAL, "every message answered by exactly one reply in the outbox"
        await wait_until(
            lambda: sum(fake.shown_counts().values()) >= TOTAL, timeout=60, what="every reply delivered"
        )
        await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        proc.stop()
        await fake.close()
    assert client.failed_attempts > 0, "some callbacks must have hit the dead process and been retried"
    assert sum(client.attempts.values()) > TOTAL
    counts = fake.shown_counts()
    assert counts == dict.fromkeys(senders, PER_SENDER), "each sender saw exactly one reply per message"
    print(
        f"\nburst of {TOTAL}: {burst_seconds:.1f} s incl. kill+restart; answered before kill "
        f"{answered_at_kill}; failed attempts {client.failed_attempts}; resends hidden {fake.suppressed()}"
    )
