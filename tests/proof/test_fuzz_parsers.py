"""Property tests for every parser at the edge, called directly: whatever the bytes, each parser either
returns its typed result or raises its one documented "malformed" error — never anything else (an
``IndexError``, ``KeyError``, ``TypeError``… escaping would become a 500 or a crashed Stream task).

The HTTP-level properties (status codes, no rows written) are in ``test_fuzz_callbacks.py``.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.base import CallbackRejected
from adapters.dingtalk import inbound as dt
from adapters.dingtalk.crypto import EventCrypto, SignatureError, event_signature
from adapters.feishu import crypto as fs_crypto
from adapters.feishu.inbound import parse_payload as feishu_parse
from adapters.wecom.crypto import CallbackCrypto, CryptoError, signature
from adapters.wecom.inbound import MalformedPayload, parse_envelope, parse_message, to_event
from bot.app.orgimport import CsvImportError, parse_org_csv
from bot.core.events import Event
from cards.actions import Action, InvalidAction, registered_actions, unpack
from tests.fakes.dingtalk import AES_KEY as DT_AES_KEY
from tests.fakes.dingtalk import APP_KEY as DT_APP_KEY
from tests.fakes.dingtalk import CORP_ID as DT_CORP_ID
from tests.fakes.dingtalk import TOKEN as DT_TOKEN
from tests.fakes.wecom import SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN

WECOM = CallbackCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_CORP_ID)
DINGTALK_EVENTS = EventCrypto(DT_TOKEN, DT_AES_KEY, DT_APP_KEY, DT_CORP_ID)
"""The adapters' crypto under test (the edge signs with the SDKs' instead)."""

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=15,
)


# ---------------------------------------------------------------------------------------------- WeCom
WECOM_TAGS = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "AgentID",
    "Event",
    "EventKey",
    "TaskId",
    "CardType",
    "ResponseCode",
    "ChangeType",
    "UserID",
    "NewUserID",
    "MediaId",
    "PicUrl",
    "Encrypt",
]
WECOM_VALUES = st.sampled_from(
    [
        "text",
        "image",
        "event",
        "template_card_event",
        "change_contact",
        "create_user",
        "update_user",
        "delete_user",
        "vote_interaction",
        "1700000000",
        "-1",
        "",
        "  ",
        "99999999999999999999999",
        'checkin.ack|{"checkin_id":1}',
    ]
) | st.text(max_size=40)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wecom_xml(draw: st.DrawFn) -> str:
    """Plausible WeCom XML: the real tag names, any subset, odd values, sometimes SelectedItems."""
    tags = draw(st.lists(st.sampled_from(WECOM_TAGS), max_size=12))
    parts = [f"<{t}>{_cdata(draw(WECOM_VALUES))}</{t}>" for t in tags]
    if draw(st.booleans()):
        items = draw(
            st.lists(st.tuples(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3)), max_size=3)
        )
        parts.append(
            "<SelectedItems>"
            + "".join(
                f"<SelectedItem><QuestionKey>{_cdata(q)}</QuestionKey><OptionIds>"
                + "".join(f"<OptionId>{_cdata(o)}</OptionId>" for o in opts)
                + "</OptionIds></SelectedItem>"
                for q, opts in items
            )
            + "</SelectedItems>"
        )
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    return f"<{root}>{''.join(parts)}</{root}>"


@st.composite
def wecom_message_xml(draw: st.DrawFn) -> str:
    """A WeCom message with every required tag present and odd values: reaches the dispatcher."""
    kind = draw(st.sampled_from(["text", "image", "card", "contact", "other"]))
    tags: dict[str, str] = {
        "ToUserName": "wx49f0ab532d5d035a",
        "FromUserName": draw(
            st.sampled_from(["u1", "nobody", "張三", "a" * 64]) | st.text(min_size=1, max_size=20)
        ),
        "CreateTime": str(draw(st.integers(0, 2**40))),
        "AgentID": "1000002",
    }
    if kind == "text":
        tags |= {"MsgType": "text", "Content": draw(st.text(max_size=60)), "MsgId": str(draw(st.integers(0)))}
    elif kind == "image":
        tags |= {"MsgType": "image", "MediaId": draw(st.text(min_size=1, max_size=20)), "MsgId": "7"}
    elif kind == "card":
        tags |= {
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": draw(WECOM_VALUES),
            "TaskId": draw(st.text(min_size=1, max_size=20)),
            "ResponseCode": draw(st.text(max_size=10)),
        }
    elif kind == "contact":
        tags |= {
            "MsgType": "event",
            "Event": "change_contact",
            "ChangeType": draw(st.sampled_from(["create_user", "update_user", "delete_user", "x"])),
            "UserID": draw(st.text(min_size=1, max_size=20)),
        }
    else:
        tags |= {"MsgType": draw(st.text(min_size=1, max_size=10)), "Event": draw(st.text(max_size=10))}
    body = "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in tags.items() if v.strip())
    return f"<xml>{body}</xml>"


def _wecom_message(text: str) -> Event | None:
    try:
        return to_event(parse_message(text), workspace="corp")
    except (MalformedPayload, ValidationError):
        return None


@FAST
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_wecom_envelope_any_bytes(body: bytes) -> None:
    try:
        env = parse_envelope(body)
    except MalformedPayload:
        return
    assert isinstance(env.encrypt, str)


@FAST
@given(wecom_xml() | wecom_message_xml())
def test_wecom_message_plausible_xml(text: str) -> None:
    event = _wecom_message(text)
    assert event is None or event.platform == "wecom"


@FAST
@given(st.text(max_size=300))
def test_wecom_message_any_text(text: str) -> None:
    _wecom_message(text)


@FAST
@given(
    st.text(max_size=50),
    st.text(string.digits, max_size=12),
    st.text(max_size=12),
    st.text(max_size=120) | st.binary(max_size=90).map(lambda b: __import__("base64").b64encode(b).decode()),
    st.booleans(),
)
def test_wecom_decrypt_only_crypto_error(sig: str, ts: str, nonce: str, encrypt: str, sign: bool) -> None:
    """With a valid signature the ciphertext is the attack surface (padding, length prefix, corp id)."""
    if sign:
        sig = signature(SAMPLE_TOKEN, ts, nonce, encrypt)
    try:
        WECOM.decrypt(sig, ts, nonce, encrypt)
    except CryptoError:
        return


# ------------------------------------------------------------------------------------------- DingTalk
ROBOT_KEYS = [
    "msgId",
    "msgtype",
    "senderStaffId",
    "senderId",
    "conversationType",
    "text",
    "content",
    "createAt",
]
CARD_KEYS = ["outTrackId", "userId", "content", "userIdType", "corpId", "type"]


@st.composite
def dingtalk_shaped(draw: st.DrawFn, keys: list[str]) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
    out: dict[str, Any] = {}
    for key in chosen:
        out[key] = draw(
            json_values
            | st.sampled_from(["text", "picture", "1", "2", ""])
            | st.fixed_dictionaries({"content": json_values})
            | st.fixed_dictionaries({"downloadCode": json_values})
            | st.builds(
                lambda ids, params: json.dumps({"cardPrivateData": {"actionIds": ids, "params": params}}),
                st.lists(st.sampled_from(['kudos.like|{"recognition_id":1}', "x|", "nope"]), max_size=2),
                st.dictionaries(st.text(max_size=6), json_values, max_size=3),
            )
        )
    return out


robot_messages = st.fixed_dictionaries(
    {
        "msgId": st.text(min_size=1, max_size=30),
        "msgtype": st.sampled_from(["text", "picture", "richText", "file"]),
        "senderStaffId": st.sampled_from(["nobody", "u1"]) | st.text(min_size=1, max_size=20),
        "conversationType": st.sampled_from(["1", "1", "2"]),
        "text": st.fixed_dictionaries({"content": st.text(max_size=60)}),
    },
    optional={"content": json_values | st.fixed_dictionaries({"downloadCode": json_values})},
)


@FAST
@example({"msgId": "1", "msgtype": "picture", "senderStaffId": "u", "content": {"downloadCode": True}})
@example({"msgId": "1", "msgtype": "picture", "senderStaffId": "u", "content": {"pictureDownloadCode": 7}})
@given(
    robot_messages
    | dingtalk_shaped(ROBOT_KEYS)
    | st.dictionaries(st.text(max_size=10), json_values, max_size=6)
)
def test_dingtalk_robot_message(data: dict[str, Any]) -> None:
    try:
        dt.robot_event(data, "ws")
    except dt.MalformedPayload:
        pass


@FAST
@given(dingtalk_shaped(CARD_KEYS) | st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_dingtalk_card_callback(data: dict[str, Any]) -> None:
    try:
        event = dt.card_event(data, "ws")
    except dt.MalformedPayload:
        return
    assert event.value and event.event_id.startswith("card:")


@FAST
@given(
    st.fixed_dictionaries(
        {"EventType": st.sampled_from([*dt.ORG_CHANGES, "check_url", "other"]) | json_values},
        optional={"UserId": json_values, "CorpId": json_values, "TimeStamp": json_values},
    )
    | st.dictionaries(st.text(max_size=10), json_values, max_size=4)
)
def test_dingtalk_org_events(data: dict[str, Any]) -> None:
    try:
        dt.org_events(data, "ws", event_id="e")
    except dt.MalformedPayload:
        pass


@FAST
@given(st.text(string.digits, max_size=14), st.text(max_size=10), st.text(max_size=120), st.booleans())
def test_dingtalk_event_decrypt_only_signature_error(ts: str, nonce: str, encrypt: str, sign: bool) -> None:
    sig = event_signature(DT_TOKEN, ts, nonce, encrypt) if sign else "0" * 40
    try:
        DINGTALK_EVENTS.decrypt(sig, ts, nonce, encrypt)
    except SignatureError:
        pass


# --------------------------------------------------------------------------------------------- Feishu
FEISHU_TYPES = [
    "im.message.receive_v1",
    "card.action.trigger",
    "contact.user.created_v3",
    "contact.user.updated_v3",
    "contact.user.deleted_v3",
    "url_verification",
]


@st.composite
def feishu_shaped(draw: st.DrawFn) -> dict[str, Any]:
    header = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "event_id": json_values,
                "event_type": st.sampled_from(FEISHU_TYPES) | json_values,
                "app_id": st.just("cli_edge") | json_values,
                "token": json_values,
                "create_time": json_values,
            },
        )
    )
    event = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "sender": json_values,
                "message": st.fixed_dictionaries(
                    {},
                    optional={
                        "message_id": json_values,
                        "message_type": st.sampled_from(["text", "image", "post"]) | json_values,
                        "content": json_values.map(json.dumps) | json_values,
                        "chat_type": st.sampled_from(["p2p", "group"]),
                    },
                ),
                "operator": json_values,
                "action": json_values,
                "context": json_values,
                "object": json_values,
            },
        )
    )
    out: dict[str, Any] = {
        "schema": draw(st.sampled_from(["2.0", "", None])),
        "header": header,
        "event": event,
    }
    if draw(st.booleans()):
        out["type"] = draw(st.sampled_from(["url_verification", "event_callback"]) | json_values)
        out["challenge"] = draw(json_values)
    return out


@st.composite
def feishu_events(draw: st.DrawFn) -> dict[str, Any]:
    """Schema 2.0 envelopes with the right token and app id: parsing goes all the way to an event."""
    kind = draw(st.sampled_from(FEISHU_TYPES[:5]))
    sender = {"sender_id": {"open_id": draw(st.sampled_from(["ou_nobody", ""]) | st.text(max_size=10))}}
    event: dict[str, Any]
    if kind == "im.message.receive_v1":
        mtype = draw(st.sampled_from(["text", "image", "post"]))
        content = draw(
            st.builds(lambda t: json.dumps({"text": t}), st.text(max_size=40))
            | st.builds(lambda k: json.dumps({"image_key": k}), json_values)
            | st.text(max_size=20)
        )
        event = {
            "sender": sender,
            "message": {
                "message_id": draw(st.text(min_size=1, max_size=12)),
                "message_type": mtype,
                "content": content,
                "chat_type": draw(st.sampled_from(["p2p", "group"])),
            },
        }
    elif kind == "card.action.trigger":
        event = {
            "operator": {"open_id": draw(st.text(max_size=10))},
            "action": draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "value": json_values | st.just({"value": 'kudos.like|{"x":1}'}),
                        "form_value": json_values,
                        "tag": st.text(max_size=8),
                    },
                )
            ),
            "context": {"open_message_id": draw(st.text(max_size=10))},
        }
    else:
        event = {"object": draw(st.fixed_dictionaries({}, optional={"open_id": json_values}))}
    return {
        "schema": "2.0",
        "header": {
            "event_id": draw(st.text(min_size=1, max_size=20)),
            "event_type": kind,
            "token": "edge-feishu-vtoken-55aa",
            "app_id": "cli_edge",
        },
        "event": event,
    }


@FAST
@given(feishu_events() | feishu_shaped() | st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_feishu_payload(data: dict[str, Any]) -> None:
    try:
        feishu_parse(data, platform="feishu", workspace="cli_edge")
    except CallbackRejected as exc:
        assert 400 <= exc.status < 500


@FAST
@given(
    st.text(max_size=200) | st.binary(max_size=150).map(lambda b: __import__("base64").b64encode(b).decode())
)
def test_feishu_decrypt_and_json(encrypted: str) -> None:
    try:
        fs_crypto.load_json(fs_crypto.decrypt("edge-key", encrypted))
    except CallbackRejected as exc:
        assert exc.status == 400


# ------------------------------------------------------------------------------------------ CSV import
COLUMNS = ["user_id", "name", "department", "manager_id", "hrbp_id", "roles", "timezone", "locale", "extra"]
CELLS = st.sampled_from(
    [
        "",
        "u1",
        "u2",
        "employee",
        "manager,hrbp",
        "ceo",
        "Asia/Shanghai",
        "Mars/Base",
        "en",
        "xx",
        "研发部",
        '"',
    ]
) | st.text(max_size=12)


@st.composite
def org_csv(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=9))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=6))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-8", "gbk"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8")


@FAST
@example(b"user_id,name,department\n\r0")  # csv.Error escaped: `perfloop org import` died with a traceback
@given(org_csv() | st.binary(max_size=300))
def test_org_csv_only_import_error(data: bytes) -> None:
    try:
        org = parse_org_csv(data)
    except CsvImportError as exc:
        assert str(exc)  # a message the operator can read
        return
    assert org.members and all(m.user_id for m in org.members)


# ------------------------------------------------------------------------------------ button payloads
@FAST
@given(
    st.text(max_size=80)
    | st.builds(
        lambda aid, body: f"{aid}|{body}",
        st.sampled_from(sorted(registered_actions()) or ["x"]),
        json_values.map(json.dumps) | st.text(max_size=40),
    )
)
def test_unpack_only_invalid_action(value: str) -> None:
    try:
        payload = unpack(value)
    except InvalidAction:
        return
    assert isinstance(payload, Action)
