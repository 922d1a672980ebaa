"""The simulator adapter: the bot's side of the local web chat.

It goes through the same interface as the real platforms — the page POSTs callbacks that are parsed into
neutral events, the outbox delivers rendered cards through ``send``/``update`` — so a flow that works here
works the same way on WeCom, Feishu or DingTalk. The "platform" state (conversations, uploaded images) lives
in memory: a demo restart starts with empty chats, the database keeps everything that matters.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar, Self

from aiohttp import web

from adapters.base import (
    Adapter,
    AppLinks,
    CallbackAnswer,
    Org,
    ParseResult,
    PermanentError,
    SendResult,
)
from adapters.sim.inbound import ActionIn, ImageUpload, TextIn, read_inbound
from adapters.sim.pages import SimPages
from adapters.sim.render import media_url, render_card
from adapters.sim.store import Conversations, MediaStore, SimMessage
from bot.core.clock import Clock
from bot.core.events import CardAction, Event, ImageMessage, TextMessage
from cards.model import Card

if TYPE_CHECKING:
    from datetime import datetime

    from bot.core.config import Settings

PLATFORM = "sim"
WORKSPACE = "sim"

_REMEMBERED_KEYS = 20_000


class SimAdapter(Adapter):
    platform: ClassVar[str] = PLATFORM
    max_recipients_per_call: ClassVar[int] = 1000
    supports_text_inputs: ClassVar[bool] = True
    answers_card_inline: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_image_bytes: int = 10 * 1024 * 1024,
        max_body_bytes: int = 256 * 1024,
        default_locale: str = "zh-CN",
        default_timezone: str = "Asia/Shanghai",
    ) -> None:
        self.workspace = WORKSPACE
        self.max_image_bytes = max_image_bytes
        self.max_body_bytes = max_body_bytes
        self.default_locale = default_locale
        self.default_timezone = default_timezone
        self.conversations = Conversations()
        self.media = MediaStore()
        self.clock = Clock()
        """The service clock once attached: the demo's fast-forward moves it, and "now" in chats follows."""
        self._sent_keys: OrderedDict[str, SendResult] = OrderedDict()
        self._seen_events: OrderedDict[str, None] = OrderedDict()
        self._media_by_event: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_image_bytes=settings.media.max_image_bytes,
            max_body_bytes=settings.server.max_body_bytes,
            default_locale=settings.i18n.default_locale,
            default_timezone=settings.schedule.default_timezone,
        )

    def attach(self, links: AppLinks) -> None:
        """The page needs the people (picker), the clock (fast-forward) and the stored media (photos)."""
        super().attach(links)
        self.clock = links.clock

    def now(self) -> datetime:
        return self.clock.now()

    async def on_shutdown(self) -> None:
        """End open event streams first, so stopping the server does not wait for idle browser tabs."""
        self.conversations.close()

    async def close(self) -> None:
        self.conversations.close()

    # ------------------------------------------------------------------ inbound
    async def parse_callback(self, request: web.Request) -> ParseResult:
        inbound = await read_inbound(
            request, max_image_bytes=self.max_image_bytes, max_body_bytes=self.max_body_bytes
        )
        if isinstance(inbound, TextIn):
            event: Event = TextMessage(
                platform=PLATFORM,
                workspace=WORKSPACE,
                event_id=inbound.event_id(),
                sender_id=inbound.user,
                text=inbound.text,
                received_at=self.now(),
            )
            if self._first_time(event.event_id):
                self.conversations.add(
                    SimMessage(
                        id=self.conversations.next_id(),
                        user=inbound.user,
                        sender="user",
                        kind="text",
                        at=self.now(),
                        text=inbound.text,
                    )
                )
            return event
        if isinstance(inbound, ActionIn):
            return CardAction(
                platform=PLATFORM,
                workspace=WORKSPACE,
                event_id=inbound.event_id(),
                sender_id=inbound.user,
                value=inbound.value,
                form=inbound.form,
                message_ref=inbound.message_ref,
                received_at=self.now(),
            )
        return self._image_event(inbound)

    def _image_event(self, upload: ImageUpload) -> ImageMessage:
        ref = self._media_by_event.get(upload.event_id)
        if ref is None:  # a resent upload keeps its first reference and shows once
            ref = f"simimg-{uuid.uuid4().hex}"
            self.media.put(ref, upload.data, upload.mime)
            self._media_by_event[upload.event_id] = ref
            while len(self._media_by_event) > _REMEMBERED_KEYS:
                self._media_by_event.popitem(last=False)
            self.conversations.add(
                SimMessage(
                    id=self.conversations.next_id(),
                    user=upload.user,
                    sender="user",
                    kind="image",
                    at=self.now(),
                    src=media_url(ref),
                )
            )
        return ImageMessage(
            platform=PLATFORM,
            workspace=WORKSPACE,
            event_id=upload.event_id,
            sender_id=upload.user,
            media_ref=ref,
            received_at=self.now(),
        )

    def _first_time(self, event_id: str) -> bool:
        """A resent submission (same client event id) must not show the person's message twice."""
        if event_id in self._seen_events:
            return False
        self._seen_events[event_id] = None
        while len(self._seen_events) > _REMEMBERED_KEYS:
            self._seen_events.popitem(last=False)
        return True

    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        rendered = render_card(answer.card) if answer.card is not None else None
        if rendered is not None and isinstance(event, CardAction) and event.message_ref:
            # A card in the answer replaces the clicked card, as on platforms that answer inline.
            self.conversations.replace_card(event.message_ref, rendered)
        return web.json_response(
            {
                "ok": True,
                "event_id": event.event_id if event is not None else None,
                "toast": answer.toast,
                "toast_kind": answer.toast_kind,
                "card": rendered,
            }
        )

    # ------------------------------------------------------------------ outbound
    def render(self, card: Card) -> dict[str, Any]:
        return render_card(card)

    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult:
        return await self.send_many([recipient], card, idempotency_key=idempotency_key)

    async def send_many(self, recipients: list[str], card: Card, *, idempotency_key: str) -> SendResult:
        done = self._sent_keys.get(idempotency_key)
        if done is not None:  # like Feishu's uuid: a resend after a crash shows nothing twice
            return done
        rendered = render_card(card)
        result = SendResult()
        at = self.now()
        for rcpt in recipients:
            message = self.conversations.add(
                SimMessage(
                    id=self.conversations.next_id(),
                    user=rcpt,
                    sender="bot",
                    kind="card",
                    at=at,
                    card=rendered,
                )
            )
            result.message_refs[rcpt] = message.id
        self._sent_keys[idempotency_key] = result
        while len(self._sent_keys) > _REMEMBERED_KEYS:
            self._sent_keys.popitem(last=False)
        return result

    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None:
        message = self.conversations.get(message_ref)
        if message is None or message.user != recipient:
            raise PermanentError(f"no simulator message {message_ref} for {recipient}")
        self.conversations.replace_card(message_ref, render_card(card))

    async def download_media(self, ref: str, *, max_bytes: int) -> bytes:
        found = self.media.get(ref)
        if found is None:
            raise PermanentError(f"unknown simulator media {ref}")
        data, _mime = found
        if len(data) > max_bytes:
            raise PermanentError(f"media {ref} is {len(data)} bytes, more than {max_bytes}")
        return data

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        ref = f"simup-{uuid.uuid4().hex}"
        self.media.put(ref, data, mime)
        return ref

    async def list_org(self) -> Org:
        """The simulator's org *is* the database's sim workspace: an org sync reads back what is there."""
        if self.links is None:
            return Org()
        return await self.links.directory.org(PLATFORM, WORKSPACE)

    # ------------------------------------------------------------------ the page
    def web_routes(self) -> list[web.AbstractRouteDef]:
        return SimPages(self).routes()
