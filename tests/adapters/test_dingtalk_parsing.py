"""DingTalk crypto, payload corpus and card rendering: fast tests with no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dingtalk.crypto import DingTalkCrypto

from adapters.dingtalk import inbound
from adapters.dingtalk.crypto import EventCrypto, SignatureError, check_robot_signature, robot_sign
from adapters.dingtalk.render import GENERAL_TEMPLATE_ID, card_param_map, render_card, work_notice
from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage
from cards.actions import pack
from cards.catalogue import Translator
from cards.model import (
    Actions,
    Button,
    Card,
    Divider,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Note,
    Select,
    TextInput,
)
from tests.fakes.dingtalk_harness import DtAccept

DATA = Path(__file__).parents[1] / "data" / "dingtalk"
NOW = 1_577_262_236_757


# ---------------------------------------------------------------- crypto
def test_robot_sign_matches_the_published_algorithm() -> None:
    assert robot_sign("1577262236757", "testsecret") == "J+BiSbR3jshnMXl7lBt86VHVkxu/BShC2VzSWYBVCKE="


def test_robot_signature_checks() -> None:
    good = robot_sign(str(NOW), "s3cret")
    check_robot_signature(str(NOW), good, "s3cret", NOW + 3599_000)
    with pytest.raises(SignatureError, match="stale"):
        check_robot_signature(str(NOW), good, "s3cret", NOW + 3601_000)
    with pytest.raises(SignatureError, match="stale"):
        check_robot_signature(str(NOW), good, "s3cret", NOW - 3601_000)
    with pytest.raises(SignatureError, match="bad signature"):
        check_robot_signature(str(NOW), good, "other", NOW)
    with pytest.raises(SignatureError, match="missing"):
        check_robot_signature(None, good, "s3cret", NOW)
    with pytest.raises(SignatureError):
        check_robot_signature("abc", good, "s3cret", NOW)


SDK_VECTOR = {
    "token": "123456",
    "aes_key": "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij",
    "key": "suite4xxxxxxxxxxxxxxx",
    "ts": "1445827045067",
    "nonce": "nEXhMP4r",
    "sig": "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0",
    "encrypt": (
        "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMe"
        "iZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgU"
        "athB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ=="
    ),
}


def test_event_crypto_decrypts_the_sdk_test_vector() -> None:
    v = SDK_VECTOR
    crypto = EventCrypto(v["token"], v["aes_key"], "someappkey", v["key"])  # second owner key matches
    data = crypto.decrypt(v["sig"], v["ts"], v["nonce"], v["encrypt"])
    assert data == {"EventType": "check_create_suite_url", "Random": "LPIdSnlF", "TestSuiteKey": v["key"]}


def test_event_crypto_rejects_tampering() -> None:
    v = SDK_VECTOR
    crypto = EventCrypto(v["token"], v["aes_key"], v["key"])
    with pytest.raises(SignatureError, match="bad signature"):
        crypto.decrypt("0" * 40, v["ts"], v["nonce"], v["encrypt"])
    with pytest.raises(SignatureError, match="bad signature"):
        crypto.decrypt(v["sig"], v["ts"], "other", v["encrypt"])
    other = EventCrypto(v["token"], v["aes_key"], "not-the-owner")
    with pytest.raises(SignatureError, match="another app"):
        other.decrypt(v["sig"], v["ts"], v["nonce"], v["encrypt"])


def test_encrypted_success_round_trips_through_the_sdk() -> None:
    v = SDK_VECTOR
    answer = EventCrypto(v["token"], v["aes_key"], "appkey1").encrypt("success", 1700000000000)
    assert (
        set(answer) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
        and answer["timeStamp"] == "1700000000000"
    )
    sdk = DingTalkCrypto(v["token"], v["aes_key"], "appkey1")
    assert (
        sdk.decrypt_encrypt_str(
            answer["msg_signature"], answer["timeStamp"], answer["nonce"], answer["encrypt"]
        )
        == "success"
    )


# ---------------------------------------------------------------- corpus
def _parse(kind: str, payload: dict[str, Any]) -> list[Any]:
    if kind == "robot":
        ev = inbound.robot_event(payload, "app")
        return [] if ev is None else [ev]
    if kind == "card":
        return [inbound.card_event(payload, "app")]
    return list(inbound.org_events(payload, "app", event_id="e1"))


EXPECT = {
    "text": TextMessage,
    "image": ImageMessage,
    "card_action": CardAction,
    "member_changed": MemberChanged,
}


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_corpus_parses_into_its_tagged_event(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    if sample["expect"] == "malformed":
        with pytest.raises(inbound.MalformedPayload):
            _parse(sample["kind"], sample["payload"])
        return
    events = _parse(sample["kind"], sample["payload"])
    if sample["expect"] == "none":
        assert events == []
        return
    assert events and all(isinstance(e, EXPECT[sample["expect"]]) for e in events)
    assert all(e.platform == "dingtalk" and e.workspace == "app" for e in events)


def test_corpus_details() -> None:
    def load(name: str) -> dict[str, Any]:
        return dict(json.loads((DATA / name).read_text(encoding="utf-8"))["payload"])

    text = inbound.robot_event(load("robot_text.json"), "app")
    assert isinstance(text, TextMessage) and text.sender_id == "user123" and text.event_id == "msg:msgQ1w2e3"
    pic = inbound.robot_event(load("robot_picture.json"), "app")
    assert isinstance(pic, ImageMessage) and pic.media_ref.startswith("mIofN681YE3f/+m+NntqpcNGsYMT0I8P9pX")
    click = inbound.card_event(load("card_click.json"), "app")
    assert (
        click.value == 'checkin.ack|{"checkin_id":42}' and click.message_ref == "pl-0f3c" and click.form == {}
    )
    custom = inbound.card_event(load("card_click_custom_template.json"), "app")
    assert custom.value == 'checkin.ack|{"checkin_id":42}'
    assert custom.form == {"comment": "good", "tags": ["a", "b"]}
    assert inbound.card_event(load("card_click.json"), "app").event_id == click.event_id
    # Issue 16 #15: a click routes by the button's params alone or by its action id alone.
    only_params = json.dumps({"cardPrivateData": {"params": {"value": click.value}}})
    by_params = {**load("card_click.json"), "content": only_params}
    assert inbound.card_event(by_params, "app").value == click.value
    assert inbound.card_event(by_params, "app").event_id == click.event_id  # same card, person and button
    leave = inbound.org_events(load("event_user_leave_many.json"), "app", event_id="e9")
    assert [(e.change, e.user_id) for e in leave] == [("deleted", "u1"), ("deleted", "u2"), ("deleted", "u3")]
    assert len({e.event_id for e in leave}) == 3


# ---------------------------------------------------------------- rendering
def test_card_json_shape() -> None:
    accept = pack(DtAccept(item_id=7))
    card = Card(
        header=Header(title="Check-in 2026-11-24", subtitle="Week 48", colour="orange"),
        summary="Please answer",
        elements=[
            Markdown(text="How did it go?"),
            Fields(items=[KeyValue(label="Goal", value="Ship v2")]),
            Divider(),
            Note(text="Due Friday"),
            Actions(
                buttons=[
                    Button(label="Accept", value=accept, style="primary"),
                    Button(label="Old", value=accept, disabled=True),
                    Button(label="Refuse", value='dttest.accept|{"item_id":8}', style="danger"),
                ]
            ),
        ],
    )
    out = render_card(card)
    assert out["interactive"] is True and out["cardTemplateId"] == GENERAL_TEMPLATE_ID
    params = out["cardData"]["cardParamMap"]
    assert set(params) == {"title", "markdown", "tips", "sys_full_json_obj"}
    assert all(isinstance(v, str) for v in params.values())
    assert params["title"] == "Check-in 2026-11-24" and params["tips"] == "Please answer"
    assert params["markdown"] == "**Week 48**\n\nHow did it go?\n\n**Goal**: Ship v2\n\n---\n\n> Due Friday"
    buttons = json.loads(params["sys_full_json_obj"])["msgButtons"]
    refuse = 'dttest.accept|{"item_id":8}'
    assert buttons == [
        {"text": "Accept", "color": "blue", "id": accept, "request": True, "params": {"value": accept}},
        {"text": "Refuse", "color": "red", "id": refuse, "request": True, "params": {"value": refuse}},
    ]
    assert render_card(card, template_id="my.schema")["cardTemplateId"] == "my.schema"


def test_card_without_buttons_is_a_plain_robot_markdown() -> None:
    card = Card(header=Header(title="FYI"), elements=[Markdown(text="All done")])
    out = render_card(card)
    assert out["interactive"] is False and out["msgKey"] == "sampleMarkdown"
    assert json.loads(out["msgParam"]) == {"title": "FYI", "text": "All done"}
    assert json.loads(card_param_map(card.disabled())["sys_full_json_obj"]) == {"msgButtons": []}


def test_form_is_listed_as_questions_and_its_submit_is_a_button() -> None:
    submit = Button(label="Submit", value=pack(DtAccept(item_id=1)))
    card = Card(
        header=Header(title="Review"),
        elements=[
            Form(
                name="r",
                submit=submit,
                inputs=[
                    TextInput(name="solid", label="One solid action", placeholder="what you did"),
                    Select(
                        name="mood",
                        label="Mood",
                        options=[{"label": "Good", "value": "g"}, {"label": "Bad", "value": "b"}],
                    ),
                ],
            )
        ],
    )
    params = card_param_map(card, Translator("en"))
    assert "1. One solid action (what you did)" in params["markdown"]
    assert "2. Mood: Good / Bad" in params["markdown"]
    assert json.loads(params["sys_full_json_obj"])["msgButtons"][0]["id"] == submit.value
    notice = work_notice(card, Translator("en"))
    assert notice["msgtype"] == "markdown" and "robot chat" in notice["markdown"]["text"]


def test_fake_payloads_parse_with_the_official_sdk_models() -> None:
    """The fake's frames are what dingtalk-stream's own models expect (a check on the fake itself)."""
    from dingtalk_stream import CardCallbackMessage, ChatbotMessage

    from tests.fakes.dingtalk import FakeDingTalk

    fake = FakeDingTalk()
    text = ChatbotMessage.from_dict(fake.robot_message("emp1", text="hi"))
    assert text.sender_staff_id == "emp1" and text.text.content == "hi" and text.conversation_type == "1"
    pic = ChatbotMessage.from_dict(fake.robot_message("emp1", download_code="dc1"))
    assert pic.message_type == "picture" and pic.image_content.download_code == "dc1"
    click = CardCallbackMessage.from_dict(fake.card_callback("pl-1", "emp1", "a.b|{}", {"x": "1"}))
    assert click.card_instance_id == "pl-1" and click.user_id == "emp1"
    assert click.content == {"cardPrivateData": {"actionIds": ["a.b|{}"], "params": {"x": "1"}}}
    button = {"id": "a.b|{}", "params": {"value": "a.b|{}", "pl_sig": "1.ab"}}
    click = CardCallbackMessage.from_dict(fake.card_callback("pl-1", "emp1", button, {"x": "1"}))
    assert click.content == {"cardPrivateData": {"params": {"value": "a.b|{}", "pl_sig": "1.ab", "x": "1"}}}
