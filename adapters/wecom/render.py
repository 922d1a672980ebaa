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

Anything that cannot be shown faithfully raises ``RenderError`` (a PermanentError: the outbox dead-letters the
row with the reason) instead of silently dropping a question or a button.

Button keys carry the packed action value itself (``cards.actions.pack``). WeCom allows 1024 bytes per key
(doc 90236: "最长支持1024字节"); ``cards.model.Button`` caps values at 1000 characters and ``pack`` writes ASCII
JSON, so every valid card fits. The byte length is still checked here so a future non-ASCII value fails loudly
rather than being truncated by WeCom.
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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(value: str) -> str:
    if len(value.encode()) > KEY_MAX_BYTES:
        raise RenderError(f"button value is {len(value.encode())} bytes; WeCom keys hold {KEY_MAX_BYTES}")
    return value


def _button(b: Button) -> dict[str, Any]:
    return {"type": 0, "text": _clip(b.label, 10), "style": _STYLE[b.style], "key": _key(b.value)}


def _options(select: Select, limit: int) -> list[dict[str, Any]]:
    if len(select.options) > limit:
        raise RenderError(f"select {select.name!r} has {len(select.options)} options; WeCom shows {limit}")
    out = []
    for o in select.options:
        if len(o.value.encode()) > OPTION_ID_MAX_BYTES:
            raise RenderError(f"option value of {select.name!r} longer than {OPTION_ID_MAX_BYTES} bytes")
        out.append({"id": o.value, "text": _clip(o.label, 32)})
    return out


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
                    horizontal.append({"keyname": _clip(item.label, 10), "value": _clip(item.value or "-", 30)})
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
    return {"card_type": card_type, **body}


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


def _render_form(body: dict[str, Any], form: Form, extra: list[Button], lines: list[str]) -> str:
    selects = [i for i in form.inputs if isinstance(i, Select)]
    texty = [i for i in form.inputs if isinstance(i, TextInput | DatePicker)]
    extra = [*extra, *([form.cancel] if form.cancel else [])]
    if not texty and not extra:
        if len(selects) == 1 and selects[0].multiple:
            s = selects[0]
            body["checkbox"] = {
                "question_key": _key(s.name), "mode": 1,
                "option_list": [{**o, "is_checked": o["id"] == s.default}
                                for o in _options(s, MAX_VOTE_OPTIONS)],
            }
            body["submit_button"] = {"text": _clip(form.submit.label, 10), "key": _key(form.submit.value)}
            lines.insert(0, s.label)
            return "vote_interaction"
        if 1 <= len(selects) <= MAX_SELECTS and not any(s.multiple for s in selects):
            body["select_list"] = [
                {"question_key": _key(s.name), "title": _clip(s.label, 16), "selected_id": _selected(s),
                 "option_list": _options(s, MAX_SELECT_OPTIONS)}
                for s in selects
            ]
            body["submit_button"] = {"text": _clip(form.submit.label, 10), "key": _key(form.submit.value)}
            return "multiple_interaction"
    if len(selects) > 1 or any(s.multiple for s in selects):
        raise RenderError(
            f"form {form.name!r}: WeCom can show one single-choice dropdown beside buttons or text questions"
        )
    if selects:
        s = selects[0]
        body["button_selection"] = {"question_key": _key(s.name), "title": _clip(s.label, 16),
                                    "option_list": _options(s, MAX_SELECT_OPTIONS), "selected_id": _selected(s)}
    for q in texty:
        lines.append(f"· {q.label}")
    return _render_buttons(body, [form.submit, *extra])


def text_message(text: str) -> dict[str, Any]:
    """A plain ``text`` message body (toasts have no WeCom equivalent: a refusal is sent as text)."""
    return {"msgtype": "text", "text": {"content": _clip(text, 2000)}}
