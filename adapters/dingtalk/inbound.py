"""DingTalk payloads → typed models → neutral events. The same parsers serve HTTP callbacks and Stream frames.

Shapes (PLATFORMS.md §3.3–3.5, dingtalk-stream 0.24.3 ``ChatbotMessage`` / ``CardCallbackMessage``):
- robot message: ``msgId``, ``msgtype`` (text | picture | richText…), ``senderStaffId``, ``text.content`` or
  ``content.downloadCode``;
- card callback: ``outTrackId``, ``userId``, ``content`` = JSON string
  ``{"cardPrivateData": {"actionIds": [...], "params": {...}}}``;
- event subscription: ``EventType`` (``user_add_org``, ``user_modify_org``, ``user_leave_org``,
  ``check_url``…) and ``UserId`` (a list).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage
from cards.model import PACKED_ACTION

PLATFORM = "dingtalk"


class MalformedPayload(ValueError):
    """Authentic but not a shape we can use: acknowledged, logged, never dispatched."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TextBody(_Model):
    content: str = ""


class PictureBody(_Model):
    download_code: str | None = Field(default=None, alias="downloadCode")
    picture_download_code: str | None = Field(default=None, alias="pictureDownloadCode")


class RobotMessage(_Model):
    msg_id: str = Field(alias="msgId", min_length=1, max_length=200)
    msgtype: str
    sender_staff_id: str | None = Field(default=None, alias="senderStaffId")
    sender_id: str | None = Field(default=None, alias="senderId")
    conversation_type: str = Field(default="1", alias="conversationType")
    robot_code: str | None = Field(default=None, alias="robotCode")
    create_at: int | None = Field(default=None, alias="createAt")
    text: TextBody | None = None
    content: PictureBody | dict[str, Any] | str | None = None


class CardPrivateData(_Model):
    action_ids: list[str] = Field(default_factory=list, alias="actionIds")
    params: dict[str, Any] = Field(default_factory=dict)


class CardContent(_Model):
    card_private_data: CardPrivateData = Field(default_factory=CardPrivateData, alias="cardPrivateData")


class CardCallback(_Model):
    type: str = "actionCallback"
    out_track_id: str = Field(alias="outTrackId", min_length=1, max_length=200)
    user_id: str = Field(alias="userId", min_length=1, max_length=128)
    user_id_type: int = Field(default=1, alias="userIdType")
    corp_id: str | None = Field(default=None, alias="corpId")
    content: CardContent

    @field_validator("content", mode="before")
    @classmethod
    def _json_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v) if v else {}
            except ValueError:
                raise ValueError("content is not JSON") from None
        return v


class OrgEvent(_Model):
    event_type: str = Field(alias="EventType")
    user_ids: list[str] = Field(default_factory=list, alias="UserId")
    corp_id: str | None = Field(default=None, alias="CorpId")
    timestamp: str | int | None = Field(default=None, alias="TimeStamp")

    @field_validator("user_ids", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


ORG_CHANGES: dict[str, Literal["created", "updated", "deleted"]] = {
    "user_add_org": "created",
    "user_modify_org": "updated",
    "user_active_org": "updated",
    "user_leave_org": "deleted",
}


def looks_like_robot_message(data: dict[str, Any]) -> bool:
    return "msgtype" in data and "msgId" in data


def looks_like_card_callback(data: dict[str, Any]) -> bool:
    return "outTrackId" in data and "content" in data


def robot_event(data: dict[str, Any], workspace: str) -> TextMessage | ImageMessage | None:
    """One-to-one robot messages only; group chats are not a perfloop channel (answers are personal)."""
    try:
        msg = RobotMessage.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"robot message: {exc.errors()[0]['msg']}") from None
    if msg.conversation_type != "1" or not msg.sender_staff_id:
        return None
    common = {
        "platform": PLATFORM,
        "workspace": workspace,
        "event_id": f"msg:{msg.msg_id}",
        "sender_id": msg.sender_staff_id,
    }
    if msg.msgtype == "text" and msg.text is not None:
        return TextMessage(text=msg.text.content[:20_000], **common)
    if msg.msgtype == "picture":
        body = msg.content
        code = None
        if isinstance(body, PictureBody):
            code = body.download_code or body.picture_download_code
        elif isinstance(body, dict):
            code = body.get("downloadCode") or body.get("pictureDownloadCode")
        if not isinstance(code, str) or not code:  # an odd JSON type would fail ImageMessage validation
            raise MalformedPayload("picture without downloadCode")
        return ImageMessage(media_ref=code, **common)
    return None


def card_event(data: dict[str, Any], workspace: str, *, delivery_id: str | None = None) -> CardAction:
    """A click. The clicked button's packed value comes back as its action id (our general template) or as a
    ``value`` param (a builder-made template whose button passes ``value``); other params are the form."""
    try:
        cb = CardCallback.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"card callback: {exc.errors()[0]['msg']}") from None
    private = cb.content.card_private_data
    params = dict(private.params)
    value = params.pop("value", None)
    params.pop("action", None)
    if not isinstance(value, str) or not PACKED_ACTION.match(value):
        value = next((a for a in private.action_ids if PACKED_ACTION.match(a)), None)
    if value is None:
        raise MalformedPayload("card callback without a packed action")
    form: dict[str, str | list[str]] = {}
    for key, raw in params.items():
        if isinstance(raw, list):
            form[str(key)] = [str(x) for x in raw]
        elif raw is not None:
            form[str(key)] = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if delivery_id is None:
        # HTTP card callbacks carry no delivery id: the same click retried has the same body.
        raw_key = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        delivery_id = hashlib.sha256(raw_key).hexdigest()[:40]
    return CardAction(
        platform=PLATFORM,
        workspace=workspace,
        event_id=f"card:{delivery_id}",
        sender_id=cb.user_id,
        value=value[:4000],
        form=form,
        message_ref=cb.out_track_id,
    )


def org_events(data: dict[str, Any], workspace: str, *, event_id: str) -> list[MemberChanged]:
    """Member changes; one neutral event per user id (DingTalk batches several users in one callback)."""
    try:
        ev = OrgEvent.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"event: {exc.errors()[0]['msg']}") from None
    change = ORG_CHANGES.get(ev.event_type)
    if change is None:
        return []
    return [
        MemberChanged(
            platform=PLATFORM,
            workspace=workspace,
            event_id=f"{event_id}:{uid}"[:200],
            sender_id=uid,
            change=change,
            user_id=uid,
        )
        for uid in ev.user_ids
        if uid
    ]
