"""Security review S7 (docs/security.md): secrets never reach the logs, the database or ``perfloop doctor``.

End to end: ``perfloop run`` at DEBUG with all three platforms enabled and every secret set through the
environment, driven through its error paths (refused credentials, unreachable APIs, forged and
unknown-sender callbacks, a failing org sync). Its whole output, the outbox's recorded errors and the
doctor's report are then searched for every secret value.

And the latent leak found in the review: some aiohttp errors quote the request URL, and the WeCom and
DingTalk token calls carry the app secret in the query string.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from adapters.base import DeliveryError
from adapters.dingtalk.client import DingTalkClient
from adapters.wecom.client import WeComClient
from bot.app.logs import JsonFormatter
from bot.core.config import DingTalkConfig
from bot.core.context import Outbox
from cards.catalogue import Translator
from cards.notice import notice_card
from storage.db import session_factory
from storage.models import OutboxMessage, Workspace
from tests.fakes.wecom import FakeWeCom
from tests.support.kill import ROOT, PerfloopProcess, engine_for, free_port, wait_until, write_config

pytestmark = pytest.mark.timeout(120)

CORP_ID = "wwsecrettest0001"
SECRETS = {
    "PERFLOOP_WECOM__SECRET": "WeComSecretValue-7Hq2PzX9",
    "PERFLOOP_WECOM__TOKEN": "WeComTokenValue4k8",
    "PERFLOOP_WECOM__ENCODING_AES_KEY": "Qw3rTy8uIo9pAs7dFg6hJk5lZx4cVb3nM2qW1eR0tY9",
    "PERFLOOP_DINGTALK__APP_SECRET": "DingSecretValue-Lm4Nb6Vc",
    "PERFLOOP_DINGTALK__TOKEN": "DingTokenValue3z7",
    "PERFLOOP_DINGTALK__AES_KEY": "Zx9cV8bN7mL6kJ5hG4fD3sA2qW1eR0tY9uI8oP7aS6d",
    "PERFLOOP_FEISHU__APP_SECRET": "FeishuSecretValue-Rt5Yu7",
    "PERFLOOP_FEISHU__VERIFICATION_TOKEN": "FeishuVerifyValue8p2",
    "PERFLOOP_FEISHU__ENCRYPT_KEY": "FeishuEncryptValue1x6",
}
DEAD = "http://127.0.0.1:9"


def _config(tmp: Path, db_url: str) -> dict[str, dict[str, Any]]:
    return {
        "server": {"host": "127.0.0.1", "port": 8080, "log_level": "DEBUG"},
        "database": {"url": db_url},
        "media": {"dir": str(tmp / "media")},
        "wecom": {"enabled": True, "corp_id": CORP_ID, "agent_id": 1000002},
        "dingtalk": {
            "enabled": True,
            "mode": "http",
            "app_key": "dingsecrettestkey",
            "robot_code": "dingsecrettestkey",
            "corp_id": "dingcorpsecret",
            "api_base": DEAD,
            "oapi_base": DEAD,
        },
        "feishu": {"enabled": True, "app_id": "cli_secrettest", "api_base": DEAD},
        "outbox": {"poll_seconds": 0.2, "backoff_base_seconds": 0.2, "backoff_max_seconds": 0.5},
    }


async def _queue_one_card_per_platform(db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            for platform, app_id in (
                ("wecom", CORP_ID),
                ("dingtalk", "dingsecrettestkey"),
                ("feishu", "cli_secrettest"),
            ):
                ws = Workspace(platform=platform, app_id=app_id, name=app_id)
                session.add(ws)
                await session.flush()
                Outbox(session=session, workspace=ws, now=datetime.now(UTC)).send_to_platform_id(
                    "someone", notice_card(Translator("en"), "Hello", "A card that cannot be delivered")
                )
    finally:
        await engine.dispose()


async def _errors_recorded(db_url: str) -> list[str]:
    engine = engine_for(db_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(OutboxMessage.last_error))
            return [e for e in rows if e]
    finally:
        await engine.dispose()


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.mark.slow
async def test_secrets_never_logged_by_a_running_service(tmp_path: Path, sqlite_url: str) -> None:
    # The "real" WeCom knows another secret: every token fetch is refused (errcode 40001).
    fake = FakeWeCom(
        corp_id=CORP_ID,
        secret="the-right-secret-is-elsewhere",
        token=SECRETS["PERFLOOP_WECOM__TOKEN"],
        encoding_aes_key=SECRETS["PERFLOOP_WECOM__ENCODING_AES_KEY"],
    )
    await fake.start()
    await _queue_one_card_per_platform(sqlite_url)
    config = write_config(tmp_path / "perfloop.toml", _config(tmp_path, sqlite_url))
    env = {**SECRETS, "PERFLOOP_WECOM__API_BASE": fake.url}
    proc = PerfloopProcess(config=config, port=free_port(), log_path=tmp_path / "perfloop.log", env=env)
    try:
        proc.start()
        await proc.wait_healthy()
        # A message from someone not in the org (a reply is queued and fails), and forged callbacks.
        status, _ = await fake.deliver(proc.url, fake.text_xml("stranger", "/help"))
        assert status == 200
        body, query = fake.signed(fake.text_xml("stranger", "hi"))
        status, _ = await fake.post(proc.url, body, {**query, "msg_signature": "0" * 40})
        assert status == 403
        async with aiohttp.ClientSession() as http:
            for path in ("/callbacks/dingtalk", "/callbacks/feishu"):
                async with http.post(proc.url + path, data=b'{"encrypt":"AAAA"}') as resp:
                    assert resp.status in (400, 401)
        # The org sync (5 s after start) fails on every platform; the outbox has tried every card.
        await wait_until(
            lambda: "org sync failed" in proc.log_text() and proc.log_text().count("org sync failed") >= 3,
            timeout=30,
            what="the org sync to fail on every platform",
        )

        async def all_tried() -> bool:
            return len(await _errors_recorded(sqlite_url)) >= 4

        await wait_until(all_tried, timeout=30, what="every queued card to fail at least once")
    finally:
        proc.stop()
        await fake.close()
    log = proc.log_text()
    assert "callback rejected" in log and "outbox message dead" in log, "the error paths did not run"
    assert '"level": "debug"' in log, "DEBUG logging was not on"
    assert not _leaks(log), f"secrets in the log: {_leaks(log)}"
    errors = "\n".join(await _errors_recorded(sqlite_url))
    assert "invalid credential" in errors
    assert not _leaks(errors), f"secrets in outbox.last_error: {_leaks(errors)}"

    doctor = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "--config", str(config), "doctor"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert doctor.returncode == 1 and "wecom" in doctor.stdout.lower()
    assert not _leaks(doctor.stdout + doctor.stderr), f"secrets in doctor: {_leaks(doctor.stdout)}"


# ------------------------------------------------------------------ the latent leak in transport errors
@pytest.fixture
def blackhole() -> Iterator[str]:
    """A loopback port whose accept queue is full: connecting hangs until the client's connect timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for c in fillers:
            c.close()
        server.close()


def _everything_said(exc: BaseException) -> str:
    """What a log line with ``exc_info`` would print: the message and the whole chain of causes."""
    return "".join(traceback.format_exception(exc))


async def test_token_calls_timing_out_do_not_quote_the_secret(blackhole: str) -> None:
    secret = SECRETS["PERFLOOP_WECOM__SECRET"]
    # A connect timeout is what makes aiohttp quote the full URL (``Connection timeout to host …?…``).
    connect_timeout = aiohttp.ClientTimeout(total=5, sock_connect=0.3)
    wecom = WeComClient(api_base=blackhole, corp_id=CORP_ID, secret=secret)
    wecom._http.timeout = connect_timeout
    cfg = DingTalkConfig(
        app_key="k", app_secret=SECRETS["PERFLOOP_DINGTALK__APP_SECRET"], oapi_base=blackhole
    )
    dingtalk = DingTalkClient(cfg)
    dingtalk._http.timeout = connect_timeout
    try:
        for call in (wecom.token(), dingtalk.oapi_token()):
            with pytest.raises(DeliveryError) as caught:
                await asyncio.wait_for(call, timeout=10)
            said = _everything_said(caught.value)
            assert "timeout" in said.lower()
            assert not _leaks(said), said
    finally:
        await wecom.close()
        await dingtalk.close()


def test_json_logger_masks_secret_fields() -> None:
    import logging

    record = logging.makeLogRecord(
        {"msg": "calling", "levelno": 20, "levelname": "INFO", "app_secret": "s3cr3t", "encrypt_key": "k3y"}
    )
    line = JsonFormatter().format(record)
    assert "s3cr3t" not in line and "k3y" not in line and '"app_secret": "***"' in line
