from __future__ import annotations

import pytest
from pydantic import ValidationError

from cards.actions import Action, InvalidAction, action, pack, unpack
from cards.catalogue import LOCALES, Translator, messages
from cards.model import Actions, Button, Card, Form, Header, Markdown, Select, TextInput


@action("test.card.ack")
class Ack(Action):
    record_id: int


def ok_button() -> Button:
    return Button(label="确认", value=pack(Ack(record_id=1)))


def test_pack_unpack_round_trip() -> None:
    value = pack(Ack(record_id=42))
    assert value == 'test.card.ack|{"record_id":42}'
    assert unpack(value) == Ack(record_id=42)
    with pytest.raises(InvalidAction):
        unpack('test.card.ack|{"record_id":"x"}')


def test_button_without_action_id_is_rejected() -> None:
    with pytest.raises(ValidationError, match="packed action"):
        Button(label="ok", value='{"record_id":1}')
    with pytest.raises(ValidationError):
        Button(label="ok", value="")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Header(title="x" * 61),
        lambda: Markdown(text="字" * 2001),
        lambda: Button(label="这是一个非常非常非常非常非常长的按钮标签文字", value=pack(Ack(record_id=1))),
        lambda: TextInput(name="Bad Name", label="x"),
        lambda: TextInput(name="ok", label="x", max_length=5000),
        lambda: Select(name="s", label="x", options=[]),
        lambda: Card(header=Header(title="t"), elements=[]),
    ],
)
def test_over_long_or_malformed_parts_are_rejected(make: object) -> None:
    with pytest.raises(ValidationError):
        make()  # type: ignore[operator]


def test_form_names_unique() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Form(
            name="f",
            inputs=[TextInput(name="a", label="A"), TextInput(name="a", label="B")],
            submit=ok_button(),
        )


def test_disabled_card_keeps_content_and_disables_buttons() -> None:
    card = Card(
        header=Header(title="t"),
        elements=[
            Markdown(text="hello"),
            Actions(buttons=[ok_button()]),
            Form(name="f", inputs=[TextInput(name="a", label="A")], submit=ok_button()),
        ],
    )
    done = card.disabled()
    assert [b.disabled for b in done.buttons()] == [True]
    assert not done.forms()
    assert done.elements[0] == Markdown(text="hello")


def test_card_json_round_trip() -> None:
    card = Card(
        header=Header(title="t", colour="green"),
        elements=[
            Form(
                name="f",
                inputs=[TextInput(name="a", label="A", multiline=True, required=True)],
                submit=ok_button(),
            )
        ],
    )
    assert Card.model_validate(card.model_dump(mode="json")) == card


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    zh, en = messages("zh-CN"), messages("en")
    assert set(zh) == set(en), sorted(set(zh) ^ set(en))[:10]
    import string

    for key in zh:
        if isinstance(zh[key], str):
            fields_zh = {f for _, f, _, _ in string.Formatter().parse(zh[key]) if f}
            fields_en = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
            assert fields_zh == fields_en, key


def test_translator_locale_fallback_and_missing_key() -> None:
    assert Translator("en-US")("common.cancel") == "Cancel"
    assert Translator(None)("common.cancel") == "取消"
    assert Translator("fr")("common.cancel") == "取消"
    with pytest.raises(KeyError):
        Translator("en")("no.such.key")
    assert set(LOCALES) == {"zh-CN", "en"}
