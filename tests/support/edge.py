"""The edge under test for the fuzz and security tests: the real aiohttp app with WeCom, DingTalk (HTTP mode)
and Feishu (webhook) all enabled with known credentials, on a real SQLite database, plus ways to sign a
request exactly as each platform does and to count every row in the database.

The platforms' API hosts point at a closed loopback port and the outbox does not run: nothing here should
ever need to call out, and a test that did would fail loudly instead of reaching the internet.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, literal, select, union_all

from adapters.registry import AdapterRegistry
from bot.app.http import create_app
from bot.app.service import Service, build_service
from bot.core.clock import Clock
from bot.core.config import Settings
from storage.models import Base
from tests.fakes.dingtalk import AES_KEY, APP_KEY, APP_SECRET, CORP_ID, ROBOT_CODE, TOKEN
from tests.fakes.platform_crypto import (
    DingTalkSealer,
    WeComSealer,
    dingtalk_robot_sign,
    feishu_encrypt,
    feishu_signature,
)
from tests.fakes.wecom import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN

DEAD_BASE = "http://127.0.0.1:9"
WECOM_SECRET = "edge-wecom-secret-7d1f3c"
FEISHU_APP_ID = "cli_edge"
FEISHU_SECRET = "edge-feishu-secret-9a8b"
FEISHU_TOKEN = "edge-feishu-vtoken-55aa"
FEISHU_KEY = "edge-feishu-encrypt-key-1234"
SECRETS = {
    "wecom.secret": WECOM_SECRET,
    "wecom.encoding_aes_key": SAMPLE_AES_KEY,
    "dingtalk.app_secret": APP_SECRET,
    "dingtalk.aes_key": AES_KEY,
    "feishu.app_secret": FEISHU_SECRET,
    "feishu.verification_token": FEISHU_TOKEN,
    "feishu.encrypt_key": FEISHU_KEY,
}
"""Every secret the edge settings carry (the WeCom token is the public sample "123456")."""


def edge_settings(db_url: str, tmp: Path, **server: Any) -> Settings:
    return Settings(
        database={"url": db_url},
        media={"dir": tmp / "media", "max_image_bytes": 64 * 1024},
        server={"public_url": "https://perfloop.example.com", **server},
        sim={"enabled": False},
        wecom={
            "enabled": True,
            "corp_id": SAMPLE_CORP_ID,
            "agent_id": 1000002,
            "secret": WECOM_SECRET,
            "token": SAMPLE_TOKEN,
            "encoding_aes_key": SAMPLE_AES_KEY,
            "api_base": DEAD_BASE,
        },
        dingtalk={
            "enabled": True,
            "mode": "http",
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "robot_code": ROBOT_CODE,
            "token": TOKEN,
            "aes_key": AES_KEY,
            "corp_id": CORP_ID,
            "api_base": DEAD_BASE,
            "oapi_base": DEAD_BASE,
        },
        feishu={
            "enabled": True,
            "app_id": FEISHU_APP_ID,
            "app_secret": FEISHU_SECRET,
            "verification_token": FEISHU_TOKEN,
            "encrypt_key": FEISHU_KEY,
            "api_base": DEAD_BASE,
        },
    )


@dataclass
class Edge:
    service: Service
    client: TestClient[Any, Any]

    async def rows(self) -> dict[str, int]:
        return await table_counts(self.service)


@asynccontextmanager
async def running_edge(
    settings: Settings, *, clock: Clock | None = None, registry: AdapterRegistry | None = None
) -> AsyncIterator[Edge]:
    service = build_service(settings, clock=clock, registry=registry)
    service.run_outbox = False
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(service)))
    await client.start_server()
    try:
        yield Edge(service, client)
    finally:
        await client.close()


async def table_counts(service: Service) -> dict[str, int]:
    """Rows per table, in one query (the fuzz tests take this before and after every example)."""
    tables = Base.metadata.sorted_tables
    query = union_all(
        *(select(literal(t.name).label("t"), func.count().label("n")).select_from(t) for t in tables)
    )
    async with service.factory() as session:
        return {name: int(n) for name, n in (await session.execute(query)).all()}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}


class _Crashes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@contextmanager
def no_crash_logged() -> Iterator[None]:
    """Fail if anything under ``perfloop`` logs an exception: the dispatcher and the HTTP middleware turn
    crashes into polite answers, so a status code alone cannot tell a crash from a refusal."""
    crashes = _Crashes()
    root = logging.getLogger("perfloop")
    root.addHandler(crashes)
    try:
        yield
    finally:
        root.removeHandler(crashes)
    assert not crashes.records, (
        f"crash logged: {crashes.records[0].getMessage()}: {crashes.records[0].exc_info}"
    )


# ------------------------------------------------------------------------------------------ signing
WECOM = WeComSealer(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
DINGTALK_EVENTS = DingTalkSealer(TOKEN, AES_KEY, APP_KEY)
"""The platforms' own crypto (the SDKs), never the adapters' (issue 16 #18)."""


def wecom_signed(plaintext: str, *, timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    body, sig, nonce = WECOM.envelope(plaintext, timestamp=ts, agent_id=1000002)
    return body, {"msg_signature": sig, "timestamp": ts, "nonce": nonce}


_last_robot_ms = 0


def dingtalk_robot_headers(*, timestamp_ms: int | None = None) -> dict[str, str]:
    """Signed now; never the same millisecond twice (DingTalk signs each delivery, and a pair seen with
    another message is refused: issue 16 #5)."""
    global _last_robot_ms
    if timestamp_ms is None:
        timestamp_ms = _last_robot_ms = max(int(time.time() * 1000), _last_robot_ms + 1)
    ts = str(timestamp_ms)
    return {"timestamp": ts, "sign": dingtalk_robot_sign(ts, APP_SECRET), "Content-Type": "application/json"}


def dingtalk_event(data: dict[str, Any], *, timestamp_ms: int | None = None) -> tuple[bytes, dict[str, str]]:
    """An event-subscription callback: encrypted body, signature in the query (as DingTalk sends it)."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sealed = DINGTALK_EVENTS.encrypt(json.dumps(data), ts)
    query = {"msg_signature": sealed["msg_signature"], "timestamp": str(ts), "nonce": sealed["nonce"]}
    return json.dumps({"encrypt": sealed["encrypt"]}).encode(), query


def dingtalk_event_raw(plaintext: str, *, timestamp_ms: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Like ``dingtalk_event`` for any plaintext, JSON or not."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sealed = DINGTALK_EVENTS.encrypt(plaintext, ts)
    query = {"msg_signature": sealed["msg_signature"], "timestamp": str(ts), "nonce": sealed["nonce"]}
    return json.dumps({"encrypt": sealed["encrypt"]}).encode(), query


def feishu_sealed(payload: dict[str, Any] | str) -> tuple[bytes, dict[str, str]]:
    plain = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    body = json.dumps({"encrypt": feishu_encrypt(FEISHU_KEY, plain)}).encode()
    return body, feishu_signed_headers(body)


def feishu_signed_headers(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Feishu sends with ``body`` when an encrypt key is set (whatever the body is)."""
    ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(8)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": feishu_signature(ts, nonce, FEISHU_KEY, body),
    }
