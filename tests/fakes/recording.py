"""An in-process adapter that records what the bot sends: the errbot "fake backend" habit.

Handler and outbox tests push events in through the dispatcher and pop what was delivered here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from adapters.base import (
    Adapter,
    CallbackAnswer,
    CallbackRejected,
    DeliveryError,
    Org,
    ParseResult,
    SendResult,
)
from bot.core.events import Event
from cards.model import Card


@dataclass
class Delivered:
    recipient: str
    card: Card
    message_ref: str
    idempotency_key: str


@dataclass
class RecordingAdapter(Adapter):
    platform: ClassVar[str] = "rec"
    max_recipients_per_call: ClassVar[int] = 1000
    workspace: str = "rec-app"
    sent: list[Delivered] = field(default_factory=list)
    updates: list[tuple[str, Card, str]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    fail_next: list[DeliveryError] = field(default_factory=list)
    seen_keys: set[str] = field(default_factory=set)
    org: Org = field(default_factory=Org)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def parse_callback(self, request: web.Request) -> ParseResult:
        raise CallbackRejected(404, "the recording adapter takes events through the dispatcher directly")

    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        return web.json_response({"toast": answer.toast})

    def render(self, card: Card) -> dict[str, Any]:
        return card.model_dump(mode="json")

    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult:
        return await self.send_many([recipient], card, idempotency_key=idempotency_key)

    async def send_many(self, recipients: list[str], card: Card, *, idempotency_key: str) -> SendResult:
        if self.fail_next:
            raise self.fail_next.pop(0)
        result = SendResult()
        if idempotency_key in self.seen_keys:  # like Feishu's uuid: a resend shows nothing twice
            return result
        self.seen_keys.add(idempotency_key)
        for rcpt in recipients:
            ref = f"m{next(self._ids)}"
            self.sent.append(Delivered(rcpt, card, ref, idempotency_key))
            result.message_refs[rcpt] = ref
        return result

    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.updates.append((message_ref, card, recipient))

    async def download_media(self, ref: str, *, max_bytes: int) -> bytes:
        data = self.media[ref]
        if len(data) > max_bytes:
            raise DeliveryError("media too large")
        return data

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        key = f"up{next(self._ids)}"
        self.media[key] = data
        return key

    async def list_org(self) -> Org:
        return self.org

    # ---- test helpers
    def to(self, recipient: str) -> list[Card]:
        return [d.card for d in self.sent if d.recipient == recipient]

    def clear(self) -> None:
        self.sent.clear()
        self.updates.clear()


class ChatOnlyAdapter(RecordingAdapter):
    """The same platform as WeCom and DingTalk see it: cards hold no text inputs, so a form is answered in
    chat, one question at a time. Added to a service's registry, it takes the place of the "rec" adapter."""

    supports_text_inputs: ClassVar[bool] = False
