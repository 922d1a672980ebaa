"""Issue 22: a burst of card clicks through group commit, ``perfloop run`` SIGKILLed in the middle of it, and
WeCom retrying every click it got no answer for: each click is recorded exactly once and applied exactly once.

Every person of an active cycle taps "知道了" on their kickoff card, and one in ten taps it a second time on a
second copy of the card (a different event): exactly one of a person's taps acknowledges, the other is refused
("already done"). The clicks arrive 32 at a time, so the server commits them in groups (the test checks that
it did, from ``/metrics``), and the kill lands while groups are in flight: a group killed before its commit
left nothing and its clicks, retried, are processed afresh; one killed after the commit but before the answers
went out is answered from the stored answers on retry, without running a handler again. Afterwards WeCom also
re-delivers a sample of clicks that were answered (its retry of a slow answer).
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select

from cards.actions import pack
from cards.flow_actions import KickoffAck
from storage.db import session_factory
from storage.models import AuditLog, CycleParticipant, InboundEvent, OutboxMessage
from tests.fakes.wecom import SentMessage
from tests.support.kill import (
    WECOM_SECRET,
    PerfloopProcess,
    WatchedWeCom,
    engine_for,
    fill_fake,
    free_port,
    seed_active_cycle,
    seed_wecom_org,
    user_ids,
    wait_until,
    wecom_config,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PEOPLE = 300
TWICE = PEOPLE // 10
CONCURRENCY = 32
KILL_AFTER = 120

Callback = tuple[str, dict[str, str]]


def kickoff_card(task_id: str) -> SentMessage:
    """A kickoff card as the fake would hold it: clicks carry its task id, an update must keep it."""
    return SentMessage(
        body={"template_card": {"card_type": "button_interaction", "task_id": task_id}},
        recipients=[],
        invalid=[],
        msgid=f"msg-{task_id}",
        response_code=None,
    )


class RetryingWeCom:
    """WeCom's side: each callback is POSTed until perfloop answers 200 (a refused connection, a reset, a
    timeout or a 5xx is retried, here until the test's deadline so that the restart is covered)."""

    def __init__(self, url: str, callbacks: list[Callback]) -> None:
        self.url = url
        self.callbacks = callbacks
        self.answered = 0
        self.failed_attempts = 0

    async def _one(self, http: aiohttp.ClientSession, index: int) -> None:
        body, query = self.callbacks[index]
        while True:
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
                    assert resp.status >= 500, f"click {index} refused with {resp.status}"
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.failed_attempts += 1
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(self.callbacks)):
            queue.put_nowait(i)

        async def worker() -> None:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                while not queue.empty():
                    await self._one(http, queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def group_counts(url: str) -> tuple[float, float]:
    """(groups, clicks in them) from ``/metrics``."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()

    def value(name: str) -> float:
        found = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    return value("perfloop_click_groups_total"), value("perfloop_click_group_items_total")


async def test_click_burst_with_a_kill_applies_every_click_once(tmp_path: Path, db_url: str) -> None:
    people = user_ids(PEOPLE)
    fake = WatchedWeCom(secret=WECOM_SECRET)
    fill_fake(fake, people)
    await fake.start()
    engine = engine_for(db_url)
    try:
        await seed_wecom_org(engine, people)
        cycle_id = await seed_active_cycle(engine)
    finally:
        await engine.dispose()
    config = write_config(
        tmp_path / "perfloop.toml", wecom_config(tmp_path, db_url, per_second=1000.0, burst=100)
    )
    env = {"PERFLOOP_WECOM__API_BASE": fake.url, "PERFLOOP_WECOM__SECRET": WECOM_SECRET}
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log", env=env)

    # Every click is encrypted and signed once, as WeCom does, and re-sent byte for byte on retry.
    ack = pack(KickoffAck(cycle_id=cycle_id))
    first, second = kickoff_card("pl-kickoff-1"), kickoff_card("pl-kickoff-2")
    callbacks = [fake.signed(fake.click_xml(uid, first, ack)[0]) for uid in people]
    callbacks += [fake.signed(fake.click_xml(uid, second, ack)[0]) for uid in people[:TWICE]]
    random.Random(22).shuffle(callbacks)
    client = RetryingWeCom(proc.url, callbacks)
    try:
        proc.start()
        await proc.wait_healthy()
        burst = asyncio.create_task(client.run())
        await wait_until(lambda: client.answered >= KILL_AFTER, timeout=60, what="the first answers")
        groups, grouped = await group_counts(proc.url)
        proc.kill()
        assert proc.proc is not None and proc.proc.returncode == -signal.SIGKILL
        answered_at_kill = client.answered
        assert answered_at_kill < len(callbacks), "the kill must land in the middle of the burst"
        assert grouped > groups > 0, "clicks must have been committed in groups of more than one"
        await asyncio.sleep(0.5)  # WeCom keeps retrying into a dead port for a while
        proc.start()
        await proc.wait_healthy()
        await asyncio.wait_for(burst, timeout=90)

        # WeCom also retries callbacks whose answer was merely slow: replay a sample that was answered.
        await RetryingWeCom(proc.url, random.Random(23).sample(callbacks, 60)).run()
        await wait_until(
            lambda: len({u.response_code for u in fake.updates}) >= PEOPLE,
            timeout=60,
            what="every acknowledged card updated",
        )

        factory = session_factory(engine := engine_for(db_url))
        try:
            async with factory() as session:
                events = list(await session.scalars(select(InboundEvent)))
                acked = await session.scalar(
                    select(func.count()).where(
                        CycleParticipant.cycle_id == cycle_id, CycleParticipant.acknowledged_at.is_not(None)
                    )
                )
                audits = Counter(
                    await session.scalars(
                        select(AuditLog.actor_id).where(
                            AuditLog.action == "cycle.acknowledged", AuditLog.entity_id == cycle_id
                        )
                    )
                )
                updates = await session.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.op == "update")
                )
        finally:
            await engine.dispose()
    finally:
        proc.stop()
        await fake.close()

    assert client.failed_attempts > 0, "some clicks must have hit the dead process and been retried"
    assert len(events) == len({e.event_id for e in events}) == len(callbacks), "every click recorded once"
    assert acked == PEOPLE, "every person acknowledged"
    assert len(audits) == PEOPLE and set(audits.values()) == {1}, "each acknowledgement applied exactly once"
    assert updates == PEOPLE, "one card update per applied click, none for a refused one"
    refused = [e for e in events if e.answer.get("toast_kind") == "error"]
    assert len(refused) == TWICE, "each second tap refused (already done), exactly once"
    print(
        f"\n{len(callbacks)} clicks; answered before the kill {answered_at_kill}; "
        f"{groups:.0f} groups of {grouped / groups:.1f} on average by then; "
        f"failed attempts {client.failed_attempts}"
    )
