"""Neutral events: what any messenger can send us, parsed at the adapter edge into typed models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from storage.types import utcnow


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    workspace: str
    """The platform app id (WeCom corp id, Feishu app id, DingTalk app key, "sim")."""
    event_id: str = Field(min_length=1, max_length=200)
    sender_id: str = Field(min_length=1, max_length=128)
    received_at: datetime = Field(default_factory=utcnow)


class TextMessage(EventBase):
    kind: Literal["text"] = "text"
    text: str = Field(max_length=20_000)


class ImageMessage(EventBase):
    kind: Literal["image"] = "image"
    media_ref: str = Field(min_length=1, max_length=2000)
    """Whatever the adapter needs to download the bytes (WeCom MediaId, Feishu message_id/image_key, …)."""


class CardAction(EventBase):
    kind: Literal["card_action"] = "card_action"
    value: str = Field(max_length=4000)
    """The packed action payload the button carried (``cards.actions.pack``)."""
    form: dict[str, str | list[str]] = {}
    message_ref: str | None = None
    """How to update the clicked card: Feishu open_message_id, WeCom response_code, sim message id…"""


class MemberChanged(EventBase):
    kind: Literal["member_changed"] = "member_changed"
    change: Literal["created", "updated", "deleted"]
    user_id: str


class UrlVerification(BaseModel):
    """A handshake the adapter answers itself; it never reaches the dispatcher."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["url_verification"] = "url_verification"
    platform: str
    answer: str


Event = Annotated[TextMessage | ImageMessage | CardAction | MemberChanged, Field(discriminator="kind")]
