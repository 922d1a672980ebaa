"""Neutral Card → WeCom ``template_card`` JSON (message/send and message/update_template_card).

Which card type:
- no buttons, no form → ``text_notice`` (it needs a ``card_action``: the perfloop public URL);
- buttons → ``button_interaction``;
- a form of dropdowns only → ``multiple_interaction`` (≤ 3 single-choice dropdowns of ≤ 10 options) or
  ``vote_interaction`` (one multiple-choice select of ≤ 20 options, as checkboxes);
- a form with text inputs or date pickers → ``button_interaction``: WeCom cards cannot hold free text, so the
  text questions are listed on the card, the submit button is an ordinary button, and the dispatcher collects
  the answers as the person's next chat messages (``WeComAdapter.supports_text_inputs = False``). One
  single-choice dropdown of ≤ 10 options can ride along as the card's ``button_selection``.

Questions that do not fit on the card (a second dropdown beside buttons, a dropdown of more than 10 options)
are listed on it and asked in chat after the submit click, like text questions. What cannot be shown at all
(more than 6 buttons, two forms, duplicate button keys, a key over 1024 bytes) raises ``RenderError`` (a
PermanentError: the outbox dead-letters the row with the reason) instead of silently dropping a button.

Button keys carry the packed action value itself (``cards.actions.pack``). WeCom allows 1024 bytes per
key (doc 90236: "最长支持1024字节"); ``cards.model.Button`` caps values at 1000 characters and ``pack``
writes ASCII JSON, so every valid card fits. The byte length is still checked here so a future non-ASCII
value fails loudly rather than being truncated by WeCom.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.base import PermanentError
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
from cards.text import shorten as _clip

KEY_MAX_BYTES = 1024
OPTION_ID_MAX_BYTES = 128
MAX_BUTTONS = 6
MAX_HORIZONTAL = 6
MAX_SELECTS = 3
MAX_SELECT_OPTIONS = 10
MAX_VOTE_OPTIONS = 20
SUB_TITLE_MAX = 500
TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")

_STYLE = {"primary": 1, "danger": 2, "default": 4}
_MD = re.compile(r"(\*\*|__|`|^#+\s*|^>\s*)", re.MULTILINE)


class RenderError(PermanentError):
    """The card cannot be expressed as a WeCom template card."""


def plain(text: str) -> str:
    """Template cards show plain text: drop the light markdown the neutral model allows."""
    return _MD.sub("", text).strip()


def _key(value: str) -> str:
    if len(value.encode()) > KEY_MAX_BYTES:
        raise RenderError(f"button value is {len(value.encode())} bytes; WeCom keys hold {KEY_MAX_BYTES}")
    return value


def _button(b: Button) -> dict[str, Any]:
    return {"type": 0, "text": b.label, "style": _STYLE[b.style], "key": _key(b.value)}


def _options(select: Select, limit: int) -> list[dict[str, Any]]:
    """Option ids are the option values: a click's OptionIds need no mapping back (callers check _fits)."""
    assert _fits(select, limit)
    return [{"id": o.value, "text": _clip(o.label, 32)} for o in select.options]


def _selected(select: Select) -> str:
    return select.default if select.default in {o.value for o in select.options} else select.options[0].value


def render_card(card: Card, *, task_id: str, link_url: str) -> dict[str, Any]:
    """The ``template_card`` object for ``card``; ``task_id`` must be unique per app (caller derives it)."""
    if not TASK_ID.match(task_id):
        raise RenderError(f"task_id {task_id!r} is not 1-128 of [0-9A-Za-z_-@]")
    lines: list[str] = []
    horizontal: list[dict[str, Any]] = []
    notes: list[str] = []
    buttons: list[Button] = []
    forms: list[Form] = []
    for el in card.elements:
        if isinstance(el, Markdown):
            lines.append(plain(el.text))
        elif isinstance(el, Fields):
            for item in el.items:
                if len(horizontal) < MAX_HORIZONTAL:
                    horizontal.append(
                        {"keyname": _clip(item.label, 10), "value": _clip(item.value or "-", 30)}
                    )
                else:
                    lines.append(f"{item.label}: {item.value}")
        elif isinstance(el, Note):
            notes.append(plain(el.text))
        elif isinstance(el, Image):
            if el.alt:
                lines.append(f"[{el.alt}]")
        elif isinstance(el, Actions):
            buttons.extend(el.buttons)
        elif isinstance(el, Form):
            forms.append(el)
        elif isinstance(el, Divider):
            continue
    if len(forms) > 1:
        raise RenderError("a WeCom card can carry one form")

    body: dict[str, Any] = {"main_title": {"title": _clip(card.header.title, 36)}, "task_id": task_id}
    if card.header.subtitle:
        body["main_title"]["desc"] = _clip(card.header.subtitle, 44)
    if horizontal:
        body["horizontal_content_list"] = horizontal
    if notes:
        body["quote_area"] = {"type": 0, "quote_text": _clip("\n".join(notes), 300)}

    form = forms[0] if forms else None
    if form is not None:
        card_type = _render_form(body, form, buttons, lines)
    elif buttons:
        card_type = _render_buttons(body, buttons)
    else:
        card_type = "text_notice"
        body["card_action"] = {"type": 1, "url": link_url}
    if lines:
        body["sub_title_text"] = _clip("\n".join(x for x in lines if x), SUB_TITLE_MAX)
    if card_type in ("vote_interaction", "multiple_interaction"):
        _fold_into_title(body)
    return {"card_type": card_type, **body}


def _fold_into_title(body: dict[str, Any]) -> None:
    """Vote and multiple-choice cards have no text areas: keep what fits under the title."""
    text: list[str] = []
    if "sub_title_text" in body:
        text.append(body.pop("sub_title_text"))
    for kv in body.pop("horizontal_content_list", []):
        text.append(f"{kv['keyname']}: {kv['value']}")
    if "quote_area" in body:
        text.append(body.pop("quote_area")["quote_text"])
    if text:
        title = body["main_title"]
        joined = " ".join([title.get("desc", ""), *text]).strip()
        title["desc"] = _clip(joined.replace("\n", " "), 44)


def _render_buttons(body: dict[str, Any], buttons: list[Button]) -> str:
    live = [b for b in buttons if not b.disabled]
    shown = live or buttons
    if len(shown) > MAX_BUTTONS:
        raise RenderError(f"{len(shown)} buttons; WeCom cards hold {MAX_BUTTONS}")
    keys = [b.value for b in shown]
    if len(keys) != len(set(keys)):
        raise RenderError("two buttons with the same value (WeCom keys must be unique in a card)")
    body["button_list"] = [_button(b) for b in shown]
    if not live:
        # Every button is decided: WeCom greys the button row out and shows this text instead.
        body["replace_text"] = _clip(buttons[0].label, 20)
    return "button_interaction"


def _fits(select: Select, limit: int) -> bool:
    return len(select.options) <= limit and all(
        len(o.value.encode()) <= OPTION_ID_MAX_BYTES for o in select.options
    )


def _render_form(body: dict[str, Any], form: Form, extra: list[Button], lines: list[str]) -> str:
    selects = [i for i in form.inputs if isinstance(i, Select)]
    texty = [i for i in form.inputs if isinstance(i, TextInput | DatePicker)]
    extra = [*extra, *([form.cancel] if form.cancel else [])]
    submit = {"text": _clip(form.submit.label, 10), "key": _key(form.submit.value)}
    if not texty and not extra:
        if len(selects) == 1 and selects[0].multiple and _fits(selects[0], MAX_VOTE_OPTIONS):
            s = selects[0]
            body["checkbox"] = {
                "question_key": _key(s.name),
                "mode": 1,
                "option_list": [
                    {**o, "is_checked": o["id"] == s.default} for o in _options(s, MAX_VOTE_OPTIONS)
                ],
            }
            body["submit_button"] = submit
            lines.insert(0, s.label)
            return "vote_interaction"
        if len(selects) <= MAX_SELECTS and all(
            not s.multiple and _fits(s, MAX_SELECT_OPTIONS) for s in selects
        ):
            body["select_list"] = [
                {
                    "question_key": _key(s.name),
                    "title": _clip(s.label, 16),
                    "selected_id": _selected(s),
                    "option_list": _options(s, MAX_SELECT_OPTIONS),
                }
                for s in selects
            ]
            body["submit_button"] = submit
            return "multiple_interaction"
    # A button card: one single-choice dropdown that fits rides along as ``button_selection``; every other
    # question is listed here and asked in chat after the submit click (bot/core/chatforms.py).
    on_card = next((s for s in selects if not s.multiple and _fits(s, MAX_SELECT_OPTIONS)), None)
    if on_card is not None:
        body["button_selection"] = {
            "question_key": _key(on_card.name),
            "title": _clip(on_card.label, 16),
            "option_list": _options(on_card, MAX_SELECT_OPTIONS),
            "selected_id": _selected(on_card),
        }
    for q in form.inputs:
        if q is not on_card:
            lines.append(f"· {q.label}")
    return _render_buttons(body, [form.submit, *extra])


def text_message(text: str) -> dict[str, Any]:
    """A plain ``text`` message body (toasts have no WeCom equivalent: a refusal is sent as text)."""
    return {"msgtype": "text", "text": {"content": _clip(text, 2000)}}
