"""Property tests through the real HTTP edge: arbitrary requests at ``/callbacks/<platform>``.

For every example: the answer is never a 5xx; a request that is not authentic (no or a wrong signature) or not
well-formed gets a 4xx and writes no row at all; an authentic but odd payload is either refused with a 4xx
(no row) or acknowledged, and then the only rows it may leave are its ``inbound_events`` record and the
outbox message telling an unknown sender that they are not in the organisation. Rows are counted in every
table before and after each example.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.core.config import Settings
from tests.proof.test_fuzz_parsers import (
    dingtalk_shaped,
    feishu_events,
    feishu_shaped,
    json_values,
    robot_messages,
    wecom_message_xml,
    wecom_xml,
)
from tests.support.edge import (
    Edge,
    dingtalk_event,
    dingtalk_robot_headers,
    edge_settings,
    feishu_sealed,
    grown,
    no_crash_logged,
    running_edge,
    wecom_signed,
)

pytestmark = pytest.mark.timeout(120)

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = {"inbound_events", "outbox", "signature_claims"}
"""``signature_claims``: an authentic DingTalk robot signature is remembered with its message (#5)."""


@pytest.fixture
async def edge(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Edge]:
    async with running_edge(edge_settings(sqlite_url, tmp_path)) as e:
        yield e


async def _post(
    edge: Edge,
    path: str,
    body: bytes,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, int]]:
    before = await edge.rows()
    with no_crash_logged():
        resp = await edge.client.request(method, path, data=body, params=params or {}, headers=headers or {})
        await resp.read()
    return resp.status, grown(before, await edge.rows())


def _check(status: int, rows: dict[str, int], *, authentic: bool) -> None:
    event(f"HTTP {status}, rows in {sorted(rows)}")
    assert status < 500, f"server error {status}"
    if not authentic or status >= 400:
        assert 400 <= status < 500 or (status == 200 and not rows), status
        assert not rows, f"rows written for a rejected request: {rows}"
    else:
        assert set(rows) <= ALLOWED, f"unexpected rows: {rows}"


query_values = st.text(max_size=30) | st.sampled_from(["", "0", str(int(time.time()))])
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30) | st.sampled_from(
    ["", "0", str(int(time.time() * 1000))]
)
"""Header values a client can send at all (no CR/LF: aiohttp refuses them before they leave)."""
queries = st.fixed_dictionaries(
    {},
    optional={
        "msg_signature": query_values,
        "timestamp": query_values,
        "nonce": query_values,
        "echostr": query_values,
    },
)
bodies = (
    st.binary(max_size=300) | wecom_xml().map(str.encode) | json_values.map(lambda v: json.dumps(v).encode())
)


@EXAMPLES
@given(st.sampled_from(["GET", "POST"]), queries, bodies)
async def test_wecom_unsigned_anything(edge: Edge, method: str, query: dict[str, str], body: bytes) -> None:
    status, rows = await _post(edge, "/callbacks/wecom", body, params=query, method=method)
    _check(status, rows, authentic=False)


@EXAMPLES
@given(wecom_message_xml() | wecom_xml() | st.text(max_size=200))
async def test_wecom_signed_any_plaintext(edge: Edge, plaintext: str) -> None:
    body, query = wecom_signed(plaintext)
    status, rows = await _post(edge, "/callbacks/wecom", body.encode(), params=query)
    _check(status, rows, authentic=True)


@EXAMPLES
@given(
    st.fixed_dictionaries(
        {}, optional={"card_token": query_values, "msg_signature": query_values, "timestamp": query_values}
    ),
    st.fixed_dictionaries({}, optional={"timestamp": header_values, "sign": header_values}),
    bodies,
)
async def test_dingtalk_unsigned_anything(
    edge: Edge, query: dict[str, str], headers: dict[str, str], body: bytes
) -> None:
    status, rows = await _post(edge, "/callbacks/dingtalk", body, params=query, headers=headers)
    _check(status, rows, authentic=False)


@EXAMPLES
@given(
    robot_messages
    | dingtalk_shaped(["msgId", "msgtype", "senderStaffId", "conversationType", "text", "content"])
    | json_values
)
async def test_dingtalk_signed_robot_message(edge: Edge, data: Any) -> None:
    status, rows = await _post(
        edge, "/callbacks/dingtalk", json.dumps(data).encode(), headers=dingtalk_robot_headers()
    )
    _check(status, rows, authentic=True)


@EXAMPLES
@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=5)
    | st.fixed_dictionaries(
        {"EventType": st.sampled_from(["user_add_org", "user_leave_org", "check_url", "x"])},
        optional={"UserId": json_values},
    )
)
async def test_dingtalk_signed_event(edge: Edge, data: dict[str, Any]) -> None:
    body, query = dingtalk_event(data)
    status, rows = await _post(edge, "/callbacks/dingtalk", body, params=query)
    _check(status, rows, authentic=True)


@EXAMPLES
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "X-Lark-Signature": header_values,
            "X-Lark-Request-Timestamp": header_values,
            "X-Lark-Request-Nonce": header_values,
        },
    ),
    bodies | st.builds(lambda v: json.dumps({"encrypt": v}).encode(), json_values),
)
async def test_feishu_unsigned_anything(edge: Edge, headers: dict[str, str], body: bytes) -> None:
    status, rows = await _post(edge, "/callbacks/feishu", body, headers=headers)
    _check(status, rows, authentic=False)


@EXAMPLES
@given(feishu_events() | feishu_shaped() | st.text(max_size=100))
async def test_feishu_sealed_any_payload(edge: Edge, payload: dict[str, Any] | str) -> None:
    if isinstance(payload, dict):  # half the time with the right token, so parsing is reached
        header = payload.get("header")
        if isinstance(header, dict) and "token" not in header:
            header["token"] = "edge-feishu-vtoken-55aa"
    body, headers = feishu_sealed(payload)
    status, rows = await _post(edge, "/callbacks/feishu", body, headers=headers)
    _check(status, rows, authentic=True)


# ------------------------------------------------------------------------------------------- simulator
@pytest.fixture
async def sim_edge(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Edge]:
    settings_ = Settings(
        database={"url": sqlite_url}, media={"dir": tmp_path / "media"}, sim={"enabled": True}
    )
    async with running_edge(settings_) as e:
        yield e


sim_bodies = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["text", "action", "image", "other"]) | json_values,
        "user": st.sampled_from(["nobody", ""]) | json_values,
    },
    optional={
        "text": json_values,
        "value": st.sampled_from(['kudos.like|{"x":1}', "x"]) | json_values,
        "form": json_values,
        "message_ref": st.sampled_from(["sim-1", "sim-x"]) | json_values,
        "mime": st.sampled_from(["image/png", "image/gif", "text/html"]) | json_values,
        "data_base64": st.sampled_from(["iVBORw0KGgo=", "R0lGODlh", "!!"]) | json_values,
        "client_event_id": st.sampled_from(["abcdefgh12", "short"]) | json_values,
        "extra": json_values,
    },
).map(lambda d: json.dumps(d).encode()) | st.binary(max_size=200)


@EXAMPLES
@given(sim_bodies, st.sampled_from(["application/json", "multipart/form-data; boundary=x", "text/plain"]))
async def test_sim_any_body(sim_edge: Edge, body: bytes, content_type: str) -> None:
    status, rows = await _post(sim_edge, "/callbacks/sim", body, headers={"Content-Type": content_type})
    assert status < 500
    if status >= 400:
        assert not rows
    else:
        assert set(rows) <= ALLOWED, rows
