"""Security review, the HTTP edge (docs/security.md, findings S1–S5): one test per finding.

S1 signatures and tokens are compared in constant time (``hmac.compare_digest``) on every platform;
S2 replayed callbacks: a timestamp window where the platform signs one, and deduplication everywhere;
S3 request bodies are capped by ``server.max_body_bytes`` (413), with or without a Content-Length;
S4 XML entity attacks (billion laughs, external entities) are refused before anything expands;
S5 media is fetched only from the platform's API host, size-capped, never from a URL in a callback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.base import PermanentError
from adapters.wecom.adapter import WeComAdapter
from adapters.wecom.client import MediaTooLarge
from bot.core.clock import FixedClock
from bot.core.config import Settings
from bot.core.events import ImageMessage
from storage.media import MediaStore
from tests.fakes.dingtalk_harness import running as dingtalk_running
from tests.fakes.wecom import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN
from tests.support.edge import (
    FEISHU_TOKEN,
    WECOM,
    Edge,
    dingtalk_event,
    dingtalk_event_raw,
    dingtalk_robot_headers,
    edge_settings,
    feishu_sealed,
    feishu_signed_headers,
    grown,
    no_crash_logged,
    running_edge,
    wecom_signed,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def edge(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Edge]:
    async with running_edge(edge_settings(sqlite_url, tmp_path)) as e:
        yield e


async def post(
    edge: Edge,
    path: str,
    body: bytes | str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, int]]:
    before = await edge.rows()
    with no_crash_logged():
        resp = await edge.client.post(path, data=body, params=params or {}, headers=headers or {})
        await resp.read()
    return resp.status, grown(before, await edge.rows())


def wecom_text(user: str = "nobody", msg_id: str = "7000000000000000001", *, ts: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{SAMPLE_CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{ts or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[/help]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )


def dingtalk_robot(msg_id: str = "msg-1") -> bytes:
    return json.dumps(
        {
            "msgId": msg_id,
            "msgtype": "text",
            "senderStaffId": "nobody",
            "conversationType": "1",
            "text": {"content": "/help"},
        }
    ).encode()


def feishu_text(event_id: str = "ev-1", token: str = FEISHU_TOKEN) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id,
            "event_type": "im.message.receive_v1",
            "token": token,
            "app_id": "cli_edge",
            "create_time": str(int(time.time() * 1000)),
        },
        "event": {
            "sender": {"sender_id": {"open_id": "ou_nobody"}},
            "message": {
                "message_id": "om_1",
                "message_type": "text",
                "chat_type": "p2p",
                "content": json.dumps({"text": "/help"}),
            },
        },
    }


# ----------------------------------------------------------------------------- S1 constant-time compare
FORGED = "forged0signature0value0000000000000000000"


def _forged_requests(edge: Edge) -> dict[str, tuple[str, bytes | str, dict[str, str], dict[str, str]]]:
    body, query = wecom_signed(wecom_text())
    dt_body, dt_query = dingtalk_event({"EventType": "user_add_org", "UserId": ["x"]})
    fs_body, fs_headers = feishu_sealed(feishu_text())
    fs_token_body, fs_token_headers = feishu_sealed(feishu_text(token=FORGED))
    return {
        "wecom msg_signature": ("/callbacks/wecom", body, {**query, "msg_signature": FORGED}, {}),
        "dingtalk robot sign": (
            "/callbacks/dingtalk",
            dingtalk_robot(),
            {},
            {**dingtalk_robot_headers(), "sign": FORGED},
        ),
        "dingtalk event msg_signature": (
            "/callbacks/dingtalk",
            dt_body,
            {**dt_query, "msg_signature": FORGED},
            {},
        ),
        "dingtalk card_token": ("/callbacks/dingtalk", b"{}", {"card_token": FORGED}, {}),
        "feishu X-Lark-Signature": (
            "/callbacks/feishu",
            fs_body,
            {},
            {**fs_headers, "X-Lark-Signature": FORGED},
        ),
        "feishu verification token": ("/callbacks/feishu", fs_token_body, {}, fs_token_headers),
    }


async def test_every_signature_and_token_is_compared_in_constant_time(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for name, (path, body, params, headers) in _forged_requests(edge).items():
        seen.clear()
        status, rows = await post(edge, path, body, params=params, headers=headers)
        assert status in (401, 403), f"{name}: forged value accepted ({status})"
        assert not rows, name
        forged = FORGED.encode()
        assert any(
            forged in (a if isinstance(a, bytes) else str(a).encode()) for pair in seen for a in pair
        ), f"{name}: the forged value never went through hmac.compare_digest"


# ------------------------------------------------------------------------------------------ S2 replays
async def test_wecom_refuses_timestamps_outside_the_window(edge: Edge) -> None:
    old = int(time.time()) - 301
    body, query = wecom_signed(wecom_text(msg_id="1", ts=old), timestamp=old)
    assert await post(edge, "/callbacks/wecom", body, params=query) == (403, {})
    future = int(time.time()) + 301
    body, query = wecom_signed(wecom_text(msg_id="2"), timestamp=future)
    assert await post(edge, "/callbacks/wecom", body, params=query) == (403, {})
    recent = int(time.time()) - 200
    body, query = wecom_signed(wecom_text(msg_id="3"), timestamp=recent)
    status, rows = await post(edge, "/callbacks/wecom", body, params=query)
    assert status == 200 and rows.get("inbound_events") == 1


async def test_dingtalk_refuses_stale_signatures(edge: Edge) -> None:
    stale = int((time.time() - 3601) * 1000)
    status, rows = await post(
        edge, "/callbacks/dingtalk", dingtalk_robot(), headers=dingtalk_robot_headers(timestamp_ms=stale)
    )
    assert (status, rows) == (401, {})
    body, query = dingtalk_event({"EventType": "user_add_org", "UserId": ["x"]}, timestamp_ms=stale)
    assert await post(edge, "/callbacks/dingtalk", body, params=query) == (401, {})


async def test_a_replayed_callback_changes_nothing_on_any_platform(edge: Edge) -> None:
    dingtalk_card = edge.service.registry.get("dingtalk")
    card_token: str = dingtalk_card.card_token  # type: ignore[attr-defined]
    packed = 'checkin.ack|{"checkin_id":1}'
    click_token = dingtalk_card.click_sign("track-1", "nobody")(packed)  # type: ignore[attr-defined]
    card_body = json.dumps(
        {
            "outTrackId": "track-1",
            "userId": "nobody",
            "content": json.dumps(
                {
                    "cardPrivateData": {
                        "actionIds": [packed],
                        "params": {"value": packed, "pl_sig": click_token},
                    }
                }
            ),
        }
    ).encode()
    wecom_body, wecom_query = wecom_signed(wecom_text(msg_id="42"))
    feishu_body, feishu_headers = feishu_sealed(feishu_text("ev-replay"))
    captured: list[tuple[str, bytes | str, dict[str, str], dict[str, str]]] = [
        ("/callbacks/wecom", wecom_body, wecom_query, {}),
        ("/callbacks/dingtalk", dingtalk_robot("replayed"), {}, dingtalk_robot_headers()),
        ("/callbacks/dingtalk", card_body, {"card_token": card_token}, {}),
        ("/callbacks/feishu", feishu_body, {}, feishu_headers),
    ]
    for path, body, params, headers in captured:
        first, rows = await post(edge, path, body, params=params, headers=headers)
        assert first == 200 and rows.get("inbound_events") == 1, (path, first, rows)
        for _ in range(3):
            again, rows = await post(edge, path, body, params=params, headers=headers)
            assert again == 200 and rows == {}, f"replay to {path} wrote {rows}"


async def test_an_unknown_sender_writing_twice_a_day_is_recorded_both_times(edge: Edge) -> None:
    """The once-a-day "you are not in the organisation" notice has a dedupe key; the second event of the day
    hit it, and the unique violation rolled back the whole event (logged as a crash, nothing recorded, so
    every platform retry crashed again). Now the second event is recorded and the notice is not repeated."""
    for msg_id in ("501", "502", "503"):
        body, query = wecom_signed(wecom_text("stranger", msg_id))
        status, rows = await post(edge, "/callbacks/wecom", body, params=query)
        assert status == 200 and rows.get("inbound_events") == 1, rows
        assert rows.get("outbox", 0) == (1 if msg_id == "501" else 0), rows


# -------------------------------------------------------------------------------------- S3 body limit
@pytest.fixture
async def small_edge(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Edge]:
    async with running_edge(edge_settings(sqlite_url, tmp_path, max_body_bytes=2048)) as e:
        yield e


@pytest.mark.parametrize("platform", ["wecom", "dingtalk", "feishu"])
@pytest.mark.parametrize("chunked", [False, True])
async def test_bodies_over_max_body_bytes_get_413(small_edge: Edge, platform: str, chunked: bool) -> None:
    payload = b"<xml>" + b"A" * 4096 + b"</xml>"
    params = (
        {"msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "1"}
        if platform == "wecom"
        else {}
    )

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 512):
            yield payload[i : i + 512]

    before = await small_edge.rows()
    resp = await small_edge.client.post(
        f"/callbacks/{platform}", data=stream() if chunked else payload, params=params
    )
    await resp.read()
    assert resp.status == 413
    assert grown(before, await small_edge.rows()) == {}


async def test_a_wecom_callback_split_into_small_chunks_is_read_whole(edge: Edge) -> None:
    """Reading the capped body with one ``content.read(n)`` returned only what had arrived so far: a callback
    split over TCP segments was cut short and refused as malformed."""
    body, query = wecom_signed(wecom_text(msg_id="31337"))
    data = body.encode()

    async def trickle() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 16):
            yield data[i : i + 16]
            await asyncio.sleep(0)

    before = await edge.rows()
    with no_crash_logged():
        resp = await edge.client.post("/callbacks/wecom", data=trickle(), params=query)
        await resp.read()
    assert resp.status == 200
    assert grown(before, await edge.rows()).get("inbound_events") == 1


async def test_the_simulator_caps_bodies_too(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(
        database={"url": sqlite_url},
        media={"dir": tmp_path / "media"},
        server={"max_body_bytes": 2048},
        sim={"enabled": True},
    )
    async with running_edge(settings) as sim:
        body = json.dumps({"type": "text", "user": "nobody", "text": "x" * 4096}).encode()
        resp = await sim.client.post(
            "/callbacks/sim", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 413


# ------------------------------------------------------------------------------------------ S4 XML
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]><xml><ToUserName>&j;</ToUserName><Encrypt>&j;</Encrypt></xml>"
)


def _xxe(path: Path) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file://{path}">]>'
        "<xml><ToUserName>c</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>9</MsgId><Encrypt>&xxe;</Encrypt></xml>"
    )


async def test_xml_entity_attacks_are_refused(edge: Edge, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("TOP-SECRET-FILE-CONTENT")
    for name, xml in [("billion laughs", BILLION_LAUGHS), ("external entity", _xxe(secret_file))]:
        # In the outer envelope (before the signature check) …
        started = time.perf_counter()
        status, rows = await post(
            edge,
            "/callbacks/wecom",
            xml,
            params={"msg_signature": "x", "timestamp": str(int(time.time())), "nonce": "1"},
        )
        assert (status, rows) == (400, {}), name
        # … and inside a correctly encrypted and signed message.
        body, query = wecom_signed(xml)
        status, rows = await post(edge, "/callbacks/wecom", body, params=query)
        assert (status, rows) == (400, {}), name
        assert time.perf_counter() - started < 2.0, f"{name}: took too long (expanded?)"


# --------------------------------------------------------------------------------------- S5 downloads
class Recorder:
    """A loopback HTTP server standing for anything that is not the platform (an internal service, cloud
    metadata…): it must never be asked for anything."""

    def __init__(self, handler: Callable[[web.Request], Any] | None = None) -> None:
        self.hits: list[str] = []
        self.handler = handler
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Recorder:
        async def any_request(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path_qs)
            if self.handler is not None:
                result: web.StreamResponse = await self.handler(request)
                return result
            return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"0" * 64, content_type="image/png")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_request)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_wecom_image_callback_url_is_never_fetched(edge: Edge) -> None:
    """The callback's PicUrl is ignored; the image is fetched by MediaId from the WeCom API host only."""
    async with Recorder() as internal:
        xml = (
            f"<xml><ToUserName>{SAMPLE_CORP_ID}</ToUserName><FromUserName>nobody</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>image</MsgType>"
            f"<PicUrl><![CDATA[{internal.url}/latest/meta-data]]></PicUrl>"
            f"<MediaId><![CDATA[{internal.url}/x]]></MediaId><MsgId>77</MsgId></xml>"
        )
        body, query = wecom_signed(xml)
        status, _rows = await post(edge, "/callbacks/wecom", body, params=query)
        assert status == 200
        assert internal.hits == []


async def _wecom_adapter(api_base: str, tmp_path: Path) -> WeComAdapter:
    return WeComAdapter(
        corp_id=SAMPLE_CORP_ID,
        agent_id=1000002,
        secret="s",
        token=SAMPLE_TOKEN,
        encoding_aes_key=SAMPLE_AES_KEY,
        api_base=api_base,
        link_url="https://perfloop.example.com",
        media=MediaStore(tmp_path / "media", max_bytes=4096),
    )


@pytest.mark.parametrize("declared", [True, False])
async def test_wecom_media_download_is_size_capped(tmp_path: Path, declared: bool) -> None:
    """A lying or missing Content-Length cannot make us buffer more than the cap."""

    async def platform(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/gettoken"):
            return web.json_response({"errcode": 0, "access_token": "t", "expires_in": 7200})
        if declared:
            return web.Response(body=b"\xff\xd8\xff" + b"0" * 10_000, content_type="image/jpeg")
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b"0" * 1024)
        await resp.write_eof()
        return resp

    async with Recorder(platform) as host:
        adapter = await _wecom_adapter(host.url, tmp_path)
        try:
            with pytest.raises(MediaTooLarge):
                await adapter.download_media("MEDIA_1", max_bytes=4096)
            with pytest.raises(PermanentError):
                await adapter.download_media("MEDIA_1", max_bytes=4096)
            # The media id is a query parameter on the API host, whatever it contains.
            await _swallow(
                adapter.download_media("../../cgi-bin/x?y=http://169.254.169.254/", max_bytes=4096)
            )
            assert all(hit.startswith(("/cgi-bin/gettoken", "/cgi-bin/media/get?")) for hit in host.hits)
        finally:
            await adapter.close()


async def _swallow(coro: Any) -> None:
    try:
        await coro
    except PermanentError:
        pass


async def test_dingtalk_download_url_on_another_loopback_port_is_refused(
    settings: Settings, clock: FixedClock
) -> None:
    """Same host as the configured API base but another port is still not the platform (end to end: a
    picture message whose downloadCode resolves to an internal URL fetches nothing)."""
    async with Recorder() as internal, dingtalk_running(settings, clock, mode="http") as env:
        env.fake.files["code-1"] = b"\x89PNG\r\n\x1a\nxxxx"
        env.fake.file_urls["code-1"] = f"{internal.url}/admin/secrets.png"
        with pytest.raises(PermanentError, match="outside DingTalk"):
            await env.adapter.download_media("code-1", max_bytes=10_000)
        answer = await env.service.dispatcher.dispatch(
            ImageMessage(
                platform="dingtalk",
                workspace=env.adapter.workspace,
                event_id="img-1",
                sender_id="emp1",
                media_ref="code-1",
            )
        )
        assert answer is not None
        assert internal.hits == []


async def test_feishu_resource_keys_cannot_leave_the_resource_path(edge: Edge) -> None:
    """``message_id:image_key`` come from the event; both are quoted into one path segment each."""

    async def platform(request: web.Request) -> web.StreamResponse:
        if "tenant_access_token" in request.path:
            return web.json_response({"code": 0, "tenant_access_token": "t-1", "expire": 7200})
        return web.Response(body=b"\x89PNG\r\n\x1a\n0000", content_type="image/png")

    async with Recorder(platform) as host:
        adapter = edge.service.registry.get("feishu")
        adapter.client.api_base = host.url  # type: ignore[attr-defined]
        await _swallow_any(adapter.download_media("om_1:../../../contact/v3/users?x=", max_bytes=4096))
        paths = [h for h in host.hits if "/resources/" in h or "contact" in h]
        assert paths and all(
            p.startswith("/open-apis/im/v1/messages/om_1/resources/..%2F..%2F") for p in paths
        ), host.hits


async def _swallow_any(coro: Any) -> None:
    try:
        await coro
    except Exception:
        pass


def test_wecom_crypto_is_shared_with_the_edge() -> None:
    """Guard for the helpers above: the edge signs with the published sample credentials."""
    assert WECOM.token == SAMPLE_TOKEN


# ------------------------------------------------------------------ issue 16 #4: deeply nested JSON
DEEP = "[" * 1500 + "]" * 1500
"""1,500 levels in 3 KB: past the C JSON parser's recursion limit, which raised ``RecursionError`` (not a
``ValueError``), so the callback answered 500 with a traceback logged at error level."""


def _deep_requests(edge: Edge) -> dict[str, tuple[str, bytes, dict[str, str], dict[str, str]]]:
    dingtalk_card = edge.service.registry.get("dingtalk")
    card_token: str = dingtalk_card.card_token  # type: ignore[attr-defined]
    fs_body, fs_headers = feishu_sealed(DEEP)
    fs_wrapped, fs_wrapped_headers = feishu_sealed('{"schema": "2.0", "header": ' + DEEP + "}")
    _, dt_query = dingtalk_event({"EventType": "user_add_org", "UserId": ["x"]})
    deep_encrypted, deep_query = dingtalk_event_raw(DEEP)
    raw = DEEP.encode()
    return {
        "feishu unsigned body": ("/callbacks/feishu", raw, {}, {"Content-Type": "application/json"}),
        "feishu signed body": ("/callbacks/feishu", raw, {}, feishu_signed_headers(raw)),
        "feishu sealed payload": ("/callbacks/feishu", fs_body, {}, fs_headers),
        "feishu sealed nested field": ("/callbacks/feishu", fs_wrapped, {}, fs_wrapped_headers),
        "dingtalk event body": ("/callbacks/dingtalk", raw, dt_query, {}),
        "dingtalk event payload": ("/callbacks/dingtalk", deep_encrypted, deep_query, {}),
        "dingtalk robot body": ("/callbacks/dingtalk", raw, {}, dingtalk_robot_headers()),
        "dingtalk card body": ("/callbacks/dingtalk", raw, {"card_token": card_token}, {}),
    }


async def _fastest(
    edge: Edge, path: str, body: bytes, params: dict[str, str], headers: dict[str, str]
) -> float:
    """The quickest of five answers, each of which must be a 400 that wrote nothing and logged no crash."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        status, rows = await post(edge, path, body, params=params, headers=headers)
        best = min(best, time.perf_counter() - started)
        assert (status, rows) == (400, {}), (path, params, headers.get("X-Lark-Signature"), status, rows)
    return best


async def test_deeply_nested_json_is_refused_fast_on_every_platform(edge: Edge) -> None:
    for name, (path, body, params, headers) in _deep_requests(edge).items():
        seconds = await _fastest(edge, path, body, params, headers)
        assert seconds < 0.05, f"{name}: {seconds * 1000:.1f} ms"


async def test_deeply_nested_json_to_the_simulator_is_refused_fast(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(
        database={"url": sqlite_url}, media={"dir": tmp_path / "media"}, sim={"enabled": True}
    )
    async with running_edge(settings) as sim:
        for body in (DEEP, '{"type": "text", "user": "u", "text": "x", "extra": ' + DEEP + "}"):
            seconds = await _fastest(
                sim, "/callbacks/sim", body.encode(), {}, {"Content-Type": "application/json"}
            )
            assert seconds < 0.05, f"{seconds * 1000:.1f} ms"


# ------------------------------------------------------------------ issue 16 #7: configurable windows
def _with_windows(settings: Settings, **windows: tuple[int, int]) -> Settings:
    update = {}
    for platform, (window, tolerance) in windows.items():
        section = getattr(settings, platform)
        update[platform] = section.model_copy(
            update={"replay_window_seconds": window, "clock_tolerance_seconds": tolerance}
        )
    return settings.model_copy(update=update)


async def test_every_platforms_replay_window_and_clock_tolerance_are_configurable(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = _with_windows(
        edge_settings(sqlite_url, tmp_path), wecom=(60, 10), dingtalk=(120, 10), feishu=(600, 10)
    )
    now = time.time()
    async with running_edge(settings) as e:
        # WeCom: 100 s old and 20 s ahead are refused; 30 s old passes.
        for offset, msg_id, expected in ((-100, "11", 403), (20, "12", 403), (-30, "13", 200)):
            ts = int(now + offset)
            body, query = wecom_signed(wecom_text(msg_id=msg_id, ts=ts), timestamp=ts)
            assert (await post(e, "/callbacks/wecom", body, params=query))[0] == expected, offset
        # DingTalk robot and event: 200 s old is past a 120 s window (the default is an hour).
        old_ms = int((now - 200) * 1000)
        status, _ = await post(
            e,
            "/callbacks/dingtalk",
            dingtalk_robot("m-old"),
            headers=dingtalk_robot_headers(timestamp_ms=old_ms),
        )
        assert status == 401
        body, query = dingtalk_event({"EventType": "user_add_org", "UserId": ["x"]}, timestamp_ms=old_ms)
        assert (await post(e, "/callbacks/dingtalk", body, params=query))[0] == 401
        # Feishu: a request signed 1,000 s ago is past a 600 s window (the default is 8 h).
        fs_body = feishu_sealed(feishu_text("ev-old"))[0]
        headers = feishu_signed_headers(fs_body, timestamp=int(now - 1000))
        assert (await post(e, "/callbacks/feishu", fs_body, headers=headers))[0] == 401
        fresh_body, fresh_headers = feishu_sealed(feishu_text("ev-fresh"))
        assert (await post(e, "/callbacks/feishu", fresh_body, headers=fresh_headers))[0] == 200
