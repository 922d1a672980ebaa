"""Feishu pieces that need no server: crypto vectors, the payload corpus, card JSON 2.0, the uuid rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark_oapi.core.utils import AESCipher

from adapters.base import CallbackRejected
from adapters.feishu import crypto
from adapters.feishu.client import checked_api_base, idempotency_uuid
from adapters.feishu.inbound import packed_from_name, parse_payload, split_media_ref, submit_name
from adapters.feishu.render import render_card
from bot.core.events import CardAction, UrlVerification
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Divider,
    Fields,
    Form,
    Header,
    Image,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from tests.fakes.feishu import card_problem, encrypt

CORPUS = sorted((Path(__file__).parents[1] / "data" / "feishu").glob("*.json"))


def test_official_aes_vector_decrypts_with_lark_cipher() -> None:
    assert crypto.decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == "hello world"


def test_signature_vector() -> None:
    body = b'{"encrypt":"P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="}'
    expected = "669e3ed5328644f71370e3249f96af0fd17e5ed4d7b178c44f11f7997339e344"
    assert crypto.signature("1700000000", "nonce123", "test key", body) == expected
    crypto.verify_signature(
        timestamp="1700000000", nonce="nonce123", given=expected, encrypt_key="test key", body=body
    )
    with pytest.raises(CallbackRejected) as bad:
        crypto.verify_signature(
            timestamp="1700000001", nonce="nonce123", given=expected, encrypt_key="test key", body=body
        )
    assert bad.value.status == 401
    with pytest.raises(CallbackRejected):
        crypto.verify_signature(timestamp=None, nonce="n", given=expected, encrypt_key="test key", body=body)


def test_fake_encryption_is_what_lark_oapi_decrypts() -> None:
    text = json.dumps({"challenge": "挑战", "pad": "x" * 37}, ensure_ascii=False)
    sealed = encrypt("some key", text)
    assert AESCipher("some key").decrypt_str(sealed) == text
    assert encrypt("some key", text) != sealed  # a fresh IV each time, as Feishu does


@pytest.mark.parametrize(
    "bad",
    ["not base64!!", "AAAA", encrypt("other key", '{"a":1}')],
    ids=["not-base64", "too-short", "other-key"],
)
def test_bad_ciphertext_is_rejected(bad: str) -> None:
    with pytest.raises(CallbackRejected) as exc:
        crypto.load_json(crypto.decrypt("some key", bad))
    assert exc.value.status == 400


def test_token_check_is_strict() -> None:
    crypto.check_token("tok", "tok")
    for bad in (None, "", "tok2", 5):
        with pytest.raises(CallbackRejected):
            crypto.check_token("tok", bad)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_parses_to_the_tagged_event(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_payload(sample["payload"], platform="feishu", workspace="cli_fake")
    expect: dict[str, Any] | None = sample["expect"]
    if expect is None:
        assert parsed is None
        return
    assert parsed is not None
    assert parsed.kind == expect.pop("kind")
    if not isinstance(parsed, UrlVerification):
        assert parsed.platform == "feishu" and parsed.workspace == "cli_fake"
    for key, value in expect.items():
        assert getattr(parsed, key) == value, key


def test_corpus_covers_every_event_kind() -> None:
    kinds = {(json.loads(p.read_text())["expect"] or {}).get("kind") for p in CORPUS}
    assert kinds == {None, "url_verification", "text", "image", "card_action", "member_changed"}


def test_event_for_another_app_is_rejected() -> None:
    sample = json.loads((Path(__file__).parents[1] / "data" / "feishu" / "im_message_text.json").read_text())
    with pytest.raises(CallbackRejected) as exc:
        parse_payload(sample["payload"], platform="feishu", workspace="cli_other")
    assert exc.value.status == 403


def test_media_ref_round_trip() -> None:
    assert split_media_ref("om_1:img_v2_x") == ("om_1", "img_v2_x")
    with pytest.raises(ValueError):
        split_media_ref("img_only")


def _card() -> Card:
    return Card(
        header=Header(title="双周进展", subtitle="2026-11-24", colour="green"),
        summary="请填写本期进展",
        elements=[
            Markdown(text="**张三**，请填写"),
            Fields(items=[KeyValue(label="目标", value="上线 *A*")]),
            Note(text="截止 周五"),
            Divider(),
            Image(media_id="img_v3_chart", alt="趋势图"),
            Image(media_id="a" * 64, alt="证据"),
            Actions(
                buttons=[
                    Button(label="确认", value='checkin.ack|{"checkin_id":1}', style="primary"),
                    Button(label="约 1:1", value='checkin.meet|{"checkin_id":1}', disabled=True),
                ]
            ),
            Form(
                name="checkin",
                inputs=[
                    TextInput(
                        name="progress",
                        label="进展",
                        placeholder="做了什么",
                        multiline=True,
                        required=True,
                        max_length=2000,
                        default="初稿",
                    ),
                    Select(
                        name="mood",
                        label="状态",
                        options=[Option(label="顺利", value="good"), Option(label="受阻", value="blocked")],
                        default="good",
                    ),
                    Select(name="tags", label="标签", multiple=True, options=[Option(label="A", value="a")]),
                    DatePicker(name="due", label="下次", default="2026-12-01"),
                ],
                submit=Button(label="提交", value='checkin.submit|{"checkin_id":1}', style="primary"),
                cancel=Button(label="取消", value='checkin.cancel|{"checkin_id":1}'),
            ),
        ],
    )


def test_card_json_2_shape_with_real_form_container() -> None:
    out = render_card(_card(), image_keys={"a" * 64: "img_v3_uploaded"})
    assert out["schema"] == "2.0"
    assert out["config"] == {"update_multi": True, "summary": {"content": "请填写本期进展"}}
    assert out["header"] == {
        "title": {"tag": "plain_text", "content": "双周进展"},
        "template": "green",
        "subtitle": {"tag": "plain_text", "content": "2026-11-24"},
    }
    els = out["body"]["elements"]
    assert [e["tag"] for e in els] == [
        "markdown",
        "column_set",
        "markdown",
        "hr",
        "img",
        "img",
        "column_set",
        "form",
        "column_set",
    ]
    label, value = (c["elements"][0]["content"] for c in els[1]["columns"])
    assert (label, value) == ("**目标**", "上线 \\*A\\*")
    assert els[2]["text_size"] == "notation"
    assert els[4]["img_key"] == "img_v3_chart" and els[5]["img_key"] == "img_v3_uploaded"
    row = [c["elements"][0] for c in els[6]["columns"]]
    assert row[0]["behaviors"] == [
        {"type": "callback", "value": {"perfloop": 'checkin.ack|{"checkin_id":1}'}}
    ]
    assert row[0]["type"] == "primary_filled" and row[1]["disabled"] is True
    assert len({b["name"] for b in row}) == 2

    form = els[7]
    assert form["name"] == "checkin"
    inner = {e.get("name"): e for e in form["elements"] if e.get("name")}
    assert inner["progress"]["tag"] == "input" and inner["progress"]["required"] is True
    assert inner["progress"]["input_type"] == "multiline_text" and inner["progress"]["max_length"] == 1000
    assert inner["progress"]["default_value"] == "初稿"
    assert inner["mood"]["tag"] == "select_static" and inner["mood"]["initial_option"] == "good"
    assert inner["mood"]["options"][1] == {
        "text": {"tag": "plain_text", "content": "受阻"},
        "value": "blocked",
    }
    assert inner["tags"]["tag"] == "multi_select_static"
    assert inner["due"]["tag"] == "date_picker" and inner["due"]["initial_date"] == "2026-12-01"
    submit = form["elements"][-1]
    assert submit["tag"] == "button" and submit["form_action_type"] == "submit"
    assert submit["behaviors"][0]["value"] == {"perfloop": 'checkin.submit|{"checkin_id":1}'}
    cancel = els[8]["columns"][0]["elements"][0]
    assert "form_action_type" not in cancel
    assert len(json.dumps(out, ensure_ascii=False).encode()) < 30 * 1024
    assert card_problem(out) is None


def test_fake_card_rules_catch_what_feishu_rejects() -> None:
    good = render_card(_card())
    assert card_problem(good) is None
    bad_value = json.loads(json.dumps(good))
    bad_value["body"]["elements"][7]["elements"][-1]["behaviors"][0]["value"] = "checkin.submit|{}"
    assert card_problem(bad_value) == "callback values must be JSON objects"
    no_submit = json.loads(json.dumps(good))
    no_submit["body"]["elements"][7]["elements"].pop()
    assert card_problem(no_submit) == "a form needs a submit button"
    dup = json.loads(json.dumps(good))
    dup["body"]["elements"].append(dup["body"]["elements"][6])
    assert card_problem(dup) == "component names must be unique in a card"


def test_image_without_upload_degrades_to_alt_text() -> None:
    card = Card(
        header=Header(title="t"), elements=[Image(media_id="b" * 64, alt="图"), Image(media_id="c" * 64)]
    )
    assert render_card(card)["body"]["elements"] == [{"tag": "markdown", "content": "图"}]


def test_idempotency_uuid_respects_the_50_char_limit() -> None:
    assert idempotency_uuid("perfloop-outbox-12") == "perfloop-outbox-12"
    long_key = "perfloop-outbox-123456789-" + "x" * 60
    assert len(idempotency_uuid(long_key)) == 50
    assert idempotency_uuid(long_key) == idempotency_uuid(long_key)
    assert idempotency_uuid(long_key) != idempotency_uuid(long_key + "1")


def test_fake_feishu_requests_pass_lark_oapi_own_verification() -> None:
    """What the fake POSTs is accepted by lark-oapi's EventDispatcherHandler (decrypt + token + signature)."""
    from lark_oapi import EventDispatcherHandler
    from lark_oapi.core.model import RawRequest
    from lark_oapi.event.callback.model.p2_card_action_trigger import (
        P2CardActionTrigger,
        P2CardActionTriggerResponse,
    )

    from tests.fakes.feishu import FakeFeishu

    fake = FakeFeishu()
    seen: list[P2CardActionTrigger] = []

    def on_card(data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        seen.append(data)
        return P2CardActionTriggerResponse({"toast": {"type": "info", "content": "ok"}})

    handler = (
        EventDispatcherHandler.builder(fake.encrypt_key, fake.verification_token)
        .register_p2_card_action_trigger(on_card)
        .build()
    )

    def run(body: bytes, headers: dict[str, str]) -> int:
        req = RawRequest()
        req.uri, req.headers, req.body = "/callbacks/feishu", headers, body
        return int(handler.do(req).status_code)

    body, headers = fake.seal(fake.card_click("ou_1", 'x.y|{"a":1}', message_id="om_9"))
    assert run(body, headers) == 200
    assert seen[0].event.context.open_message_id == "om_9"
    assert seen[0].event.action.value == {"perfloop": 'x.y|{"a":1}'}
    tampered = dict(headers, **{"X-Lark-Signature": "0" * 64})
    assert run(body, tampered) == 500  # the SDK's answer to a failed signature check
    assert len(seen) == 1


# ---------------------------------------------------------------------------------------- property: any card
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
)
_name = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
_packed = st.builds(lambda a, n: f'prop.{a}|{{"n":{n}}}', _name, st.integers(0, 10**9))
_button = st.builds(
    Button,
    label=_text.map(lambda t: t[:20]),
    value=_packed,
    style=st.sampled_from(["primary", "default", "danger"]),
    disabled=st.booleans(),
)
_option = st.builds(Option, label=_text, value=_name)


def _inputs(names: list[str]) -> st.SearchStrategy[list[Any]]:
    def one(name: str) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(
                TextInput,
                name=st.just(name),
                label=_text,
                multiline=st.booleans(),
                required=st.booleans(),
                max_length=st.integers(1, 2000),
                placeholder=st.none() | _text,
            ),
            st.builds(
                Select,
                name=st.just(name),
                label=_text,
                options=st.lists(_option, min_size=1, max_size=4),
                multiple=st.booleans(),
                required=st.booleans(),
            ),
            st.builds(
                DatePicker,
                name=st.just(name),
                label=_text,
                required=st.booleans(),
                default=st.none() | st.dates().map(lambda d: d.isoformat()),
            ),
        )

    return st.tuples(*(one(n) for n in names)).map(list)


_form = st.builds(
    lambda fname, names, data, submit, cancel: Form(
        name=fname, inputs=data.draw(_inputs(names)), submit=submit, cancel=cancel
    ),
    _name,
    st.lists(_name, min_size=1, max_size=4, unique=True),
    st.data(),
    _button,
    st.none() | _button,
)
_element = st.one_of(
    st.builds(Markdown, text=_text),
    st.builds(Fields, items=st.lists(st.builds(KeyValue, label=_text, value=_text), min_size=1, max_size=3)),
    st.builds(Note, text=_text),
    st.just(Divider()),
    st.builds(Image, media_id=st.sampled_from(["img_v3_x", "f" * 64]), alt=_text),
    st.builds(Actions, buttons=st.lists(_button, min_size=1, max_size=4)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=_text,
    elements=st.lists(_element, min_size=1, max_size=6),
    form=st.none() | _form,
)
def test_any_neutral_card_renders_to_a_card_feishu_accepts(
    title: str, elements: list[Any], form: Form | None
) -> None:
    card = Card(header=Header(title=title), elements=[*elements, *([form] if form else [])])
    out = render_card(card)
    assert card_problem(out) is None
    json.dumps(out, ensure_ascii=False)
    # Every button's callback value carries exactly the packed action the neutral button had.
    packed = sorted(b.value for b in card.buttons())
    found: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                found.append(node["behaviors"][0]["value"]["perfloop"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(out)
    assert sorted(found) == packed


def test_api_base_must_be_https_or_a_loopback_fake() -> None:
    assert checked_api_base("https://open.larksuite.com/") == "https://open.larksuite.com"
    assert checked_api_base("http://127.0.0.1:8081") == "http://127.0.0.1:8081"
    for bad in ("http://open.feishu.cn", "ftp://x", "https://open.feishu.cn/open-apis", "open.feishu.cn"):
        with pytest.raises(ValueError):
            checked_api_base(bad)


def test_our_aes_decrypt_matches_lark_oapis_cipher() -> None:
    import os

    from lark_oapi.core.utils import AESCipher

    from adapters.feishu.crypto import aes_decrypt

    for n in range(40):
        key = os.urandom(8).hex()
        blob = os.urandom(16 * (2 + n % 5))
        try:
            theirs: bytes | str = AESCipher(key).decrypt(blob)
        except ValueError as exc:
            theirs = str(exc)
        try:
            ours: bytes | str = aes_decrypt(key, blob)
        except ValueError as exc:
            ours = str(exc)
        assert ours == theirs


def test_form_submit_routes_by_the_button_name_without_behaviors() -> None:
    """Issue 16 #16: Lark's docs say a button inside a form uses ``form_action_type``, not ``behaviors``,
    so ``action.value`` may be empty on a submit; the submit button's name carries the action."""
    packed = 'checkin.submit|{"checkin_id":1,"note":"a_b"}'
    form = render_card(_card())["body"]["elements"][7]
    submit = form["elements"][-1]
    assert submit["form_action_type"] == "submit" and submit["name"].startswith("S_checkin_")
    assert packed_from_name(submit_name("check_in", packed)) == packed
    event: dict[str, Any] = {
        "schema": "2.0",
        "header": {"event_id": "ev-form", "event_type": "card.action.trigger", "app_id": "cli_x"},
        "event": {
            "operator": {"open_id": "ou_1"},
            "action": {"tag": "button", "name": submit["name"], "form_value": {"progress": "ok"}},
            "context": {"open_message_id": "om_1"},
        },
    }
    click = parse_payload(event, platform="feishu", workspace="cli_x")
    assert isinstance(click, CardAction)
    assert click.value == 'checkin.submit|{"checkin_id":1}' and click.form == {"progress": "ok"}
    # A name that is not ours (or is garbled) routes nowhere rather than somewhere wrong.
    for name in ("B0_0", "S_checkin", "S_checkin_!!!!", "S_x_" + submit_name("x", "not packed")[4:]):
        event["event"]["action"]["name"] = name
        other = parse_payload(event, platform="feishu", workspace="cli_x")
        assert isinstance(other, CardAction) and other.value == ""
