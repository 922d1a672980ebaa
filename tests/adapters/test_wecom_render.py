"""Neutral cards → WeCom template_card JSON, each checked against the documented shape (the fake's
validator encodes the field rules of docs 90236/90372)."""

from __future__ import annotations

import pytest

from adapters.wecom.render import RenderError, render_card
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from tests.fakes.wecom import validate_template_card

URL = "https://perfloop.example.com"


def btn(label: str, n: int, style: str = "default") -> Button:
    return Button(label=label, value=f'wecomtest.ack|{{"checkin_id":{n}}}', style=style)  # type: ignore[arg-type]


def render(card: Card, task_id: str = "pl-test_1") -> dict:
    out = render_card(card, task_id=task_id, link_url=URL)
    assert validate_template_card(out) == [], out
    return out


def test_notice_is_a_text_notice_with_a_card_action() -> None:
    card = Card(
        header=Header(title="本周复盘", subtitle="2026-W48"),
        elements=[
            Markdown(text="**完成** 接口联调"),
            Fields(items=[KeyValue(label="完成率", value="80%")]),
            Note(text="截止 周五"),
        ],
    )
    out = render(card)
    assert out["card_type"] == "text_notice"
    assert out["card_action"] == {"type": 1, "url": URL}
    assert out["main_title"] == {"title": "本周复盘", "desc": "2026-W48"}
    assert out["sub_title_text"] == "完成 接口联调"
    assert out["horizontal_content_list"] == [{"keyname": "完成率", "value": "80%"}]
    assert out["quote_area"]["quote_text"] == "截止 周五"


def test_buttons_become_button_interaction_with_packed_keys() -> None:
    card = Card(
        header=Header(title="Check-in"),
        elements=[
            Markdown(text="Progress 60%"),
            Actions(
                buttons=[
                    btn("Acknowledge", 1, "primary"),
                    btn("Ask for 1:1", 2),
                    btn("Escalate", 3, "danger"),
                ]
            ),
        ],
    )
    out = render(card)
    assert out["card_type"] == "button_interaction"
    assert [(b["text"], b["style"], b["key"]) for b in out["button_list"]] == [
        ("Acknowledge", 1, 'wecomtest.ack|{"checkin_id":1}'),
        ("Ask for 1:1", 4, 'wecomtest.ack|{"checkin_id":2}'),
        ("Escalate", 2, 'wecomtest.ack|{"checkin_id":3}'),
    ]
    assert out["task_id"] == "pl-test_1"


def test_a_decided_card_greys_its_buttons_out() -> None:
    card = Card(
        header=Header(title="Check-in"), elements=[Actions(buttons=[btn("Acknowledge", 1)])]
    ).disabled()
    out = render(card)
    assert out["card_type"] == "button_interaction" and out["replace_text"] == "Acknowledge"


def test_a_form_with_text_questions_lists_them_and_submits_by_button() -> None:
    form = Form(
        name="checkin",
        inputs=[
            TextInput(name="progress", label="What moved forward?", required=True),
            Select(
                name="mood",
                label="Mood",
                options=[Option(label="Good", value="good"), Option(label="Stuck", value="stuck")],
            ),
            DatePicker(name="next_date", label="Next step by"),
        ],
        submit=btn("Submit", 9, "primary"),
        cancel=btn("Later", 10),
    )
    out = render(Card(header=Header(title="Bi-weekly check-in"), elements=[form]))
    assert out["card_type"] == "button_interaction"
    assert out["button_selection"]["question_key"] == "mood"
    assert [o["id"] for o in out["button_selection"]["option_list"]] == ["good", "stuck"]
    assert "· What moved forward?" in out["sub_title_text"] and "· Next step by" in out["sub_title_text"]
    assert "Mood" not in out["sub_title_text"]
    assert [b["text"] for b in out["button_list"]] == ["Submit", "Later"]


def test_dropdown_only_form_is_a_multiple_interaction() -> None:
    opts = [Option(label=x, value=x) for x in ("meets", "improve", "support")]
    form = Form(
        name="rate",
        inputs=[
            Select(name="rating", label="Rating", options=opts, default="improve"),
            Select(name="follow", label="Follow-up", options=opts[:2]),
        ],
        submit=btn("Rate", 4),
    )
    out = render(
        Card(
            header=Header(title="Rate evidence"),
            elements=[Fields(items=[KeyValue(label="Who", value="张三")]), form],
        )
    )
    assert out["card_type"] == "multiple_interaction"
    assert [s["question_key"] for s in out["select_list"]] == ["rating", "follow"]
    assert out["select_list"][0]["selected_id"] == "improve"
    assert out["submit_button"]["key"] == 'wecomtest.ack|{"checkin_id":4}'
    assert "horizontal_content_list" not in out and "Who: 张三" in out["main_title"]["desc"]


def test_multiple_choice_select_is_a_vote_interaction() -> None:
    form = Form(
        name="pick",
        inputs=[
            Select(
                name="goals",
                label="Which goals?",
                multiple=True,
                options=[Option(label=f"G{i}", value=f"g{i}") for i in range(12)],
            )
        ],
        submit=btn("OK", 5),
    )
    out = render(Card(header=Header(title="Goals"), elements=[form]))
    assert out["card_type"] == "vote_interaction"
    assert out["checkbox"]["mode"] == 1 and len(out["checkbox"]["option_list"]) == 12


def test_questions_that_do_not_fit_are_left_to_the_chat() -> None:
    big = Select(
        name="owner", label="Owner", options=[Option(label=f"P{i}", value=f"p{i}") for i in range(15)]
    )
    out = render(
        Card(header=Header(title="Assign"), elements=[Form(name="a", inputs=[big], submit=btn("Go", 6))])
    )
    assert out["card_type"] == "button_interaction" and "button_selection" not in out
    assert "· Owner" in out["sub_title_text"]


def test_button_keys_fit_wecoms_1024_bytes() -> None:
    longest = Button(label="x", value="a.b|" + "x" * 996)
    assert len(longest.value.encode()) == 1000
    render(Card(header=Header(title="t"), elements=[Actions(buttons=[longest])]))


def test_what_cannot_be_shown_fails_clearly() -> None:
    seven = Card(
        header=Header(title="t"),
        elements=[
            Actions(buttons=[btn(f"b{i}", i) for i in range(6)]),
            Form(name="f", inputs=[TextInput(name="x", label="x")], submit=btn("s", 99)),
        ],
    )
    with pytest.raises(RenderError, match="6"):
        render_card(seven, task_id="pl-1", link_url=URL)
    dup = Card(header=Header(title="t"), elements=[Actions(buttons=[btn("a", 1), btn("b", 1)])])
    with pytest.raises(RenderError, match="same value"):
        render_card(dup, task_id="pl-1", link_url=URL)
    with pytest.raises(RenderError, match="task_id"):
        render_card(dup, task_id="has space", link_url=URL)


def test_validator_catches_what_wecom_would_refuse() -> None:
    assert validate_template_card(
        {"card_type": "text_notice", "main_title": {"title": "x"}}
    )  # no card_action
    bad = {
        "card_type": "button_interaction",
        "main_title": {"title": "x"},
        "task_id": "t",
        "button_list": [{"text": "a", "key": "k" * 1025}],
    }
    assert any("1024" in p for p in validate_template_card(bad))
