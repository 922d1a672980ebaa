"""DingTalk outbound: tokens, rate limits through the outbox, batching, fallbacks, media, org sync."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from adapters.base import PermanentError, RateLimited, TransientError
from bot.app.orgsync import apply_org, workspace_for
from bot.core.clock import FixedClock
from bot.core.config import Settings
from cards.catalogue import Translator
from cards.model import Card, Header, Image, Markdown
from cards.notice import notice_card
from storage.models import OutboxMessage, Person
from tests.fakes.dingtalk import APP_KEY
from tests.fakes.dingtalk_harness import Env, accept_card, running

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def env(settings: Settings, clock: FixedClock) -> AsyncIterator[Env]:
    async with running(settings, clock, mode="http", work_notice_fallback=False) as e:
        yield e


def plain(title: str = "Hello") -> Card:
    return notice_card(Translator("en"), title, "body text")


async def test_tokens_are_cached_and_refreshed_once_on_invalid_token(env: Env) -> None:
    client = env.adapter.client
    await env.adapter.send("emp1", plain(), idempotency_key="k1")
    await env.adapter.send("emp1", plain("2"), idempotency_key="k2")
    assert env.fake.token_requests["api"] == 1
    env.fake.revoke_tokens()
    await env.adapter.send("emp1", plain("3"), idempotency_key="k3")
    assert env.fake.token_requests["api"] == 2 and len(env.fake.batch_sends) == 3
    org = await env.adapter.list_org()
    assert org.members and env.fake.token_requests["oapi"] == 1
    env.fake.revoke_tokens()
    await env.adapter.upload_media(b"\x89PNG....", filename="chart.png", mime="image/png")
    assert env.fake.token_requests["oapi"] == 2
    assert client.token_fetches == {"api": 2, "oapi": 2}


async def test_rate_limit_goes_back_to_the_outbox_backoff(env: Env, clock: FixedClock) -> None:
    env.fake.throttle["/v1.0/card/instances/createAndDeliver"] = 1
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:rl")
    [row] = await env.outbox_rows()
    assert row.status == "pending" and row.attempts == 1 and "rate limited" in (row.last_error or "")
    assert row.next_attempt_at > clock.now() and env.fake.cards == {}
    clock.advance(timedelta(seconds=5))
    await env.service.outbox.drain()
    [row] = await env.outbox_rows()
    assert row.status == "sent" and len(env.fake.cards) == 1


async def test_oapi_rate_limit_code_is_rate_limited(env: Env) -> None:
    env.fake.throttle["/media/upload"] = 1
    with pytest.raises(RateLimited):
        await env.adapter.upload_media(b"img", filename="a.png", mime="image/png")
    media_id = await env.adapter.upload_media(b"img", filename="a.png", mime="image/png")
    assert media_id.startswith("@") and env.fake.uploads[-1]["size"] == 3


async def test_server_errors_are_transient(env: Env) -> None:
    env.fake.fail_5xx["/v1.0/robot/oToMessages/batchSend"] = 1
    with pytest.raises(TransientError):
        await env.adapter.send("emp1", plain(), idempotency_key="k")


async def test_batch_send_respects_twenty_recipients(env: Env) -> None:
    people = [f"s{i:03d}" for i in range(45)]
    result = await env.adapter.send_many(people, plain(), idempotency_key="bc")
    assert [len(b["userIds"]) for b in env.fake.batch_sends] == [20, 20, 5]
    assert sorted(result.message_refs) == people and not result.invalid_recipients


async def test_broadcast_rows_are_chunked_by_the_adapter_limit(env: Env) -> None:
    async def job(ctx: object) -> None:
        people = list((await ctx.session.scalars(select(Person))).all())  # type: ignore[attr-defined]
        await ctx.outbox.broadcast(people, lambda t: plain())  # type: ignore[attr-defined]

    await env.service.dispatcher.run_for_person(env.org.hr.id, job)
    rows = await env.outbox_rows()
    assert all(len(r.recipients) <= 20 for r in rows)
    await env.service.outbox.drain()
    assert sum(len(b["delivered"]) for b in env.fake.batch_sends) == len(env.org.everyone)


async def test_flow_controlled_users_are_retried(env: Env) -> None:
    env.fake.flow_control["emp2"] = 1
    result = await env.adapter.send_many(["emp1", "emp2"], plain(), idempotency_key="fc")
    assert sorted(result.message_refs) == ["emp1", "emp2"]
    assert [b["userIds"] for b in env.fake.batch_sends] == [["emp1", "emp2"], ["emp2"]]


async def test_all_flow_controlled_is_rate_limited(env: Env) -> None:
    env.fake.flow_control["emp1"] = 5
    with pytest.raises(RateLimited):
        await env.adapter.send("emp1", plain(), idempotency_key="fc1")


async def test_unreachable_users_are_reported(env: Env) -> None:
    env.fake.unreachable.add("emp2")
    result = await env.adapter.send_many(["emp1", "emp2"], plain(), idempotency_key="u")
    assert result.invalid_recipients == ["emp2"] and env.fake.work_notices == []
    card = await env.adapter.send("emp2", accept_card(1), idempotency_key="u2")
    assert card.invalid_recipients == ["emp2"]


async def test_unreachable_users_get_a_work_notice_when_configured(
    settings: Settings, clock: FixedClock
) -> None:
    async with running(settings, clock, mode="http", work_notice_fallback=True, agent_id=77) as env:
        env.fake.unreachable.add("emp2")
        result = await env.adapter.send_many(["emp1", "emp2"], accept_card(1), idempotency_key="u")
        assert result.invalid_recipients == [] and result.message_refs["emp2"].startswith("wn:")
        [notice] = env.fake.work_notices
        assert notice["agent_id"] == 77 and notice["userid_list"] == "emp2"
        assert notice["msg"]["msgtype"] == "markdown"


async def test_resend_after_crash_reuses_the_out_track_id(env: Env) -> None:
    first = await env.adapter.send("emp1", accept_card(5), idempotency_key="perfloop-outbox-9")
    again = await env.adapter.send("emp1", accept_card(5), idempotency_key="perfloop-outbox-9")
    assert first.message_refs == again.message_refs and len(env.fake.cards) == 1


async def test_update_of_a_plain_message_sends_the_new_version(env: Env) -> None:
    result = await env.adapter.send("emp1", plain("v1"), idempotency_key="p")
    await env.adapter.update(result.message_refs["emp1"], plain("v2"), recipient="emp1")
    assert [b["msgParam"].count("v2") for b in env.fake.batch_sends] == [0, 1]
    assert env.fake.card_updates == []


async def test_download_is_size_capped(env: Env) -> None:
    env.fake.files["big"] = b"x" * 5000
    assert len(await env.adapter.download_media("big", max_bytes=5000)) == 5000
    with pytest.raises(PermanentError, match="too large"):
        await env.adapter.download_media("big", max_bytes=4999)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://evil.example.com/x.png",
        "http://static.dingtalk.com/x.png",
        "https://dingtalk.com.evil.io/x",
        "file:///etc/passwd",
    ],
)
async def test_download_refuses_urls_outside_dingtalk(env: Env, url: str) -> None:
    env.fake.files["c"] = b"data"
    env.fake.file_urls["c"] = url
    with pytest.raises(PermanentError, match="outside DingTalk"):
        await env.adapter.download_media("c", max_bytes=1000)


def test_download_allow_list_accepts_dingtalk_hosts(settings: Settings) -> None:
    from adapters.dingtalk.client import DingTalkClient

    client = DingTalkClient(settings.dingtalk)
    assert client._download_allowed("https://down.dingtalk.com/ddmedia/abc.png")
    assert client._download_allowed("https://static.dingtalk.com/media/x.jpg")
    assert not client._download_allowed("https://api.dingtalk.com.attacker.net/x")
    extended = DingTalkClient(
        settings.dingtalk.model_copy(update={"download_hosts": ["oss-cn-hangzhou.aliyuncs.com"]})
    )
    assert extended._download_allowed("https://b.oss-cn-hangzhou.aliyuncs.com/x.png")
    assert not client._download_allowed("https://b.oss-cn-hangzhou.aliyuncs.com/x.png")


async def test_image_in_card_uses_uploaded_media_id(env: Env) -> None:
    media_id = await env.adapter.upload_media(b"\x89PNG", filename="trend.png", mime="image/png")
    card = Card(
        header=Header(title="Digest"), elements=[Markdown(text="trend"), Image(media_id=media_id, alt="t")]
    )
    await env.adapter.send("leader", card, idempotency_key="d")
    assert f"![t]({media_id})" in env.fake.batch_sends[-1]["msgParam"]


async def test_org_sync_with_managers_and_leavers(env: Env, settings: Settings) -> None:
    org = await env.adapter.list_org()
    depts = {d.id: d for d in org.departments}
    assert set(depts) == {"1", "10", "11", "20"} and depts["11"].parent_id == "10"
    assert depts["10"].leader_ids == ["mgr"] and depts["1"].name == "测试公司"
    members = {m.user_id: m for m in org.members}
    assert len(members) == 135  # the 130 sellers span two user/list pages
    assert members["emp1"].manager_id == "mgr" and members["emp1"].department_ids == ["10", "11"]
    assert members["leader"].manager_id is None and members["s129"].manager_id == "smgr"
    assert len([p for p in env.fake.requests if p[1] == "/topapi/v2/user/list"]) >= 5
    async with env.service.factory() as s, s.begin():
        ws = await workspace_for(s, "dingtalk", APP_KEY)
        await apply_org(s, ws, org, default_timezone="Asia/Shanghai", default_locale="zh-CN")
    async with env.service.factory() as s:
        people = {p.platform_user_id: p for p in (await s.scalars(select(Person))).all()}
    assert people["emp1"].manager_id == people["mgr"].id
    assert not people["seller"].active  # in perfloop's seed, not in DingTalk: left the company


async def test_check_credentials(env: Env) -> None:
    assert "tokens OK" in await env.adapter.check_credentials()
    env.fake.app_secret = "rotated"
    with pytest.raises(PermanentError):
        await env.adapter.check_credentials()


async def test_outbox_keeps_nothing_unsent(env: Env) -> None:
    item_id = await env.new_item(env.org.emp1.id)
    await env.send_card(env.org.emp1.id, accept_card(item_id), "dt:x")
    async with env.service.factory() as s:
        row = await s.scalar(select(OutboxMessage))
        assert row is not None and row.status == "sent"


async def test_api_calls_are_paced_per_call_not_per_row(settings: Settings, clock: FixedClock) -> None:
    """One outbox row of 20 people becomes 20 card deliveries: the app's QPS budget applies to each."""
    async with running(settings, clock, mode="stream", rate_limit={"per_second": 40.0, "burst": 2}) as env:
        people = [f"s{i:03d}" for i in range(8)]
        result = await env.adapter.send_many(people, accept_card(3), idempotency_key="pace")
        assert len(result.message_refs) == 8 and len(env.fake.cards) == 8
        assert env.adapter.client.bucket.waited_seconds >= 0.1


async def test_card_images_from_the_media_store_are_uploaded_once(env: Env) -> None:
    import io

    from PIL import Image as PILImage

    from cards.model import Card, Header, Image, Markdown
    from storage.media import MediaStore

    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), "red").save(buf, format="PNG")
    store = MediaStore(env.service.settings.media.dir, max_bytes=10_000_000)
    stored = await store.store_image(buf.getvalue())
    sha = stored.info.sha256
    card = Card(
        header=Header(title="日报"), elements=[Markdown(text="趋势"), Image(media_id=sha, alt="趋势图")]
    )
    await env.adapter.send("emp1", card, idempotency_key="img1")
    await env.adapter.send("emp2", card, idempotency_key="img2")
    assert len(env.fake.uploads) == 1
    sent = json.dumps(env.fake.batch_sends[-1], ensure_ascii=False)
    assert "@" in sent and sha not in sent
