"""Every recorded WeCom payload in tests/data/wecom parses into the model its name names (or is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.wecom.inbound import (
    MalformedPayload,
    WeComCardEvent,
    WeComContactChange,
    parse_envelope,
    parse_message,
    to_event,
)
from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage

CORPUS = Path(__file__).parents[1] / "data" / "wecom"
FILES = sorted(CORPUS.glob("*.xml"))
NEUTRAL = {
    "text": TextMessage,
    "image": ImageMessage,
    "template_card_event": CardAction,
    "change_contact": MemberChanged,
    "other": type(None),
}


def test_corpus_is_not_empty() -> None:
    assert {f.name.split("__")[0] for f in FILES} == {*NEUTRAL, "reject"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_payload_parses_into_its_model(path: Path) -> None:
    kind = path.name.split("__")[0]
    raw = path.read_text(encoding="utf-8")
    if kind == "reject":
        with pytest.raises(MalformedPayload):
            parse_message(raw)
        return
    msg = parse_message(raw)
    assert msg.kind == kind
    event = to_event(msg, workspace="ww1234567890abcdef")
    assert type(event) is NEUTRAL[kind]
    if event is not None:
        assert event.platform == "wecom" and event.sender_id == msg.from_user


def test_doc_sample_card_event_fields() -> None:
    msg = parse_message((CORPUS / "template_card_event__doc_sample.xml").read_text())
    assert isinstance(msg, WeComCardEvent)
    assert (msg.event_key, msg.task_id, msg.card_type, msg.response_code) == (
        "key111",
        "taskid111",
        "text_notice",
        "ResponseCode",
    )
    event = to_event(msg, workspace="w")
    assert isinstance(event, CardAction)
    assert event.value == "key111" and event.message_ref == "rc:taskid111:ResponseCode"
    assert event.form == {"QuestionKey1": ["OptionId1", "OptionId2"]}


def test_dropdown_answers_are_single_values() -> None:
    event = to_event(parse_message((CORPUS / "template_card_event__multiple.xml").read_text()), workspace="w")
    assert isinstance(event, CardAction)
    assert event.value == 'evidence.rate|{"evidence_id":7}'
    assert event.form == {"rating": "meets", "follow_up": "none"}


def test_event_ids_follow_wecom_dedupe_keys() -> None:
    text = to_event(parse_message((CORPUS / "text__basic.xml").read_text()), workspace="w")
    assert text is not None and text.event_id == "msg:4363689963896700987"
    raw = (CORPUS / "template_card_event__button.xml").read_text()
    first = to_event(parse_message(raw), workspace="w")
    again = to_event(parse_message(raw), workspace="w")
    other_key = to_event(parse_message(raw.replace('"checkin_id":42', '"checkin_id":43')), workspace="w")
    assert first is not None and again is not None and other_key is not None
    assert first.event_id == again.event_id != other_key.event_id
    assert first.event_id.startswith("card:WangJingLi:1764000200:")


def test_contact_change_becomes_member_changed() -> None:
    msg = parse_message((CORPUS / "change_contact__delete_user.xml").read_text())
    assert isinstance(msg, WeComContactChange)
    event = to_event(msg, workspace="w")
    assert isinstance(event, MemberChanged) and (event.change, event.user_id) == ("deleted", "LiSi")


def test_text_keeps_markup_inside_cdata_verbatim() -> None:
    event = to_event(parse_message((CORPUS / "text__chinese_multiline.xml").read_text()), workspace="w")
    assert isinstance(event, TextMessage)
    assert event.text == "本周完成了接口联调\n下周计划：压测 & 上线 <ok>"


def test_envelope_with_a_dtd_is_refused() -> None:
    with pytest.raises(MalformedPayload):
        parse_envelope(
            b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/hosts">]><xml><Encrypt>&e;</Encrypt></xml>'
        )
    env = parse_envelope(
        b"<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[abc]]></Encrypt>"
        b"<AgentID><![CDATA[1]]></AgentID></xml>"
    )
    assert (env.to_user, env.encrypt, env.agent_id) == ("ww1", "abc", "1")
