"""``FeishuAdapter``: the Feishu / Lark implementation of the adapter interface.

Webhook mode: ``POST /callbacks/feishu`` → size cap → signature over the raw body and its timestamp's
replay window (when an encrypt key is set) → depth-capped JSON → decrypt → verification token → the event's
``create_time`` window → typed parse. Long-connection mode (``[feishu] mode = "websocket"``): lark-oapi's
client in its own thread (``websocket.LongConnection``) feeds the same parser and the same dispatcher;
webhooks stay available only if a verification token is configured, so an unauthenticated URL is never left
open.

Sending is one ``im/v1/messages`` call per person (``max_recipients_per_call = 1``): ``message/v4/batch_send``
does take interactive cards, but its ``bm-`` messages can never be patched or answered with an updated card,
and it returns no per-person message id for ``card_messages``. Broadcast speed comes from the outbox's
parallel workers under ``[feishu] rate_limit``, which the client takes per message call (Feishu's 50/s and
1,000/min per app, both kept: ``adapters/ratelimit.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Self

from aiohttp import web

from adapters.base import (
    Adapter,
    AppLinks,
    CallbackAnswer,
    CallbackRejected,
    MediaReader,
    Org,
    OrgDepartment,
    OrgMember,
    ParseResult,
    PermanentError,
    SendResult,
)
from adapters.feishu import crypto
from adapters.feishu.client import INVALID_RECIPIENT_CODES, FeishuApiError, FeishuClient
from adapters.feishu.inbound import (
    envelope_token,
    is_url_verification,
    parse_payload,
    split_media_ref,
)
from adapters.feishu.render import render_card
from adapters.hosted_images import HostedImages
from adapters.http import ReplayWindow, json_object, read_callback_body
from adapters.ratelimit import TokenBucket, limiter_for
from bot.core.clock import Clock
from bot.core.events import CardAction, Event, UrlVerification
from cards.model import Card, Image

if TYPE_CHECKING:
    from adapters.feishu.websocket import LongConnection
    from bot.core.config import Settings

log = logging.getLogger("perfloop.feishu")

TOAST_TYPES = {"info": "info", "success": "success", "warning": "warning", "error": "error"}
MAX_CALLBACK_BYTES = 128 * 1024
"""Envelopes are small; the largest legitimate one is a form submit (inputs capped at 1000 characters, a few
per card), which after JSON escaping and base64 stays far below this. Bigger bodies are refused early."""
REPLAY_WINDOW = ReplayWindow(window=8 * 3600, tolerance=300)
"""The ``[feishu]`` defaults: Feishu's retries span about 7.1 h."""


class FeishuAdapter(Adapter):
    platform: ClassVar[str] = "feishu"
    max_recipients_per_call: ClassVar[int] = 1
    supports_text_inputs: ClassVar[bool] = True
    answers_card_inline: ClassVar[bool] = True

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        verification_token: str = "",
        encrypt_key: str = "",
        api_base: str = "https://open.feishu.cn",
        mode: str = "webhook",
        max_body_bytes: int = MAX_CALLBACK_BYTES,
        media: MediaReader | None = None,
        replay: ReplayWindow = REPLAY_WINDOW,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.workspace = app_id
        self.limiter = limiter
        self.replay = replay
        self.clock = Clock()
        """Signed timestamps are checked against it; the app's clock once attached (tests move it)."""
        self.app_id = app_id
        self.verification_token = verification_token
        self.encrypt_key = encrypt_key
        self.mode = mode
        self.max_body_bytes = min(max_body_bytes, MAX_CALLBACK_BYTES)
        self.api_base = api_base
        self.client = FeishuClient(api_base=api_base, app_id=app_id, app_secret=app_secret, limiter=limiter)
        self.images = HostedImages(
            media, lambda data, name, mime: self.client.upload_image(data, filename=name, mime=mime)
        )
        self.long_connection: LongConnection | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        cfg = settings.feishu
        return cls(
            app_id=cfg.app_id,
            app_secret=cfg.app_secret,
            verification_token=cfg.verification_token,
            encrypt_key=cfg.encrypt_key,
            api_base=cfg.api_base,
            mode=cfg.mode,
            max_body_bytes=settings.server.max_body_bytes,
            replay=ReplayWindow(cfg.replay_window_seconds, cfg.clock_tolerance_seconds),
            limiter=limiter_for(cfg.rate_limit),
        )

    def attach(self, links: AppLinks) -> None:
        """The event sink for the long connection; the clock for the replay window; the media for images."""
        super().attach(links)
        self.clock = links.clock
        self.images.use_store(links.media)

    async def start(self) -> None:
        if self.mode != "websocket":
            return
        self.attached()  # websocket mode hands events to the app's sink: fail now, not at the first event
        # Only now: the long-connection client is lark-oapi's, and importing the SDK costs ~140 MB.
        from adapters.feishu.websocket import LongConnection

        self.long_connection = LongConnection(
            app_id=self.app_id,
            app_secret=self.client.app_secret,
            domain=self.api_base,
            on_payload=self.handle_payload,
        )
        self.long_connection.start(asyncio.get_running_loop())

    async def close(self) -> None:
        if self.long_connection is not None:
            await self.long_connection.stop()
            self.long_connection = None
        await self.client.close()

    # ------------------------------------------------------------------ inbound (webhook)
    async def parse_callback(self, request: web.Request) -> ParseResult:
        if not self.verification_token:
            raise CallbackRejected(404, "webhook callbacks are disabled (no verification token configured)")
        if request.method != "POST":
            raise CallbackRejected(405, "POST only")
        body = await read_callback_body(request, self.max_body_bytes)
        signed = bool(self.encrypt_key) and crypto.SIGNATURE_HEADER in request.headers
        if signed:
            # The signature covers the raw body: verify it before parsing a byte (issue 16 #4), then the
            # signed timestamp's window (#7).
            headers = request.headers
            timestamp = headers.get(crypto.TIMESTAMP_HEADER)
            crypto.verify_signature(
                timestamp=timestamp,
                nonce=headers.get(crypto.NONCE_HEADER),
                given=headers.get(crypto.SIGNATURE_HEADER),
                encrypt_key=self.encrypt_key,
                body=body,
            )
            self._check_time(timestamp, unit=1.0, what="X-Lark-Request-Timestamp")
        data = self._open(json_object(body), signed=signed)
        crypto.check_token(self.verification_token, envelope_token(data))
        if not is_url_verification(data) and data.get("schema"):
            header = data.get("header")
            created = header.get("create_time") if isinstance(header, dict) else None
            if created is not None or not signed:  # unsigned: create_time is the only time there is
                self._check_time(created, unit=0.001, what="create_time")
        return parse_payload(data, platform=self.platform, workspace=self.workspace)

    def _check_time(self, value: Any, *, unit: float, what: str) -> None:
        """A signed timestamp must fall inside ``[feishu] replay_window_seconds``, which admits Feishu's own
        retries (15 s, 5 min, 1 h, 6 h): a correctly signed 2-day-old event is a replay (issue 16 #7).
        Replays inside the window are harmless: every event is deduplicated by ``event_id``."""
        try:
            seconds = int(str(value)) * unit
        except ValueError:
            raise CallbackRejected(401, f"{what} is not a number") from None
        refusal = self.replay.refusal(seconds, self.clock.now().timestamp())
        if refusal is not None:
            raise CallbackRejected(401, f"{what}: {refusal}")

    def _open(self, outer: dict[str, Any], *, signed: bool) -> dict[str, Any]:
        """Decryption once the signature held (when Feishu signs); only the URL check may come unsigned."""
        if not self.encrypt_key:
            if "encrypt" in outer:
                raise CallbackRejected(400, "encrypted body but no encrypt_key configured")
            return outer
        encrypted = outer.get("encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise CallbackRejected(400, "plaintext body while an encrypt_key is configured")
        if signed:
            return json_object(crypto.decrypt(self.encrypt_key, encrypted), what="decrypted body")
        # Unsigned: only the URL check may pass. Every other outcome, including undecryptable bytes, gets the
        # same answer, so an unsigned sender learns nothing about the padding (no decryption oracle).
        try:
            data = json_object(crypto.decrypt(self.encrypt_key, encrypted))
        except CallbackRejected:
            data = {}
        if not is_url_verification(data):
            raise CallbackRejected(401, "missing signature headers")
        return data

    def answer_verification(self, verification: UrlVerification) -> web.StreamResponse:
        return web.json_response({"challenge": verification.answer})

    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        if isinstance(event, CardAction):
            return web.json_response(self.card_answer(answer))
        return web.json_response({"msg": "success"})

    def card_answer(self, answer: CallbackAnswer) -> dict[str, Any]:
        """The ``card.action.trigger`` response body: toast and, when the card changed, the whole new card."""
        out: dict[str, Any] = {}
        if answer.toast:
            out["toast"] = {"type": TOAST_TYPES.get(answer.toast_kind, "info"), "content": answer.toast[:200]}
        if answer.card is not None:
            out["card"] = {"type": "raw", "data": self.render(answer.card)}
        return out

    # ------------------------------------------------------------------ inbound (long connection)
    async def handle_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """One envelope from the long connection (already authenticated by the connection itself)."""
        sink = self.attached().sink
        try:
            parsed = parse_payload(payload, platform=self.platform, workspace=self.workspace)
        except CallbackRejected as exc:
            log.warning("long-connection event rejected", extra={"reason": exc.reason})
            return None
        if parsed is None or isinstance(parsed, UrlVerification):
            return None
        answer = await sink(parsed)
        return self.card_answer(answer) if isinstance(parsed, CardAction) else None

    # ------------------------------------------------------------------ outbound
    def render(self, card: Card) -> dict[str, Any]:
        return render_card(card, image_keys=self.images.known())

    async def _prepare_images(self, card: Card) -> None:
        """Upload media-store images (sha256 ids) once each; the image_key is cached for renders."""
        for el in card.elements:
            if isinstance(el, Image) and not el.media_id.startswith("img_"):
                await self.images.hosted_id(el.media_id)

    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult:
        await self._prepare_images(card)
        try:
            message_id = await self.client.send_card(recipient, self.render(card), uuid=idempotency_key)
        except FeishuApiError as exc:
            if exc.code in INVALID_RECIPIENT_CODES:
                return SendResult(invalid_recipients=[recipient])
            raise
        return SendResult(message_refs={recipient: message_id})

    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None:
        await self._prepare_images(card)
        await self.client.patch_card(message_ref, self.render(card))

    async def download_media(self, ref: str, *, max_bytes: int) -> bytes:
        try:
            message_id, key = split_media_ref(ref)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        return await self.client.download_resource(message_id, key, max_bytes=max_bytes)

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        """Upload an image (a digest chart) through im/v1/images; returns the image_key cards reference."""
        return await self.client.upload_image(data, filename=filename, mime=mime)

    async def list_org(self) -> Org:
        raw_depts = await self.client.departments()
        departments: list[OrgDepartment] = []
        for d in raw_depts:
            dept_id = d.get("open_department_id") or d.get("department_id")
            if not dept_id or (d.get("status") or {}).get("is_deleted"):
                continue
            parent = d.get("parent_department_id")
            leader = d.get("leader_user_id")
            departments.append(
                OrgDepartment(
                    id=str(dept_id),
                    name=str(d.get("name") or dept_id),
                    parent_id=None if parent in (None, "", "0") else str(parent),
                    leader_ids=[str(leader)] if leader else [],
                )
            )
        known = {d.id for d in departments}
        members: dict[str, OrgMember] = {}
        for dept_id in ["0", *(d.id for d in departments)]:
            for u in await self.client.users_in(dept_id):
                open_id = u.get("open_id")
                if not open_id or open_id in members:
                    continue
                status = u.get("status") or {}
                active = not (status.get("is_resigned") or status.get("is_frozen") or status.get("is_exited"))
                leader = u.get("leader_user_id")
                members[open_id] = OrgMember(
                    user_id=str(open_id),
                    name=str(u.get("name") or open_id),
                    department_ids=[str(x) for x in u.get("department_ids") or [] if str(x) in known],
                    manager_id=str(leader) if leader else None,
                    active=active,
                )
        return Org(departments=departments, members=list(members.values()))

    async def check_credentials(self) -> str:
        await self.client.token(force=True)
        return f"tenant_access_token OK for app {self.app_id} at {self.api_base}"
