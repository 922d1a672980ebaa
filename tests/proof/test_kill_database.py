"""Issue 16 #1: PostgreSQL backends terminated in the middle of traffic lose no message and answer none twice.

WeCom callbacks (encrypted and signed by the protocol fake, over real HTTP) arrive a few at a time while a
second connection runs ``pg_terminate_backend`` on every other backend of the test's own database every
100 ms: idle pooled connections die (pre-ping finds them), connections die in the middle
of a request's transaction (the dispatcher retries once, then answers 503), and WeCom's side retries any
callback not answered 200, as WeCom does. Afterwards every message has exactly one ``inbound_events`` row and
exactly one reply in the outbox, and every delivery of it again is answered from the stored answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from storage.models import InboundEvent, OutboxMessage
from tests.adapters.test_wecom_adapter import wecom_settings
from tests.fakes.wecom import FakeWeCom
from tests.support.factories import seed_org

pytestmark = [pytest.mark.timeout(180)]

MESSAGES = 120
CONCURRENCY = 8
KILL_EVERY = 0.1
TERMINATE = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
async def wecom(
    db_url: str, tmp_path: Path, clock: FixedClock
) -> AsyncIterator[tuple[FakeWeCom, Service, str]]:
    fake = FakeWeCom(now=lambda: clock.now().timestamp())
    await fake.start()
    settings = wecom_settings(db_url, tmp_path, fake)
    service = build_service(settings, clock=clock, registry=AdapterRegistry.from_settings(settings))
    service.run_outbox = False  # the replies stay in the outbox table, where they are counted
    async with service.factory() as session, session.begin():
        await seed_org(session, platform="wecom", app_id=fake.corp_id)
    server = TestServer(create_app(service), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, service, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await service.close()
        await fake.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_terminated_backends_lose_nothing_and_answer_once(
    wecom: tuple[FakeWeCom, Service, str], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="perfloop.dispatcher")
    fake, service, url = wecom
    senders = ["leader", "hr", "hrbp", "mgr", "emp1", "emp2", "smgr", "seller"]
    messages = [(f"{7_100_000_000_000_000_000 + n}", senders[n % len(senders)]) for n in range(MESSAGES)]
    statuses: Counter[int] = Counter()
    killed = 0
    traffic_done = asyncio.Event()

    async def kill() -> None:
        nonlocal killed
        engine = create_async_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            while not traffic_done.is_set():
                async with engine.connect() as conn:
                    killed += int(await conn.scalar(text(TERMINATE)) or 0)
                await asyncio.sleep(KILL_EVERY)
        finally:
            await engine.dispose()

    async def deliver(msg_id: str, user: str) -> None:
        body, query = fake.signed(fake.text_xml(user, "/help", msg_id=msg_id))
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:  # WeCom retries a callback not answered 200
            status, _body = await fake.post(url, body, query)
            statuses[status] += 1
            if status == 200:
                return
            assert status == 503, status  # a fault is never anything but "deliver again"
            await asyncio.sleep(0.05)
        raise AssertionError(f"message {msg_id} never answered 200")

    gate = asyncio.Semaphore(CONCURRENCY)

    async def paced(msg_id: str, user: str) -> None:
        async with gate:
            await deliver(msg_id, user)

    async def recorded() -> None:
        async with service.factory() as s:
            inbound = Counter(
                (await s.scalars(select(InboundEvent.event_id).where(InboundEvent.platform == "wecom"))).all()
            )
            replies = (await s.execute(select(OutboxMessage.recipients))).scalars().all()
            total = await s.scalar(select(func.count()).select_from(OutboxMessage))
        assert set(inbound) == {f"msg:{m}" for m, _ in messages}  # nothing lost
        assert set(inbound.values()) == {1}  # each message recorded exactly once
        assert total == MESSAGES  # exactly one reply per message: nothing lost, nothing twice
        assert Counter(r[0] for r in replies) == Counter(u for _, u in messages)

    killer = asyncio.create_task(kill())
    try:
        await asyncio.gather(*(paced(m, u) for m, u in messages))
    finally:
        traffic_done.set()
        await killer
    retried = sum("trying the event once more" in r.getMessage() for r in caplog.records)
    print(f"killed={killed} statuses={dict(statuses)} in-request retries={retried}")
    await recorded()
    assert killed > 0 and retried > 0  # the faults really did land in the middle of requests
    assert not any(r.getMessage() == "handler failed" for r in caplog.records)  # no fault became a bug
    # Every message delivered once more (a platform's duplicate): answered from the stored answer.
    await asyncio.gather(*(paced(m, u) for m, u in messages))
    await recorded()
