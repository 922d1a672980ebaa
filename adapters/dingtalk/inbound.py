"""DingTalk payloads → typed models → neutral events. The same parsers serve HTTP callbacks and Stream frames.

Shapes (PLATFORMS.md §3.3–3.5, dingtalk-stream 0.24.3 ``ChatbotMessage`` / ``CardCallbackMessage``):
- robot message: ``msgId``, ``msgtype`` (text | picture | richText…), ``senderStaffId``, ``text.content`` or
  ``content.downloadCode``;
- card callback: ``outTrackId``, ``userId``, ``content`` = JSON string
  ``{"cardPrivateData": {"actionIds": [...], "params": {...}}}``. Which of the two carries the clicked
  button is not settled (PLATFORMS.md §6): our buttons send the packed action as their ``id`` *and* in their
  ``params`` (with the per-card click token, ``CLICK_TOKEN_PARAM``), and a click routes by either;
- event subscription: ``EventType`` (``user_add_org``, ``user_modify_org``, ``user_leave_org``,
  ``check_url``…) and ``UserId`` (a list).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.http import UnsafeJson, loads
from bot.core.events import CardAction, ImageMessage, MemberChanged, TextMessage
from cards.model import PACKED_ACTION

PLATFORM = "dingtalk"


VALUE_PARAM = "value"
"""The button ``params`` key that carries the packed action."""
CLICK_TOKEN_PARAM = "pl_sig"  # noqa: S105 (a parameter name, not a secret)
"""The button ``params`` key that carries the per-card click token (``ClickSigner``)."""


class MalformedPayload(ValueError):
    """Authentic but not a shape we can use: acknowledged, logged, never dispatched."""


class ClickRefused(ValueError):
    """An HTTP-mode card click whose per-card token is missing, forged, or expired."""


@dataclass(frozen=True)
class ClickSigner:
    """Per-card click tokens for HTTP-mode card callbacks.

    DingTalk documents no signature on the card callback it posts to our registered URL, so the URL's own
    token is a static secret: whoever sees one click (a proxy log, a browser extension) could post any click
    as anyone for ever. Each button therefore carries ``expires.hmac`` over (out-track id, recipient, packed
    action, expiry) under a key derived from the app secret: a captured click cannot be re-aimed at another
    card, person or button, and stops working when it expires. Rotating the app secret voids every token.
    """

    key: bytes

    @classmethod
    def from_secret(cls, app_secret: str) -> ClickSigner:
        return cls(hmac.new(app_secret.encode(), b"perfloop/dingtalk/card-click/v1", hashlib.sha256).digest())

    def _mac(self, out_track_id: str, user_id: str, value: str, expires: int) -> str:
        msg = "\n".join((out_track_id, user_id, value, str(expires))).encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:32]

    def token(self, out_track_id: str, user_id: str, value: str, expires: int) -> str:
        return f"{expires}.{self._mac(out_track_id, user_id, value, expires)}"

    def check(self, token: str | None, out_track_id: str, user_id: str, value: str, *, now: int) -> None:
        expires_text, _, mac = (token or "").partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12 or not mac:
            raise ClickRefused("card click without a valid token")
        expires = int(expires_text)
        if not hmac.compare_digest(mac.encode(), self._mac(out_track_id, user_id, value, expires).encode()):
            raise ClickRefused("card click token does not match the card, person or button")
        if expires < now:
            raise ClickRefused("card click token expired")


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
                return loads(v) if v else {}
            except UnsafeJson:
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


@dataclass(frozen=True)
class CardClick:
    """One parsed click: the card, the clicker, the packed action, its token and the other params."""

    out_track_id: str
    user_id: str
    value: str
    token: str | None
    form: dict[str, str | list[str]]


def card_click(data: dict[str, Any]) -> CardClick:
    """The clicked button's packed value comes back in its ``params`` (``value``, sent by our buttons and by a
    builder-made template whose button passes ``value``) or as its action id (``cardPrivateData.actionIds``);
    either routes. The other params (minus our token) are the form."""
    try:
        cb = CardCallback.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(f"card callback: {exc.errors()[0]['msg']}") from None
    private = cb.content.card_private_data
    params = dict(private.params)
    value = params.pop(VALUE_PARAM, None)
    token = params.pop(CLICK_TOKEN_PARAM, None)
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
    return CardClick(
        out_track_id=cb.out_track_id,
        user_id=cb.user_id,
        value=value[:4000],
        token=token if isinstance(token, str) else None,
        form=form,
    )


def click_event_id(click: CardClick) -> str:
    """Dedupe by what identifies the click, never by the body: the card (out-track id), the clicker, the
    button (packed action) and the card version (the token's expiry, renewed whenever the card is updated).
    A retried or replayed click with any other field changed is the same event; a click on a re-issued card
    is a new one. HTTP card callbacks carry no delivery id of their own."""
    version = (click.token or "").partition(".")[0]
    key = "\n".join((click.out_track_id, click.user_id, click.value, version)).encode()
    return "card:" + hashlib.sha256(key).hexdigest()[:40]


def card_event(
    data: dict[str, Any], workspace: str, *, signer: ClickSigner | None = None, now: int = 0
) -> CardAction:
    """A click → ``CardAction``. With ``signer`` (HTTP mode) the per-card token must be present, genuine and
    unexpired at ``now`` (epoch seconds), else ``ClickRefused``."""
    click = card_click(data)
    if signer is not None:
        signer.check(click.token, click.out_track_id, click.user_id, click.value, now=now)
    return CardAction(
        platform=PLATFORM,
        workspace=workspace,
        event_id=click_event_id(click),
        sender_id=click.user_id,
        value=click.value,
        form=click.form,
        message_ref=click.out_track_id,
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
