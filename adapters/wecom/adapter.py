"""``WeComAdapter``: callbacks in (verify, decrypt, parse), cards out (render, send, update), media and org.

Answering: WeCom waits 5 s for the callback answer and retries up to three times; an empty 200 body tells it
the event was received. The dispatcher has already committed by then, and anything slow (updating the card,
sending replies) runs afterwards through the outbox. WeCom has no toast: when a click is refused the reason is
sent to the clicker as a short text message from a tracked background task, after the answer.

Message references: a template card's ``response_code`` (from message/send, or the fresh one in each click
callback) is what ``update`` needs, with the card's ``task_id`` (the replacement keeps it): the reference is
``rc:<task_id>:<response_code>``. The code is single-use and expires after 72 h, so an update whose code
WeCom refuses falls back to sending the new card as a fresh message. The code ``message/send`` returns is
*shared* by every recipient of that call: one person's update would use it up and everyone else's would
arrive as a fresh card. So a card that can be updated (one with buttons) goes out one call per person, each
with its own task id and response code; only ``text_notice`` cards (never updated in place) are batched.
A ``text_notice`` card has no response code; its reference is ``msgid:<id>`` and updating it also means
sending a fresh card.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any, ClassVar, Self

from aiohttp import web
from pydantic import ValidationError

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
    SendResult,
)
from adapters.hosted_images import HostedImages
from adapters.http import ReplayWindow, read_callback_body
from adapters.wecom.client import ALL_INVALID_RECIPIENTS, WeComAPIError, WeComClient
from adapters.wecom.crypto import CallbackCrypto, CryptoError
from adapters.wecom.inbound import (
    MalformedPayload,
    card_ref,
    parse_card_ref,
    parse_envelope,
    parse_message,
    to_event,
)
from adapters.wecom.render import render_card, text_message
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.events import CardAction, Event, UrlVerification
from cards.model import Card, Image

log = logging.getLogger("perfloop.wecom")

MAX_CALLBACK_BYTES = 64 * 1024
"""WeCom callbacks are a few hundred bytes; anything near this is not from WeCom."""
MAX_CLOCK_SKEW = 300
"""Seconds a callback's ``timestamp`` may differ from our clock (replay window)."""
REPLAY_WINDOW = ReplayWindow(window=MAX_CLOCK_SKEW, tolerance=MAX_CLOCK_SKEW)
"""The ``[wecom]`` defaults: WeCom documents no window and retries within seconds."""
DUPLICATE_CHECK_SECONDS = 1800
"""The least ``duplicate_check_interval`` we ask; ``[outbox.dedupe_window_seconds] wecom`` may ask more (4 h
at most), and the outbox resends a send in doubt only inside that window."""
MEDIA_ID_TTL = 2.5 * 24 * 3600
"""Temporary media lives 3 days on WeCom; re-upload a little before."""
ORG_CONCURRENCY = 4
UPDATABLE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
"""Card types ``message/send`` answers with a ``response_code`` (so they can be updated in place)."""


def task_id_for(*parts: str) -> str:
    """A stable task id: the same outbox row and card give the same id (so WeCom's duplicate check sees a
    resend as the same message); a different card or row gives a different one (WeCom wants them unique)."""
    return "pl-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


class WeComAdapter(Adapter):
    platform: ClassVar[str] = "wecom"
    max_recipients_per_call: ClassVar[int] = 1000
    max_recipients_per_interactive_call: ClassVar[int | None] = 1
    supports_text_inputs: ClassVar[bool] = False
    answers_card_inline: ClassVar[bool] = False

    def __init__(
        self,
        *,
        corp_id: str,
        agent_id: int,
        secret: str,
        token: str,
        encoding_aes_key: str,
        api_base: str,
        link_url: str,
        media: MediaReader | None = None,
        clock: Clock | None = None,
        max_body_bytes: int = MAX_CALLBACK_BYTES,
        duplicate_check_seconds: int = DUPLICATE_CHECK_SECONDS,
        replay: ReplayWindow = REPLAY_WINDOW,
    ) -> None:
        self.workspace = corp_id
        self.replay = replay
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.crypto = CallbackCrypto(token, encoding_aes_key, corp_id)
        self.client = WeComClient(api_base=api_base, corp_id=corp_id, secret=secret)
        self.link_url = link_url
        self.clock = clock or Clock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.images = HostedImages(
            media,
            lambda data, name, mime: self.upload_media(data, filename=name, mime=mime),
            ttl_seconds=MEDIA_ID_TTL,
        )
        self.max_body_bytes = min(MAX_CALLBACK_BYTES, max_body_bytes)
        """The body is read from the stream, where aiohttp's client_max_size does not apply."""
        self.duplicate_check_seconds = min(4 * 3600, max(DUPLICATE_CHECK_SECONDS, duplicate_check_seconds))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        cfg = settings.wecom
        return cls(
            corp_id=cfg.corp_id,
            agent_id=cfg.agent_id,
            secret=cfg.secret,
            token=cfg.token,
            encoding_aes_key=cfg.encoding_aes_key,
            api_base=cfg.api_base,
            link_url=settings.server.public_url,
            max_body_bytes=settings.server.max_body_bytes,
            duplicate_check_seconds=settings.outbox.dedupe_window_seconds.wecom,
            replay=ReplayWindow(cfg.replay_window_seconds, cfg.clock_tolerance_seconds),
        )

    def attach(self, links: AppLinks) -> None:
        """The service clock for the replay window (tests and the demo move it); its media for card images."""
        super().attach(links)
        self.clock = links.clock
        self.images.use_store(links.media)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self.client.close()

    # ------------------------------------------------------------------ inbound
    async def parse_callback(self, request: web.Request) -> ParseResult:
        q = request.query
        sig, timestamp, nonce = q.get("msg_signature"), q.get("timestamp"), q.get("nonce")
        if not sig or not timestamp or not nonce:
            raise CallbackRejected(400, "msg_signature, timestamp and nonce are required")
        self._check_timestamp(timestamp)
        if request.method == "GET":
            echostr = q.get("echostr")
            if not echostr:
                raise CallbackRejected(400, "echostr is required")
            try:
                plain = self._decrypt_echostr(sig, timestamp, nonce, echostr)
            except CryptoError as exc:
                raise CallbackRejected(403, str(exc)) from None
            return UrlVerification(platform=self.platform, answer=plain)
        body = await read_callback_body(request, self.max_body_bytes)
        try:
            envelope = parse_envelope(body)
            plaintext = self.crypto.decrypt(sig, timestamp, nonce, envelope.encrypt)
            message = parse_message(plaintext)
            return to_event(message, workspace=self.workspace)
        except CryptoError as exc:
            raise CallbackRejected(403, str(exc)) from None
        except MalformedPayload as exc:
            raise CallbackRejected(400, str(exc)) from None
        except ValidationError as exc:
            raise CallbackRejected(400, f"unexpected field values: {exc.error_count()} errors") from None

    def _decrypt_echostr(self, sig: str, timestamp: str, nonce: str, echostr: str) -> str:
        try:
            return self.crypto.decrypt(sig, timestamp, nonce, echostr)
        except CryptoError:
            if " " not in echostr:
                raise
            # A '+' sent unencoded reads back as a space.
            return self.crypto.decrypt(sig, timestamp, nonce, echostr.replace(" ", "+"))

    def _check_timestamp(self, timestamp: str) -> None:
        try:
            ts = int(timestamp)
        except ValueError:
            raise CallbackRejected(400, "timestamp is not a number") from None
        refusal = self.replay.refusal(ts, self.clock.now().timestamp())
        if refusal is not None:
            raise CallbackRejected(403, refusal)

    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        if isinstance(event, CardAction) and answer.toast and answer.toast_kind in ("error", "warning"):
            self._background(self._say(event.sender_id, answer.toast, event.event_id))
        return web.Response(text="")

    def answer_verification(self, verification: UrlVerification) -> web.StreamResponse:
        return web.Response(text=verification.answer, content_type="text/plain")

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _say(self, user_id: str, text: str, event_id: str) -> None:
        body = {
            "touser": user_id,
            "agentid": self.agent_id,
            **text_message(text),
            "enable_duplicate_check": 1,
            "duplicate_check_interval": self.duplicate_check_seconds,
        }
        try:
            await self.client.send(body)
        except Exception:
            log.warning(
                "could not tell the clicker why a click was refused",
                extra={"event_id": event_id},
                exc_info=True,
            )

    # ------------------------------------------------------------------ outbound
    def render(self, card: Card) -> dict[str, Any]:
        return render_card(
            card,
            task_id=task_id_for(self.corp_id, str(self.agent_id), _card_json(card)),
            link_url=self.link_url,
        )

    def _render_for(self, card: Card, key: str) -> dict[str, Any]:
        task_id = task_id_for(self.corp_id, str(self.agent_id), key, _card_json(card))
        return render_card(card, task_id=task_id, link_url=self.link_url)

    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult:
        return await self.send_many([recipient], card, idempotency_key=idempotency_key)

    async def send_many(self, recipients: list[str], card: Card, *, idempotency_key: str) -> SendResult:
        if not 1 <= len(recipients) <= self.max_recipients_per_call:
            raise ValueError(f"WeCom sends to 1..{self.max_recipients_per_call} users per call")
        template = self._render_for(card, idempotency_key)
        if len(recipients) > 1 and template["card_type"] in UPDATABLE:
            # One call per person: each gets a response_code of their own (see the module docstring). The key
            # per person is stable, so a retry of the row is a resend WeCom's duplicate check recognises.
            each = SendResult()
            for rcpt in recipients:
                one = await self.send_many([rcpt], card, idempotency_key=f"{idempotency_key}\x1f{rcpt}")
                each.message_refs.update(one.message_refs)
                each.invalid_recipients.extend(one.invalid_recipients)
            return each
        body = {
            "touser": "|".join(recipients),
            "msgtype": "template_card",
            "agentid": self.agent_id,
            "template_card": template,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": self.duplicate_check_seconds,
        }
        try:
            result = await self.client.send(body)
        except WeComAPIError as exc:
            if exc.errcode == ALL_INVALID_RECIPIENTS:
                return SendResult(invalid_recipients=list(recipients))
            raise
        invalid = _split(result.get("invaliduser")) | _split(result.get("unlicenseduser"))
        code = result.get("response_code")
        ref = card_ref(template["task_id"], str(code)) if code else f"msgid:{result.get('msgid', '')}"
        valid = [r for r in recipients if r not in invalid]
        await self._send_images(card, valid)
        return SendResult(
            message_refs=dict.fromkeys(valid, ref), invalid_recipients=[r for r in recipients if r in invalid]
        )

    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None:
        if not message_ref.startswith("msgid:"):
            task_id, code = parse_card_ref(message_ref)
            template = (
                render_card(card, task_id=task_id, link_url=self.link_url)
                if task_id
                else self._render_for(card, f"update:{message_ref}")
            )
            body = {
                "userids": [recipient],
                "agentid": self.agent_id,
                "response_code": code,
                "template_card": template,
            }
            try:
                await self.client.update_template_card(body)
                return
            except WeComAPIError as exc:
                log.info(
                    "response_code refused; sending the card afresh",
                    extra={"errcode": exc.errcode, "recipient": recipient},
                )
        key = "refresh-" + hashlib.sha256(message_ref.encode()).hexdigest()[:24]
        await self.send(recipient, card, idempotency_key=key)

    async def _send_images(self, card: Card, recipients: list[str]) -> None:
        """Template cards cannot embed our images: each Image follows the card as an image message."""
        if not recipients:
            return
        for el in card.elements:
            if not isinstance(el, Image):
                continue
            media_id = await self.images.hosted_id(el.media_id)
            if media_id is None:
                log.warning("image not found in the media store", extra={"media_id": el.media_id})
                continue
            await self.client.send(
                {
                    "touser": "|".join(recipients),
                    "msgtype": "image",
                    "agentid": self.agent_id,
                    "image": {"media_id": media_id},
                    "enable_duplicate_check": 1,
                    "duplicate_check_interval": self.duplicate_check_seconds,
                }
            )

    async def download_media(self, ref: str, *, max_bytes: int) -> bytes:
        return await self.client.media_get(ref, max_bytes=max_bytes)

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        kind = "image" if mime.startswith("image/") else "file"
        return await self.client.media_upload(data, filename=filename, mime=mime, kind=kind)

    # ------------------------------------------------------------------ org
    async def list_org(self) -> Org:
        """Every visible department and its members; a member's manager is ``direct_leader[0]``."""
        raw_depts = await self.client.department_list()
        departments = [
            OrgDepartment(
                id=str(d["id"]),
                name=str(d.get("name", d["id"])),
                parent_id=str(d["parentid"]) if d.get("parentid") else None,
                leader_ids=[str(x) for x in d.get("department_leader", [])],
            )
            for d in raw_depts
        ]
        gate = asyncio.Semaphore(ORG_CONCURRENCY)

        async def users(dept_id: str) -> list[dict[str, Any]]:
            async with gate:
                return await self.client.user_list(dept_id)

        per_dept = await asyncio.gather(*(users(d.id) for d in departments))
        members: dict[str, OrgMember] = {}
        for batch in per_dept:
            for u in batch:
                member = _member(u)
                known = members.get(member.user_id)
                if known is not None:
                    merged = sorted(set(known.department_ids) | set(member.department_ids))
                    member = known.model_copy(update={"department_ids": merged})
                members[member.user_id] = member
        return Org(departments=departments, members=sorted(members.values(), key=lambda m: m.user_id))

    async def get_member(self, user_id: str) -> OrgMember | None:
        """One member for an incremental update after a change_contact event; None if WeCom no longer knows
        them (60111: userid not found), which the caller treats as having left."""
        try:
            return _member(await self.client.user_get(user_id))
        except WeComAPIError as exc:
            if exc.errcode == 60111:
                return None
            raise

    async def check_credentials(self) -> str:
        await self.client.token(force=True)
        return f"WeCom corp {self.corp_id}, agent {self.agent_id}: access token OK"


def _member(u: dict[str, Any]) -> OrgMember:
    leaders = [str(x) for x in u.get("direct_leader", []) if x]
    # status: 1 active, 2 disabled, 4 not yet activated, 5 left.
    return OrgMember(
        user_id=str(u["userid"]),
        name=str(u.get("name", u["userid"])),
        department_ids=[str(x) for x in u.get("department", [])],
        manager_id=leaders[0] if leaders else None,
        active=int(u.get("status", 1)) in (1, 4),
    )


def _split(value: Any) -> set[str]:
    return {x for x in str(value or "").split("|") if x}


def _card_json(card: Card) -> str:
    return json.dumps(card.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
