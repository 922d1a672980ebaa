"""Neutral Card → DingTalk's JSON.

Interactive cards use DingTalk's public, JSON-driven "markdown + buttons" card template (the one
dingtalk-stream's ``MarkdownButtonCardInstance`` uses), so nobody has to draw a card in the card builder:
``cardParamMap`` = ``title``, ``markdown``, ``tips`` and ``sys_full_json_obj`` = ``{"msgButtons": [...]}``. A
button with ``"request": true`` sends a card callback. Public code disagrees on where the clicked button
comes back (``cardPrivateData.actionIds`` holding its ``id``, or ``cardPrivateData.params`` holding its
``params``), so our packed action goes in both and the click routes by either without a server-side
lookup; ``params`` also carries the per-card click token (``inbound.ClickSigner``) when a signer is given.
A template of your own (``[dingtalk] card_template_id``) receives the same four variables.

Cards have no text inputs here (``supports_text_inputs = False``): a Form is shown as the list of questions
and its submit button; the dispatcher collects the answers as the person's next chat messages.
Cards without buttons go out as plain robot markdown messages (``sampleMarkdown``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from adapters.dingtalk.inbound import CLICK_TOKEN_PARAM, VALUE_PARAM
from cards.catalogue import Translator
from cards.model import (
    Actions,
    Button,
    Card,
    DatePicker,
    Divider,
    Fields,
    Form,
    Image,
    Markdown,
    Note,
    Select,
    TextInput,
)

GENERAL_TEMPLATE_ID = "1366a1eb-bc54-4859-ac88-517c56a9acb1.schema"
MAX_MARKDOWN = 5000
COLOURS = {"primary": "blue", "default": "gray", "danger": "red"}


Sign = Callable[[str], str]
"""Packed action → the click token for this card and recipient."""


def button_json(button: Button, sign: Sign | None = None) -> dict[str, Any]:
    params = {VALUE_PARAM: button.value}
    if sign is not None:
        params[CLICK_TOKEN_PARAM] = sign(button.value)
    return {
        "text": button.label,
        "color": COLOURS[button.style],
        "id": button.value,
        "request": True,
        "params": params,
    }


def active_buttons(card: Card) -> list[Button]:
    """Disabled buttons are left out: the general template has no disabled state, and a missing button
    cannot be clicked."""
    return [b for b in card.buttons() if not b.disabled]


def is_interactive(card: Card) -> bool:
    return bool(active_buttons(card))


def _form_lines(form: Form, t: Translator) -> list[str]:
    lines = [f"**{t('dingtalk.form_intro')}**"]
    for i, item in enumerate(form.inputs, 1):
        if isinstance(item, TextInput):
            hint = f" ({item.placeholder})" if item.placeholder else ""
            lines.append(f"{i}. {item.label}{hint}")
        elif isinstance(item, Select):
            options = " / ".join(o.label for o in item.options)
            lines.append(f"{i}. {item.label}: {options}")
        elif isinstance(item, DatePicker):
            lines.append(f"{i}. {item.label} (YYYY-MM-DD)")
    return lines


def card_markdown(card: Card, t: Translator | None = None) -> str:
    t = t or Translator(None)
    parts: list[str] = []
    if card.header.subtitle:
        parts.append(f"**{card.header.subtitle}**")
    for el in card.elements:
        if isinstance(el, Markdown):
            parts.append(el.text)
        elif isinstance(el, Fields):
            parts.append("\n".join(f"**{kv.label}**: {kv.value}" for kv in el.items))
        elif isinstance(el, Image):
            if el.media_id.startswith("@"):
                parts.append(f"![{el.alt}]({el.media_id})")
            elif el.alt:
                parts.append(f"[{el.alt}]")
        elif isinstance(el, Note):
            parts.append(f"> {el.text}")
        elif isinstance(el, Divider):
            parts.append("---")
        elif isinstance(el, Form):
            parts.append("\n".join(_form_lines(el, t)))
        elif isinstance(el, Actions):
            continue
    text = "\n\n".join(parts) or card.header.title
    return text[:MAX_MARKDOWN]


def card_param_map(card: Card, t: Translator | None = None, *, sign: Sign | None = None) -> dict[str, str]:
    """DingTalk's cardParamMap is ``Map<String, String>``: every value is a string, lists go in as JSON.
    ``sign`` is given per recipient (the token binds the out-track id and the person)."""
    tips = card.summary or ""
    return {
        "title": card.header.title,
        "markdown": card_markdown(card, t),
        "tips": tips,
        "sys_full_json_obj": json.dumps(
            {"msgButtons": [button_json(b, sign) for b in active_buttons(card)]},
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    }


def render_card(card: Card, *, template_id: str = "", t: Translator | None = None) -> dict[str, Any]:
    """Both forms a card can take: the interactive card body and the plain robot message."""
    params = card_param_map(card, t)
    return {
        "interactive": is_interactive(card),
        "cardTemplateId": template_id or GENERAL_TEMPLATE_ID,
        "cardData": {"cardParamMap": params},
        "msgKey": "sampleMarkdown",
        "msgParam": json.dumps({"title": card.header.title, "text": params["markdown"]}, ensure_ascii=False),
    }


def work_notice(card: Card, t: Translator | None = None) -> dict[str, Any]:
    """The ``asyncsend_v2`` fallback: a markdown work notification. Buttons cannot call back from there, so
    the text tells the person to answer in the robot chat."""
    t = t or Translator(None)
    text = card_markdown(card, t)
    if is_interactive(card):
        text = f"{text}\n\n> {t('dingtalk.answer_in_robot_chat')}"
    return {"msgtype": "markdown", "markdown": {"title": card.header.title, "text": text[:MAX_MARKDOWN]}}
