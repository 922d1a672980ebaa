"""Raw WeCom callback XML → typed models → neutral events.

Both the outer envelope and the decrypted message are parsed with defusedxml with DTDs forbidden, so an entity
declaration (XXE, billion laughs) is rejected before anything is expanded. wechatpy's own parser is not used:
it does not know ``template_card_event`` and would hand back an untyped dict.
"""

from __future__ import annotations

import hashlib
from typing import Literal
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import BaseModel, ConfigDict

from bot.core.events import CardAction, Event, ImageMessage, MemberChanged, TextMessage

PLATFORM = "wecom"


class MalformedPayload(ValueError):
    """Not well-formed XML, a DTD/entity declaration, or a required field missing."""


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Envelope(Model):
    """The POST body before decryption: ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``."""

    to_user: str
    encrypt: str
    agent_id: str | None = None


class Base(Model):
    to_user: str
    from_user: str
    create_time: int
    agent_id: str | None = None


class WeComText(Base):
    kind: Literal["text"] = "text"
    content: str
    msg_id: str


class WeComImage(Base):
    kind: Literal["image"] = "image"
    pic_url: str
    media_id: str
    msg_id: str


class WeComCardEvent(Base):
    """``Event=template_card_event``: a button or a submit button on a template card was clicked."""

    kind: Literal["template_card_event"] = "template_card_event"
    event_key: str
    task_id: str
    card_type: str
    response_code: str
    selected: dict[str, list[str]] = {}


class WeComContactChange(Base):
    """``Event=change_contact`` with a user ``ChangeType`` (create_user, update_user, delete_user)."""

    kind: Literal["change_contact"] = "change_contact"
    change_type: str
    user_id: str
    new_user_id: str | None = None


class WeComOther(Base):
    """Anything else (enter_agent, voice, location…): acknowledged and ignored."""

    kind: Literal["other"] = "other"
    msg_type: str
    event: str | None = None


WeComMessage = WeComText | WeComImage | WeComCardEvent | WeComContactChange | WeComOther


def _parse_xml(data: str | bytes) -> Element:
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedPayload(f"unsafe or malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise MalformedPayload("root element is not <xml>")
    return root


def _text(root: Element, tag: str, *, required: bool = True) -> str | None:
    node = root.find(tag)
    if node is None or node.text is None:
        if required:
            raise MalformedPayload(f"missing <{tag}>")
        return None
    return node.text.strip()


def _req(root: Element, tag: str) -> str:
    value = _text(root, tag)
    assert value is not None
    return value


def parse_envelope(body: bytes) -> Envelope:
    root = _parse_xml(body)
    return Envelope(
        to_user=_text(root, "ToUserName", required=False) or "",
        encrypt=_req(root, "Encrypt"),
        agent_id=_text(root, "AgentID", required=False),
    )


def parse_message(plaintext: str) -> WeComMessage:
    root = _parse_xml(plaintext)
    try:
        create_time = int(_req(root, "CreateTime"))
    except ValueError:
        raise MalformedPayload("CreateTime is not a number") from None
    common = {
        "to_user": _text(root, "ToUserName", required=False) or "",
        "from_user": _req(root, "FromUserName"),
        "create_time": create_time,
        "agent_id": _text(root, "AgentID", required=False),
    }
    msg_type = _req(root, "MsgType")
    if msg_type == "text":
        return WeComText(
            **common, content=_text(root, "Content", required=False) or "", msg_id=_req(root, "MsgId")
        )
    if msg_type == "image":
        return WeComImage(
            **common,
            pic_url=_text(root, "PicUrl", required=False) or "",
            media_id=_req(root, "MediaId"),
            msg_id=_req(root, "MsgId"),
        )
    if msg_type == "event":
        event = _req(root, "Event")
        if event == "template_card_event":
            return WeComCardEvent(
                **common,
                event_key=_req(root, "EventKey"),
                task_id=_req(root, "TaskId"),
                card_type=_text(root, "CardType", required=False) or "",
                response_code=_text(root, "ResponseCode", required=False) or "",
                selected=_selected_items(root),
            )
        if event == "change_contact":
            change = _req(root, "ChangeType")
            if change in ("create_user", "update_user", "delete_user"):
                return WeComContactChange(
                    **common,
                    change_type=change,
                    user_id=_req(root, "UserID"),
                    new_user_id=_text(root, "NewUserID", required=False),
                )
        return WeComOther(**common, msg_type=msg_type, event=event)
    return WeComOther(**common, msg_type=msg_type)


def _selected_items(root: Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in root.iterfind("SelectedItems/SelectedItem"):
        key = _text(item, "QuestionKey")
        assert key is not None
        out[key] = [o.text.strip() for o in item.iterfind("OptionIds/OptionId") if o.text]
    return out


def event_id_for(msg: WeComMessage) -> str:
    """Retries of one callback map to one id (WeCom: MsgId, else FromUserName + CreateTime for events).

    For card events the task id and button key are hashed in as well: two different buttons tapped within the
    same second are two events, a retry of one tap is the same event.
    """
    if isinstance(msg, WeComText | WeComImage):
        return f"msg:{msg.msg_id}"
    if isinstance(msg, WeComCardEvent):
        digest = hashlib.sha256(f"{msg.task_id}\n{msg.event_key}".encode()).hexdigest()[:20]
        return f"card:{msg.from_user}:{msg.create_time}:{digest}"[:200]
    if isinstance(msg, WeComContactChange):
        return f"contact:{msg.change_type}:{msg.user_id}:{msg.create_time}"[:200]
    return f"other:{msg.from_user}:{msg.create_time}"[:200]


def form_values(msg: WeComCardEvent) -> dict[str, str | list[str]]:
    """SelectedItems → ``CardAction.form``: a checkbox (vote card) answers a list, a dropdown one value."""
    out: dict[str, str | list[str]] = {}
    for key, ids in msg.selected.items():
        if msg.card_type == "vote_interaction":
            out[key] = list(ids)
        else:
            out[key] = ids[0] if len(ids) == 1 else list(ids)
    return out


_CHANGES: dict[str, Literal["created", "updated", "deleted"]] = {
    "create_user": "created",
    "update_user": "updated",
    "delete_user": "deleted",
}


def card_ref(task_id: str, response_code: str) -> str:
    """The reference ``update`` needs: the single-use response code, and the task id the replacement card
    must keep. A task id never contains ':' (WeCom allows only [0-9A-Za-z_-@])."""
    return f"rc:{task_id}:{response_code}"


def parse_card_ref(ref: str) -> tuple[str | None, str]:
    """``(task_id, response_code)`` from ``card_ref``; a bare code (task id unknown) is ``(None, ref)``."""
    if ref.startswith("rc:"):
        task_id, sep, code = ref[3:].partition(":")
        if sep and task_id and code:
            return task_id, code
    return None, ref


def to_event(msg: WeComMessage, *, workspace: str) -> Event | None:
    """The neutral event, or None for what the bot does not handle (acknowledged all the same)."""
    base = {
        "platform": PLATFORM,
        "workspace": workspace,
        "event_id": event_id_for(msg),
        "sender_id": msg.from_user,
    }
    if isinstance(msg, WeComText):
        return TextMessage(**base, text=msg.content)
    if isinstance(msg, WeComImage):
        return ImageMessage(**base, media_ref=msg.media_id)
    if isinstance(msg, WeComCardEvent):
        ref = card_ref(msg.task_id, msg.response_code) if msg.response_code else None
        return CardAction(**base, value=msg.event_key, form=form_values(msg), message_ref=ref)
    if isinstance(msg, WeComContactChange):
        return MemberChanged(**base, change=_CHANGES[msg.change_type], user_id=msg.new_user_id or msg.user_id)
    return None
