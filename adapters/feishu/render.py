"""Neutral ``Card`` → Feishu card JSON 2.0.

Choices worth knowing:
- ``config.update_multi`` is always true: the message PATCH API only updates shared cards, and JSON 2.0
  supports nothing else.
- Button rows are ``column_set``s of auto-width columns (JSON 2.0 dropped the 1.0 ``action`` module).
- A ``Form`` becomes a real ``form`` container (inputs, ``select_static`` / ``multi_select_static``,
  ``date_picker``) whose submit button has ``form_action_type: "submit"``; the form's cancel button is put
  *after* the container as an ordinary callback button, so cancelling never trips "required field" checks.
- Component names are unique card-wide (Feishu requires it): buttons get names starting upper-case
  (``B<i>_<j>``, ``S_<form>_<action>``, ``C_<form>``) that can never equal a neutral input name, which is
  lower-case by model rule.
- Callback values must be JSON objects, so the packed action string travels as ``{"perfloop": "<packed>"}``.
  A form's submit button also carries it in its name (``inbound.submit_name``): Lark's docs say buttons
  inside a form use ``form_action_type`` rather than ``behaviors``, so the value may not come back.
- ``Image`` needs a Feishu ``image_key``; the client uploads media-store images before rendering and passes
  the mapping in ``image_keys``. An image without a key degrades to its alt text rather than being rejected.
"""

from __future__ import annotations

from typing import Any

from adapters.feishu.inbound import VALUE_KEY, submit_name
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

MAX_INPUT_LENGTH = 1000
"""Feishu's input ``max_length`` ceiling (the neutral model allows 2000)."""

BUTTON_TYPES = {"primary": "primary_filled", "default": "default", "danger": "danger"}


def plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def render_card(card: Card, *, image_keys: dict[str, str] | None = None) -> dict[str, Any]:
    keys = image_keys or {}
    header: dict[str, Any] = {"title": plain(card.header.title), "template": card.header.colour}
    if card.header.subtitle:
        header["subtitle"] = plain(card.header.subtitle)
    config: dict[str, Any] = {"update_multi": True}
    if card.summary:
        config["summary"] = {"content": card.summary}
    elements: list[dict[str, Any]] = []
    for i, el in enumerate(card.elements):
        elements.extend(_element(el, i, keys))
    return {"schema": "2.0", "config": config, "header": header, "body": {"elements": elements}}


def callback_value(packed: str) -> dict[str, str]:
    return {VALUE_KEY: packed}


def _element(el: Any, index: int, keys: dict[str, str]) -> list[dict[str, Any]]:
    if isinstance(el, Markdown):
        return [{"tag": "markdown", "content": el.text}]
    if isinstance(el, Fields):
        # Two columns (label | value) rather than "label: value" text: no locale-specific punctuation.
        return [
            {
                "tag": "column_set",
                "flex_mode": "none",
                "horizontal_spacing": "8px",
                "columns": [
                    {
                        "tag": "column",
                        "width": "weighted",
                        "weight": 1,
                        "elements": [{"tag": "markdown", "content": f"**{_md(item.label)}**"}],
                    },
                    {
                        "tag": "column",
                        "width": "weighted",
                        "weight": 3,
                        "elements": [{"tag": "markdown", "content": _md(item.value) or " "}],
                    },
                ],
            }
            for item in el.items
        ]
    if isinstance(el, Note):
        return [{"tag": "markdown", "content": el.text, "text_size": "notation"}]
    if isinstance(el, Divider):
        return [{"tag": "hr"}]
    if isinstance(el, Image):
        key = el.media_id if el.media_id.startswith("img_") else keys.get(el.media_id)
        if key:
            return [{"tag": "img", "img_key": key, "alt": plain(el.alt), "preview": True}]
        return [{"tag": "markdown", "content": _md(el.alt)}] if el.alt else []
    if isinstance(el, Actions):
        return [_button_row([_button(b, f"B{index}_{j}") for j, b in enumerate(el.buttons)])]
    if isinstance(el, Form):
        return _form(el)
    raise TypeError(f"cannot render {type(el).__name__}")


def _button(b: Button, name: str, *, submit: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tag": "button",
        "name": name,
        "text": plain(b.label),
        "type": BUTTON_TYPES[b.style],
        "disabled": b.disabled,
        "behaviors": [{"type": "callback", "value": callback_value(b.value)}],
    }
    if submit:
        out["form_action_type"] = "submit"
    return out


def _button_row(buttons: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tag": "column_set",
        "flex_mode": "flow",
        "horizontal_spacing": "8px",
        "columns": [{"tag": "column", "width": "auto", "elements": [b]} for b in buttons],
    }


def _form(form: Form) -> list[dict[str, Any]]:
    inner: list[dict[str, Any]] = []
    for field in form.inputs:
        if isinstance(field, TextInput):
            inp: dict[str, Any] = {
                "tag": "input",
                "name": field.name,
                "required": field.required,
                "label": plain(field.label),
                "label_position": "top",
                "max_length": min(field.max_length, MAX_INPUT_LENGTH),
            }
            if field.placeholder:
                inp["placeholder"] = plain(field.placeholder)
            if field.default:
                inp["default_value"] = field.default[:MAX_INPUT_LENGTH]
            if field.multiline:
                inp.update({"input_type": "multiline_text", "rows": 3, "auto_resize": True})
            inner.append(inp)
        elif isinstance(field, Select):
            inner.append({"tag": "markdown", "content": f"**{_md(field.label)}**"})
            sel: dict[str, Any] = {
                "tag": "multi_select_static" if field.multiple else "select_static",
                "name": field.name,
                "required": field.required,
                "placeholder": plain(field.label),
                "options": [{"text": plain(o.label), "value": o.value} for o in field.options],
            }
            if field.default:
                if field.multiple:
                    sel["selected_values"] = [field.default]
                else:
                    sel["initial_option"] = field.default
            inner.append(sel)
        elif isinstance(field, DatePicker):
            inner.append({"tag": "markdown", "content": f"**{_md(field.label)}**"})
            picker: dict[str, Any] = {
                "tag": "date_picker",
                "name": field.name,
                "required": field.required,
                "placeholder": plain(field.label),
            }
            if field.default:
                picker["initial_date"] = field.default
            inner.append(picker)
    inner.append(_button(form.submit, submit_name(form.name, form.submit.value), submit=True))
    out: list[dict[str, Any]] = [{"tag": "form", "name": form.name, "elements": inner}]
    if form.cancel is not None:
        out.append(_button_row([_button(form.cancel, f"C_{form.name}")]))
    return out


def _md(text: str) -> str:
    """Plain text inside card markdown: neutralise the characters that would start markup."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;").replace(">", "&gt;")
