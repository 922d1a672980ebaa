"""Shared set-up for flows driven end to end through WeCom: the fake WeCom, and the perfloop app with the real
WeCom adapter pointed at it, on loopback (as ``dingtalk_harness`` for DingTalk)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.test_utils import TestServer

from adapters.registry import AdapterRegistry
from adapters.wecom.adapter import WeComAdapter
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import Settings, WeComConfig
from tests.fakes.wecom import FakeWeCom

ORG_USERS = ("leader", "hr", "hrbp", "mgr", "smgr", "emp1", "emp2", "seller")
"""The people of ``tests.support.factories.seed_org``, as WeCom knows them."""


def wecom_settings(settings: Settings, fake: FakeWeCom) -> Settings:
    """The test ``settings`` with a WeCom section pointed at the fake."""
    section = WeComConfig(
        enabled=True,
        api_base=fake.url,
        corp_id=fake.corp_id,
        agent_id=fake.agent_id,
        secret=fake.secret,
        token=fake.token,
        encoding_aes_key=fake.encoding_aes_key,
    )
    return settings.model_copy(update={"wecom": section})


@dataclass
class WeComEnv:
    fake: FakeWeCom
    service: Service
    url: str
    """The app's base URL: the fake delivers callbacks to ``{url}/callbacks/wecom``."""


@asynccontextmanager
async def running_wecom(
    settings: Settings, clock: FixedClock, *, users: Sequence[str] = ORG_USERS
) -> AsyncIterator[WeComEnv]:
    """The fake (on the test clock) and the app, with the outbox drained by the test, not a worker."""
    fake = FakeWeCom(now=lambda: clock.now().timestamp())
    for uid in users:
        fake.add_user(uid, uid, [1])
    await fake.start()
    configured = wecom_settings(settings, fake)
    service = build_service(configured, clock=clock, registry=AdapterRegistry.from_settings(configured))
    service.run_outbox = False
    adapter = service.registry.get("wecom")
    assert isinstance(adapter, WeComAdapter)
    adapter.client.rate_limit_pause = 0.01
    server = TestServer(create_app(service), host="127.0.0.1")
    await server.start_server()
    try:
        yield WeComEnv(fake, service, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()
        await service.close()
        await fake.close()
