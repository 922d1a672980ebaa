"""Neutral card → the JSON the simulator page draws.

The structure mirrors the card model closely (the page is ours), with two additions the browser should not
have to work out: markdown turned into a small, escaped HTML subset, and image media ids turned into URLs.
"""

from __future__ import annotations

import html
import re
from typing import Any

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

MEDIA_PREFIX = "/sim/media/"

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^\s)]+)\)")
_COLOUR = re.compile(r"&lt;font color=&quot;(\w+)&quot;&gt;(.+?)&lt;/font&gt;")
_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+(.*)$")
_HEADING = re.compile(r"^(#{1,4})\s+(.*)$")


def media_url(media_id: str) -> str:
    return MEDIA_PREFIX + media_id


def markdown_html(text: str) -> str:
    """A safe subset: everything is escaped first, then bold, italic, code, http(s) links, headings, lists.

    Builders write the markdown all platforms share (``**bold**``, ``- item``, links); anything else shows
    as the literal text, never as markup.
    """
    out: list[str] = []
    in_list = False
    for raw in text.split("\n"):
        line = _inline(html.escape(raw, quote=True))
        item = _LIST_ITEM.match(raw)
        heading = _HEADING.match(raw)
        if item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(html.escape(item.group(1), quote=True))}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if heading:
            out.append(f'<strong class="md-h">{_inline(html.escape(heading.group(2), quote=True))}</strong>')
        elif raw.strip() == "":
            out.append("<br>")
        else:
            out.append(f"<p>{line}</p>")
    if in_list:
        out.append("</ul>")
    return "".join(out)


def _inline(escaped: str) -> str:
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _LINK.sub(r'<a href="\2" target="_blank" rel="noopener noreferrer">\1</a>', escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    escaped = _ITALIC.sub(r"<em>\1</em>", escaped)
    escaped = _COLOUR.sub(r'<span class="md-\1">\2</span>', escaped)
    return escaped


def _button(button: Button) -> dict[str, Any]:
    return {"label": button.label, "value": button.value, "style": button.style, "disabled": button.disabled}


def _input(node: TextInput | Select | DatePicker) -> dict[str, Any]:
    if isinstance(node, TextInput):
        return {
            "kind": "text_input",
            "name": node.name,
            "label": node.label,
            "placeholder": node.placeholder or "",
            "multiline": node.multiline,
            "required": node.required,
            "max_length": node.max_length,
            "default": node.default or "",
        }
    if isinstance(node, Select):
        return {
            "kind": "select",
            "name": node.name,
            "label": node.label,
            "required": node.required,
            "multiple": node.multiple,
            "default": node.default,
            "options": [{"label": o.label, "value": o.value} for o in node.options],
        }
    return {
        "kind": "date_picker",
        "name": node.name,
        "label": node.label,
        "required": node.required,
        "default": node.default or "",
    }


def render_card(card: Card) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    for el in card.elements:
        if isinstance(el, Markdown):
            elements.append({"kind": "markdown", "text": el.text, "html": markdown_html(el.text)})
        elif isinstance(el, Fields):
            elements.append(
                {"kind": "fields", "items": [{"label": kv.label, "value": kv.value} for kv in el.items]}
            )
        elif isinstance(el, Image):
            elements.append({"kind": "image", "src": media_url(el.media_id), "alt": el.alt})
        elif isinstance(el, Note):
            elements.append({"kind": "note", "text": el.text})
        elif isinstance(el, Divider):
            elements.append({"kind": "divider"})
        elif isinstance(el, Actions):
            elements.append({"kind": "actions", "buttons": [_button(b) for b in el.buttons]})
        elif isinstance(el, Form):
            elements.append(
                {
                    "kind": "form",
                    "name": el.name,
                    "inputs": [_input(i) for i in el.inputs],
                    "submit": _button(el.submit),
                    "cancel": _button(el.cancel) if el.cancel else None,
                }
            )
    return {
        "header": {
            "title": card.header.title,
            "subtitle": card.header.subtitle,
            "colour": card.header.colour,
        },
        "summary": card.summary or card.header.title,
        "elements": elements,
    }
