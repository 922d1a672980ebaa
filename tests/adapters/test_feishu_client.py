"""The Feishu outbound path against the fake: sends, idempotency, token refresh, rate limits, media, org."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from PIL import Image as PILImage
from sqlalchemy import select

from adapters.base import PermanentError, RateLimited, TransientError
from adapters.feishu.adapter import FeishuAdapter
from adapters.feishu.client import FeishuApiError
from adapters.ratelimit import limiter_for
from adapters.registry import AdapterRegistry
from bot.app.orgsync import apply_org
from bot.app.service import Service, build_service
from bot.core.clock import FixedClock
from bot.core.config import RateLimit, Settings
from bot.core.events import TextMessage
from cards.model import Card, Header, Image, Markdown
from storage.media import MediaStore
from storage.models import OutboxMessage, Person, Workspace
from tests.fakes.feishu import FakeFeishu, err, feishu_settings
from tests.support.factories import seed_org


def card(title: str = "你好") -> Card:
    return Card(header=Header(title=title), elements=[Markdown(text="正文")])


def png(colour: tuple[int, int, int] = (0, 128, 0), size: int = 8) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeishu]:
    f = FakeFeishu()
    await f.start()
    yield f
    await f.close()


@pytest.fixture
async def adapter(fake: FakeFeishu, tmp_path: object) -> AsyncIterator[FeishuAdapter]:
    a = FeishuAdapter(
        app_id=fake.app_id,
        app_secret=fake.app_secret,
        verification_token=fake.verification_token,
        encrypt_key=fake.encrypt_key,
        api_base=fake.url,
    )
    yield a
    await a.close()


async def test_send_is_idempotent_per_uuid_and_token_is_cached(
    adapter: FeishuAdapter, fake: FakeFeishu
) -> None:
    first = await adapter.send("ou_1", card(), idempotency_key="perfloop-outbox-1")
    again = await adapter.send("ou_1", card(), idempotency_key="perfloop-outbox-1")  # a crash-and-resend
    other = await adapter.send("ou_1", card(), idempotency_key="perfloop-outbox-2")
    assert first.message_refs == again.message_refs == {"ou_1": fake.messages[0].message_id}
    assert other.message_refs["ou_1"] != first.message_refs["ou_1"]
    assert len(fake.messages) == 2
    assert fake.messages[0].card["schema"] == "2.0"
    long_key = "perfloop-outbox-" + "9" * 60
    a = await adapter.send("ou_2", card(), idempotency_key=long_key)
    b = await adapter.send("ou_2", card(), idempotency_key=long_key)
    assert a.message_refs == b.message_refs and len(fake.messages) == 3
    assert fake.token_requests == 1


async def test_token_refreshed_once_on_invalid_token(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    await adapter.send("ou_1", card(), idempotency_key="k1")
    fake.revoke_tokens()
    result = await adapter.send("ou_1", card(), idempotency_key="k2")
    assert result.message_refs["ou_1"] == fake.messages[-1].message_id
    assert fake.token_requests == 2
    assert adapter.client.token_fetches == 2
    # The rejected call was repeated exactly once with the new token.
    assert [p for p in fake.requests if p == ("POST", "/open-apis/im/v1/messages")] == [
        ("POST", "/open-apis/im/v1/messages")
    ] * 3


async def test_check_credentials(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    assert "OK" in await adapter.check_credentials()
    wrong = FeishuAdapter(app_id=fake.app_id, app_secret="wrong", verification_token="v", api_base=fake.url)
    with pytest.raises(FeishuApiError) as exc:
        await wrong.check_credentials()
    assert exc.value.code == 10014 and not exc.value.retryable
    await wrong.close()
    down = FeishuAdapter(
        app_id=fake.app_id, app_secret="x", verification_token="v", api_base="http://127.0.0.1:9"
    )
    with pytest.raises(TransientError):
        await down.check_credentials()
    await down.close()


async def test_error_mapping(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    fake.scripted = [
        err(99991400, "request trigger frequency limit", status=429, headers={"x-ogw-ratelimit-reset": "52"}),
        err(99991400, "request trigger frequency limit", status=400, headers={"x-ogw-ratelimit-reset": "3"}),
        web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html"),
        err(230001, "invalid message content"),
        err(230013, "Bot has NO availability to this user."),
    ]
    with pytest.raises(RateLimited) as rl:
        await adapter.send("ou_1", card(), idempotency_key="e1")
    assert rl.value.retry_after == 52
    with pytest.raises(RateLimited) as old_style:
        await adapter.send("ou_1", card(), idempotency_key="e2")
    assert old_style.value.retry_after == 3
    with pytest.raises(TransientError):
        await adapter.send("ou_1", card(), idempotency_key="e3")
    with pytest.raises(PermanentError):
        await adapter.send("ou_1", card(), idempotency_key="e4")
    invalid = await adapter.send("ou_1", card(), idempotency_key="e5")
    assert invalid.invalid_recipients == ["ou_1"] and not invalid.message_refs
    assert fake.messages == []


async def test_update_patches_the_message(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    ref = (await adapter.send("ou_1", card(), idempotency_key="u1")).message_refs["ou_1"]
    await adapter.update(ref, card("已处理"), recipient="ou_1")
    [(patched, body)] = fake.patches
    assert patched == ref and body["header"]["title"]["content"] == "已处理"
    with pytest.raises(FeishuApiError) as exc:
        await adapter.update("om_missing", card(), recipient="ou_1")
    assert exc.value.code == 230011


async def test_media_upload_and_capped_download(
    adapter: FeishuAdapter, fake: FakeFeishu, tmp_path: object
) -> None:
    key = await adapter.upload_media(png(), filename="trend.png", mime="image/png")
    assert key.startswith("img_") and fake.images[key] == png()
    big = png((1, 2, 3), size=64) + b"\0" * 5000
    fake.resources[("om_p", "img_p")] = big
    assert await adapter.download_media("om_p:img_p", max_bytes=len(big)) == big
    with pytest.raises(PermanentError, match="too large"):
        await adapter.download_media("om_p:img_p", max_bytes=len(big) - 1)
    with pytest.raises(FeishuApiError):
        await adapter.download_media("om_p:img_nope", max_bytes=10_000)
    with pytest.raises(PermanentError):
        await adapter.download_media("garbage", max_bytes=10_000)


async def test_card_images_from_the_media_store_are_uploaded_once(fake: FakeFeishu, tmp_path: object) -> None:
    from pathlib import Path

    store = MediaStore(Path(str(tmp_path)) / "media", max_bytes=1_000_000)
    stored = await store.store_image(png((9, 9, 9)))
    a = FeishuAdapter(
        app_id=fake.app_id, app_secret=fake.app_secret, verification_token="v", api_base=fake.url, media=store
    )
    chart = Card(header=Header(title="日报"), elements=[Image(media_id=stored.info.sha256, alt="趋势")])
    await a.send("ou_1", chart, idempotency_key="img-1")
    await a.send("ou_2", chart, idempotency_key="img-2")
    await a.close()
    assert len(fake.images) == 1
    [key] = fake.images
    assert [m.card["body"]["elements"][0]["img_key"] for m in fake.messages] == [key, key]


@pytest.fixture
async def fs_service(settings: Settings, clock: FixedClock, fake: FakeFeishu) -> AsyncIterator[Service]:
    s = feishu_settings(settings, fake)
    registry = AdapterRegistry()
    registry.add(FeishuAdapter.from_settings(s))
    svc = build_service(s, clock=clock, registry=registry)
    svc.run_outbox = False
    yield svc
    await svc.close()


async def test_rate_limit_backs_off_through_the_outbox(
    fs_service: Service, fake: FakeFeishu, clock: FixedClock
) -> None:
    async with fs_service.factory() as session, session.begin():
        await seed_org(session, platform="feishu", app_id=fake.app_id)
    await fs_service.dispatcher.dispatch(
        TextMessage(
            platform="feishu", workspace=fake.app_id, event_id="ev-rl", sender_id="emp1", text="/help"
        )
    )
    fake.scripted = [
        err(
            99991400,
            "request trigger frequency limit",
            status=429,
            headers={"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": "1"},
        )
    ]
    await fs_service.outbox.drain()
    async with fs_service.factory() as s:
        [row] = list(await s.scalars(select(OutboxMessage)))
    assert row.status == "pending" and "rate limited" in (row.last_error or "")
    assert row.next_attempt_at == clock.now() + timedelta(seconds=1)
    assert fake.messages == []
    await fs_service.outbox.drain()  # not due yet: nothing is sent
    assert fake.messages == []
    clock.advance(timedelta(seconds=1))
    await fs_service.outbox.drain()
    assert [m.receive_id for m in fake.messages] == ["emp1"]
    # Every sender paused for the reset (no pause at all without the 429). The pause is counted from the
    # 429, so a busy machine that took a while to get here waits a little less than the full second.
    assert fs_service.outbox.buckets["feishu"].waited_seconds >= 0.5
    async with fs_service.factory() as s:
        [row] = list(await s.scalars(select(OutboxMessage)))
    assert row.status == "sent" and row.attempts == 2


async def test_org_sync_with_leaders_and_pagination(fs_service: Service, fake: FakeFeishu) -> None:
    fake.add_department("od-rnd", "研发部", leader="ou_boss")
    fake.add_department("od-fe", "前端组", parent="od-rnd", leader="ou_lead")
    fake.add_user("ou_ceo", "CEO", "0")
    fake.add_user("ou_boss", "王经理", "od-rnd", leader="ou_ceo")
    fake.add_user("ou_lead", "李组长", "od-fe", leader="ou_boss")
    for i in range(60):
        fake.add_user(f"ou_e{i:02d}", f"员工{i}", "od-fe", leader="ou_lead")
    fake.add_user("ou_left", "离职", "od-fe", leader="ou_lead", is_resigned=True)
    adapter = fs_service.registry.get("feishu")
    org = await adapter.list_org()
    assert {d.id: (d.parent_id, d.leader_ids) for d in org.departments} == {
        "od-rnd": (None, ["ou_boss"]),
        "od-fe": ("od-rnd", ["ou_lead"]),
    }
    members = {m.user_id: m for m in org.members}
    assert len(members) == 64
    assert members["ou_e59"].manager_id == "ou_lead" and members["ou_e59"].department_ids == ["od-fe"]
    assert members["ou_ceo"].department_ids == [] and members["ou_ceo"].manager_id is None
    assert members["ou_left"].active is False
    pages = [p for p in fake.requests if p[1] == "/open-apis/contact/v3/users/find_by_department"]
    assert len(pages) == 1 + 1 + 2  # root, 研发部, 前端组 in two pages of 50

    async with fs_service.factory() as session, session.begin():
        ws = Workspace(platform="feishu", app_id=fake.app_id, name="feishu")
        session.add(ws)
        await session.flush()
        await apply_org(session, ws, org, default_timezone="Asia/Shanghai", default_locale="zh-CN")
    async with fs_service.factory() as s:
        people = {p.platform_user_id: p for p in await s.scalars(select(Person))}
    assert people["ou_e07"].manager_id == people["ou_lead"].id
    assert people["ou_lead"].manager_id == people["ou_boss"].id
    assert "manager" in people["ou_lead"].roles


async def test_org_sync_command_uses_the_registered_feishu_adapter(
    settings: Settings, fake: FakeFeishu, capsys: pytest.CaptureFixture[str]
) -> None:
    """``perfloop org sync feishu`` end to end: registry → FeishuAdapter.from_settings → contact API → DB."""
    import argparse

    from bot.app.cli import cmd_org_sync

    fake.add_department("od-ops", "运营部", leader="ou_ops")
    fake.add_user("ou_ops", "运营经理", "od-ops")
    fake.add_user("ou_op1", "运营一", "od-ops", leader="ou_ops")
    s = feishu_settings(settings, fake)
    assert await cmd_org_sync(argparse.Namespace(platform="feishu"), s) == 0
    assert "people +2" in capsys.readouterr().out
    from storage.db import create_engine, session_factory

    engine = create_engine(s.database.url)
    try:
        async with session_factory(engine)() as session:
            people = {p.platform_user_id: p for p in await session.scalars(select(Person))}
    finally:
        await engine.dispose()
    assert people["ou_op1"].manager_id == people["ou_ops"].id


async def test_fake_enforces_the_per_app_frequency_limit(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    fake.per_second_limit = 3
    for i in range(3):
        await adapter.send("ou_1", card(), idempotency_key=f"burst-{i}")
    with pytest.raises(RateLimited) as exc:
        await adapter.send("ou_1", card(), idempotency_key="burst-3")
    assert exc.value.retry_after == 1
    assert len(fake.messages) == 3


async def test_fake_enforces_the_per_minute_limit_too(adapter: FeishuAdapter, fake: FakeFeishu) -> None:
    """Feishu's message APIs allow 1,000 calls a minute per app besides 50 a second (PLATFORMS.md §2.7);
    past it the answer is the same frequency-limit error, saying when the minute has room again."""
    now = [1000.0]
    fake.limit_clock = lambda: now[0]
    fake.per_minute_limit = 5
    for i in range(5):
        now[0] += 2.0  # well inside the per-second limit
        await adapter.send("ou_1", card(), idempotency_key=f"minute-{i}")
    now[0] += 2.0  # 10 s after the first call (at 1002), which leaves the window 50 s from now
    with pytest.raises(RateLimited) as exc:
        await adapter.send("ou_1", card(), idempotency_key="minute-5")
    assert exc.value.retry_after == 50
    assert len(fake.messages) == 5 and fake.throttled == 1
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{fake.url}/open-apis/im/v1/messages?receive_id_type=open_id",
            headers={"Authorization": f"Bearer {await adapter.client.token()}"},
            json={"receive_id": "ou_1", "msg_type": "interactive", "content": "{}"},
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 429 and body["code"] == 99991400
        assert resp.headers["x-ogw-ratelimit-limit"] == "5"
    now[0] += 50.0  # the first call is a minute old: one more fits
    await adapter.send("ou_1", card(), idempotency_key="minute-5")
    assert len(fake.messages) == 6


async def test_the_limiter_keeps_both_windows_against_the_fake(fake: FakeFeishu) -> None:
    """With the limiter the client takes per message call, a burst of sends meets no rate-limit answer."""
    fake.per_second_limit, fake.per_minute_limit = 10, 1000
    limited = FeishuAdapter(
        app_id=fake.app_id,
        app_secret=fake.app_secret,
        api_base=fake.url,
        limiter=limiter_for(RateLimit(per_second=10.0, burst=1, per_minute=1000, margin_seconds=0.2)),
    )
    try:
        await asyncio.gather(
            *(limited.send(f"ou_{i}", card(), idempotency_key=f"paced-{i}") for i in range(25))
        )
    finally:
        await limited.close()
    assert len(fake.messages) == 25 and fake.throttled == 0
