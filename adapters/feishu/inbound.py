"""Schema 2.0 envelopes → typed models → neutral events.

The same parser serves the webhook (after decryption and token check) and the long connection (whose frames
carry the plain envelope), so both modes produce identical events. Unknown event types parse to ``None`` and
are acknowledged without reaching the dispatcher.

Identity: everything is keyed by ``open_id`` (sender, operator, contact events, ``receive_id_type=open_id``
on sends, ``user_id_type=open_id`` on the contact API). ``open_id`` is delivered without the extra
"read user ID" permission that ``user_id`` needs, and it is what every event carries.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import CallbackRejected, ParseResult
from adapters.http import UnsafeJson, loads
from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage, UrlVerification
from cards.model import PACKED_ACTION

log = logging.getLogger("perfloop.feishu")

VALUE_KEY = "perfloop"
"""Feishu callback values must be JSON objects; our packed action string travels under this key."""
SUBMIT_PREFIX = "S_"
"""Form submit buttons are named ``S_<form>_<base32 of the packed action>``."""

MENTION = re.compile(r"@_user_\d+\s*")
DATE_VALUE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\b.*)?$")
CONTACT_CHANGES: dict[str, Literal["created", "updated", "deleted"]] = {
    "contact.user.created_v3": "created",
    "contact.user.updated_v3": "updated",
    "contact.user.deleted_v3": "deleted",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Header(_Model):
    event_id: str = Field(min_length=1, max_length=200)
    event_type: str
    create_time: str | None = None
    token: str | None = None
    app_id: str | None = None
    tenant_key: str | None = None


class Envelope(_Model):
    schema_: str = Field(alias="schema")
    header: Header
    event: dict[str, Any] = {}


class UrlVerificationBody(_Model):
    type: str
    challenge: str = Field(max_length=1000)
    token: str | None = None


class UserIds(_Model):
    open_id: str | None = None
    user_id: str | None = None
    union_id: str | None = None


class Sender(_Model):
    sender_id: UserIds
    sender_type: str = "user"
    tenant_key: str | None = None


class Mention(_Model):
    key: str
    name: str | None = None


class Message(_Model):
    message_id: str = Field(min_length=1, max_length=200)
    chat_id: str | None = None
    chat_type: str | None = None
    message_type: str
    content: str
    create_time: str | None = None
    mentions: list[Mention] | None = None


class MessageReceived(_Model):
    """``im.message.receive_v1``."""

    sender: Sender
    message: Message


class CardActionBody(_Model):
    tag: str | None = None
    value: dict[str, Any] | None = None
    name: str | None = None
    form_value: dict[str, Any] | None = None
    option: str | None = None
    options: list[str] | None = None
    input_value: str | None = None


class CardContext(_Model):
    open_message_id: str | None = None
    open_chat_id: str | None = None


class CardActionTrigger(_Model):
    """``card.action.trigger`` (the new-style callback; the only one the long connection delivers)."""

    operator: UserIds
    token: str | None = None
    action: CardActionBody
    host: str | None = None
    context: CardContext = CardContext()


class ContactUser(_Model):
    open_id: str = Field(min_length=1, max_length=128)
    user_id: str | None = None
    name: str | None = None


class ContactUserChanged(_Model):
    """``contact.user.created_v3`` / ``updated_v3`` / ``deleted_v3``."""

    object: ContactUser


def envelope_token(data: dict[str, Any]) -> Any:
    """Where the verification token sits: ``header.token`` (schema 2.0) or top-level ``token``."""
    if data.get("schema"):
        header = data.get("header")
        return header.get("token") if isinstance(header, dict) else None
    return data.get("token")


def is_url_verification(data: dict[str, Any]) -> bool:
    return data.get("type") == "url_verification"


def parse_payload(data: dict[str, Any], *, platform: str, workspace: str) -> ParseResult:
    """A decrypted, authenticated payload → event, handshake, or None (acknowledged, ignored)."""
    try:
        if is_url_verification(data):
            body = UrlVerificationBody.model_validate(data)
            return UrlVerification(platform=platform, answer=body.challenge)
        if not data.get("schema"):
            log.info("ignoring schema 1.0 event", extra={"type": (data.get("event") or {}).get("type")})
            return None
        env = Envelope.model_validate(data)
        if env.header.app_id and env.header.app_id != workspace:
            raise CallbackRejected(403, "event for another app")
        kind = env.header.event_type
        base = {"platform": platform, "workspace": workspace, "event_id": env.header.event_id}
        if kind == "im.message.receive_v1":
            return _message(MessageReceived.model_validate(env.event), base)
        if kind == "card.action.trigger":
            return _card_action(CardActionTrigger.model_validate(env.event), base)
        if kind in CONTACT_CHANGES:
            user = ContactUserChanged.model_validate(env.event).object
            return MemberChanged(
                **base, sender_id=user.open_id, user_id=user.open_id, change=CONTACT_CHANGES[kind]
            )
    except ValidationError as exc:
        raise CallbackRejected(400, f"malformed event: {exc.errors()[0]['loc']}") from None
    log.info("ignoring event type", extra={"event_type": kind})
    return None


def _message(ev: MessageReceived, base: dict[str, Any]) -> TextMessage | ImageMessage | None:
    sender = ev.sender.sender_id.open_id
    if ev.sender.sender_type != "user" or not sender:
        return None
    try:
        content = loads(ev.message.content)
    except UnsafeJson:
        raise CallbackRejected(400, "message content is not JSON") from None
    if not isinstance(content, dict):
        raise CallbackRejected(400, "message content is not an object")
    if ev.message.message_type == "text":
        text = MENTION.sub("", str(content.get("text", ""))).strip()
        return TextMessage(**base, sender_id=sender, text=text[:20_000])
    if ev.message.message_type == "image" and content.get("image_key"):
        # Both ids are needed for GET im/v1/messages/{message_id}/resources/{image_key}?type=image.
        return ImageMessage(
            **base, sender_id=sender, media_ref=media_ref(ev.message.message_id, str(content["image_key"]))
        )
    return None


def submit_name(form_name: str, packed: str) -> str:
    """The name of a form's submit button, which carries the packed action itself.

    Lark's docs say a button inside a form submits with ``form_action_type`` and does not take
    ``behaviors``, so ``action.value`` may arrive empty on a form submit; the button's ``name`` always
    arrives. Encoding the action in the name (base32: letters and digits only, no ``_``) routes a submit
    either way with no server-side table; the form name keeps it unique card-wide."""
    encoded = base64.b32encode(packed.encode()).decode().rstrip("=")
    return f"{SUBMIT_PREFIX}{form_name}_{encoded}"


def packed_from_name(name: str | None) -> str | None:
    """The packed action of a ``submit_name``; None for any other name (ordinary buttons, foreign names)."""
    if not name or not name.startswith(SUBMIT_PREFIX):
        return None
    encoded = name.rpartition("_")[2]
    try:
        packed = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
    except (binascii.Error, ValueError):
        return None
    return packed if PACKED_ACTION.match(packed) else None


def _card_action(ev: CardActionTrigger, base: dict[str, Any]) -> CardAction | None:
    sender = ev.operator.open_id
    if not sender:
        raise CallbackRejected(400, "card action without operator open_id")
    packed = (ev.action.value or {}).get(VALUE_KEY)
    if not isinstance(packed, str):
        packed = packed_from_name(ev.action.name)
    return CardAction(
        **base,
        sender_id=sender,
        value=packed if isinstance(packed, str) else "",
        form=form_values(ev.action.form_value or {}),
        message_ref=ev.context.open_message_id,
    )


def form_values(raw: dict[str, Any]) -> dict[str, str | list[str]]:
    """Form values as the neutral model wants them: strings or lists of strings, dates as YYYY-MM-DD.

    The date picker submits ``"2026-11-24 +0800"``; the part before the zone is the date the person picked.
    """
    out: dict[str, str | list[str]] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, list):
            out[name] = [str(v) for v in value if v is not None]
            continue
        text = str(value)
        m = DATE_VALUE.match(text)
        out[name] = m.group(1) if m and len(text) <= 20 else text
    return out


def media_ref(message_id: str, image_key: str) -> str:
    return f"{message_id}:{image_key}"


def split_media_ref(ref: str) -> tuple[str, str]:
    message_id, sep, key = ref.partition(":")
    if not sep or not message_id or not key:
        raise ValueError(f"not a Feishu media reference: {ref!r}")
    return message_id, key
