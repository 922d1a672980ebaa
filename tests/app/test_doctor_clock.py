"""``perfloop doctor`` compares the host clock with each platform's (issue 16 #7).

Signed callbacks are refused outside the replay window and the clock tolerance, so a drifting host clock
would silently refuse every callback; the doctor reads the ``Date`` header of an answer from each platform's
API host, here the protocol fakes, whose clocks are set off by ``date_offset``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app.doctor import clock_check, run_checks
from bot.core.config import Settings
from tests.fakes.dingtalk import FakeDingTalk, dingtalk_settings, free_port
from tests.fakes.feishu import FakeFeishu, feishu_settings
from tests.fakes.wecom import FakeWeCom

pytestmark = pytest.mark.timeout(60)


@dataclass
class Fakes:
    wecom: FakeWeCom
    dingtalk: FakeDingTalk
    feishu: FakeFeishu
    settings: Settings


@pytest.fixture
async def fakes(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Fakes]:
    wecom, dingtalk, feishu = FakeWeCom(), FakeDingTalk(), FakeFeishu()
    await wecom.start()
    dingtalk_url = await dingtalk.start()
    await feishu.start()
    base = Settings(database={"url": sqlite_url}, media={"dir": tmp_path / "media"}, sim={"enabled": False})
    settings = dingtalk_settings(base, dingtalk_url, mode="http", bot_port=free_port())
    settings = feishu_settings(settings, feishu)
    settings = settings.model_copy(
        update={
            "wecom": type(settings.wecom).model_validate(
                {
                    "enabled": True,
                    "api_base": wecom.url,
                    "corp_id": wecom.corp_id,
                    "agent_id": wecom.agent_id,
                    "secret": wecom.secret,
                    "token": wecom.token,
                    "encoding_aes_key": wecom.encoding_aes_key,
                }
            )
        }
    )
    try:
        yield Fakes(wecom, dingtalk, feishu, settings)
    finally:
        await wecom.close()
        await dingtalk.stop()
        await feishu.close()


async def test_clocks_in_step_are_ok(fakes: Fakes) -> None:
    for platform in ("wecom", "dingtalk", "feishu"):
        check = await clock_check(fakes.settings, platform)
        assert check.ok and not check.warn, check.line()


async def test_a_host_clock_past_the_tolerance_fails_and_a_drifting_one_warns(fakes: Fakes) -> None:
    fakes.feishu.date_offset = 600  # Feishu 10 min ahead: our clock is slow, its events look early
    fakes.wecom.date_offset = -400  # our clock 400 s fast: WeCom's callbacks look older than its 300 s window
    fakes.dingtalk.date_offset = -120  # inside DingTalk's hour, but drifting
    checks = {c.name: c for c in await run_checks(fakes.settings)}
    feishu, wecom, dingtalk = checks["feishu clock"], checks["wecom clock"], checks["dingtalk clock"]
    assert not feishu.ok and "clock_tolerance_seconds = 300" in feishu.detail, feishu.line()
    assert "behind" in feishu.detail
    assert not wecom.ok and "replay_window_seconds = 300" in wecom.detail, wecom.line()
    assert "ahead of" in wecom.detail
    assert dingtalk.ok and dingtalk.warn and dingtalk.line().startswith("[WARN] dingtalk clock"), (
        dingtalk.line()
    )
    assert checks["feishu credentials"].ok  # the clock check is beside the credentials, not instead


async def test_an_unreachable_api_host_is_a_warning_not_a_crash(fakes: Fakes) -> None:
    dead = fakes.settings.model_copy(
        update={"feishu": fakes.settings.feishu.model_copy(update={"api_base": "http://127.0.0.1:9"})}
    )
    check = await clock_check(dead, "feishu", timeout=2)
    assert check.ok and check.warn and "could not compare clocks" in check.detail
