"""``DingTalkAdapter``: the DingTalk internal app + robot, in HTTP-callback or Stream mode.

Receiving. Stream mode (default) needs no public URL: ``start()`` opens the Stream connection and frames go
straight to the dispatcher. HTTP mode takes three kinds of POST at ``/callbacks/dingtalk``:
- robot messages, signed with ``timestamp`` / ``sign`` headers (HMAC-SHA256 with the app secret). The
  signature covers the timestamp only, so each pair is remembered (``AppLinks.signatures``, a database table)
  with the first ``msgId`` it came with, and refused with any other until it leaves the replay window;
- event subscriptions (``?msg_signature&timestamp&nonce`` + ``{"encrypt"}``), answered with an encrypted
  "success";
- card clicks, posted to the URL registered for our ``callbackRouteKey``. DingTalk documents no signature for
  these, so the registered URL carries ``card_token`` = HMAC(app secret, route key), checked in constant
  time; that token is static, so every button also carries a per-card click token (``inbound.ClickSigner``:
  out-track id, recipient, button, expiry) that must verify before a click is dispatched.

Sending. Cards with buttons → interactive card (createAndDeliver, one out-track id per recipient, later
updated by that id); cards without → robot one-to-one ``batchSend`` in chunks of 20; people the robot
cannot reach → work notification when ``work_notice_fallback`` is on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from aiohttp import web

from adapters.base import (
    Adapter,
    AppLinks,
    CallbackAnswer,
    CallbackRejected,
    LocalSignatureMemory,
    MediaReader,
    Org,
    OrgDepartment,
    OrgMember,
    ParseResult,
    PermanentError,
    RateLimited,
    SendResult,
    SignatureMemory,
)
from adapters.dingtalk import inbound
from adapters.dingtalk.client import BATCH_SEND_LIMIT, DingTalkClient, chunks
from adapters.dingtalk.crypto import (
    EventCrypto,
    MalformedBody,
    SignatureError,
    check_robot_signature,
    robot_signature_key,
)
from adapters.dingtalk.render import card_param_map, render_card, work_notice
from adapters.hosted_images import HostedImages
from adapters.http import ReplayWindow, json_object, read_callback_body
from bot.core.clock import Clock
from bot.core.config import DingTalkConfig, Settings
from bot.core.events import Event, MemberChanged, UrlVerification
from cards.catalogue import Translator
from cards.model import Card, Image

log = logging.getLogger("perfloop.dingtalk")

ROOT_DEPT = 1
MANAGER_LOOKUPS = 4
"""Concurrent ``user/get`` calls during org sync (the manager is only in the user detail)."""
THROTTLE_RETRIES = (1.0, 2.0)


MEDIA_ID_TTL = 2.5 * 24 * 3600
"""Uploaded media ids are valid for a limited time; re-upload well before they lapse."""


class DingTalkAdapter(Adapter):
    platform: ClassVar[str] = "dingtalk"
    max_recipients_per_call: ClassVar[int] = BATCH_SEND_LIMIT
    supports_text_inputs: ClassVar[bool] = False
    answers_card_inline: ClassVar[bool] = False
    shows_toasts: ClassVar[bool] = False

    def __init__(
        self,
        cfg: DingTalkConfig,
        *,
        public_url: str,
        max_body_bytes: int,
        default_locale: str,
        media: MediaReader | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.cfg = cfg
        self.workspace = cfg.app_key
        self.public_url = public_url.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.t = Translator(default_locale)
        self.client = DingTalkClient(cfg)
        self.limiter = self.client.bucket
        self.crypto = EventCrypto(cfg.token, cfg.aes_key, cfg.app_key, cfg.corp_id) if cfg.aes_key else None
        self.route_key = f"perfloop-{hashlib.sha256(cfg.app_key.encode()).hexdigest()[:16]}"
        self.card_token = hmac.new(
            cfg.app_secret.encode(), self.route_key.encode(), hashlib.sha256
        ).hexdigest()
        self.click_signer = inbound.ClickSigner.from_secret(cfg.app_secret)
        self.clock = clock or Clock()
        """Signature timestamps are checked against it; the app's clock once attached."""
        self.replay = ReplayWindow(cfg.replay_window_seconds, cfg.clock_tolerance_seconds)
        self._local_signatures: SignatureMemory | None = None
        self._route_registered = False
        self._route_lock = asyncio.Lock()
        self._stream: Any = None
        self._stream_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.images = HostedImages(
            media,
            lambda data, name, mime: self.upload_media(data, filename=name, mime=mime),
            ttl_seconds=MEDIA_ID_TTL,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.dingtalk,
            public_url=settings.server.public_url,
            max_body_bytes=settings.server.max_body_bytes,
            default_locale=settings.i18n.default_locale,
        )

    def attach(self, links: AppLinks) -> None:
        """The event sink for the stream (and extra events of one callback), the clock, the media."""
        super().attach(links)
        self.clock = links.clock
        self.images.use_store(links.media)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.cfg.mode != "stream":
            return
        from adapters.dingtalk.stream import StreamClient

        self._stop.clear()
        self._stream = StreamClient(
            self.cfg.app_key,
            self.cfg.app_secret,
            self.cfg.api_base,
            robot=self._on_stream_robot,
            card=self._on_stream_card,
            event=self._on_stream_event,
        )
        self._stream_task = asyncio.create_task(self._stream.run(self._stop), name="dingtalk-stream")

    async def close(self) -> None:
        self._stop.set()
        if self._stream_task is not None:
            if self._stream is not None and self._stream.websocket is not None:
                await self._stream.websocket.close()
            try:
                await asyncio.wait_for(self._stream_task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._stream_task.cancel()
            self._stream_task = None
        await self.client.close()

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def _dispatch(self, event: Event) -> CallbackAnswer:
        return await self.attached().sink(event)

    # ------------------------------------------------------------------ Stream mode
    async def _on_stream_robot(self, data: dict[str, Any], delivery_id: str) -> dict[str, Any]:
        try:
            event = inbound.robot_event(data, self.workspace)
        except inbound.MalformedPayload as exc:
            log.warning("dingtalk stream: malformed robot message", extra={"reason": str(exc)})
            return {}
        if event is not None:
            await self._dispatch(event)
        return {}

    async def _on_stream_card(self, data: dict[str, Any], delivery_id: str) -> dict[str, Any]:
        try:
            event = inbound.card_event(data, self.workspace)
        except inbound.MalformedPayload as exc:
            log.warning("dingtalk stream: malformed card callback", extra={"reason": str(exc)})
            return {}
        await self._dispatch(event)
        return {}

    async def _on_stream_event(self, event_type: str, data: dict[str, Any], event_id: str) -> None:
        payload = {"EventType": event_type, "UserId": data.get("userId") or data.get("UserId") or []}
        try:
            events = inbound.org_events(payload, self.workspace, event_id=f"evt:{event_id}")
        except inbound.MalformedPayload as exc:
            log.warning("dingtalk stream: malformed event", extra={"reason": str(exc)})
            return
        for ev in events:
            await self._dispatch(ev)

    # ------------------------------------------------------------------ HTTP mode
    async def parse_callback(self, request: web.Request) -> ParseResult:
        if request.method != "POST":
            raise CallbackRejected(405, "POST only")
        body = await read_callback_body(request, self.max_body_bytes)
        query = request.query
        if "msg_signature" in query or "signature" in query:
            return await self._parse_event(query, body)
        if "card_token" in query:
            return self._parse_card(query.get("card_token", ""), body)
        timestamp, sign = request.headers.get("timestamp"), request.headers.get("sign")
        try:
            check_robot_signature(timestamp, sign, self.cfg.app_secret, self._now_ms(), self.replay)
        except SignatureError as exc:
            raise CallbackRejected(401, str(exc)) from None
        assert timestamp is not None and sign is not None  # checked above
        data = _json_object(body)
        try:
            event = inbound.robot_event(data, self.workspace)
        except inbound.MalformedPayload as exc:
            raise CallbackRejected(400, str(exc)) from None
        await self._claim_signature(timestamp, sign, str(data["msgId"]))
        return event

    async def _claim_signature(self, timestamp: str, sign: str, msg_id: str) -> None:
        """The robot signature covers only the timestamp, so a captured pair would carry any body from
        anyone for the whole window (issue 16 #5). Each pair is remembered with the first ``msgId`` it came
        with, in the database (restarts, replicas), until it leaves the window: the same pair with another
        message is refused; with the same message it is DingTalk's retry, which the dispatcher's dedupe
        answers."""
        expires = datetime.fromtimestamp(self.replay.expires(int(timestamp) / 1000), UTC)
        key = robot_signature_key(timestamp, sign)
        first = await self._signatures().claim(self.platform, key, msg_id, expires)
        if first != msg_id:
            log.warning("dingtalk: robot signature replayed with another message", extra={"msg_id": msg_id})
            raise CallbackRejected(401, "signature already used by another message")

    def _signatures(self) -> SignatureMemory:
        if self.links is not None:
            return self.links.signatures
        if self._local_signatures is None:
            self._local_signatures = LocalSignatureMemory(self.clock)
        return self._local_signatures

    def _parse_card(self, token: str, body: bytes) -> ParseResult:
        if not hmac.compare_digest(token.encode(), self.card_token.encode()):
            raise CallbackRejected(401, "bad card_token")
        data = _json_object(body)
        try:
            return inbound.card_event(
                data, self.workspace, signer=self.click_signer, now=int(self.clock.now().timestamp())
            )
        except inbound.ClickRefused as exc:
            log.warning("dingtalk: card click refused", extra={"reason": str(exc)})
            raise CallbackRejected(401, str(exc)) from None
        except inbound.MalformedPayload as exc:
            raise CallbackRejected(400, str(exc)) from None

    def click_sign(self, out_track_id: str, recipient: str) -> Callable[[str], str]:
        """The token function for one recipient's card: valid ``card_click_ttl_days`` from now (an update
        re-issues it, so a card that keeps changing keeps working)."""
        expires = int(self.clock.now().timestamp()) + self.cfg.card_click_ttl_days * 86400
        return lambda value: self.click_signer.token(out_track_id, recipient, value, expires)

    async def _parse_event(self, query: Any, body: bytes) -> ParseResult:
        if self.crypto is None:
            raise CallbackRejected(403, "event subscription is not configured (aes_key)")
        signature, timestamp = query.get("msg_signature") or query.get("signature"), query.get("timestamp")
        if not signature or not timestamp or not query.get("nonce"):
            raise CallbackRejected(401, "missing signature, timestamp or nonce")
        # The query is checked before the body is parsed (issue 16 #4); the signature covers the body's
        # ``encrypt`` field, so it is verified right after the (depth-capped) parse.
        try:
            refusal = self.replay.refusal(int(timestamp) / 1000, self._now_ms() / 1000)
        except ValueError:
            raise CallbackRejected(401, "timestamp is not a number") from None
        if refusal is not None:  # signed, but captured long ago: a replay
            raise CallbackRejected(401, f"stale timestamp: {refusal}")
        envelope = _json_object(body)
        encrypt = envelope.get("encrypt")
        try:
            data = self.crypto.decrypt(
                signature, timestamp, query.get("nonce"), encrypt if isinstance(encrypt, str) else None
            )
        except MalformedBody as exc:
            raise CallbackRejected(400, str(exc)) from None
        except SignatureError as exc:
            raise CallbackRejected(401, str(exc)) from None
        event_type = str(data.get("EventType", ""))
        if event_type in ("check_url", "check_create_suite_url", "check_update_suite_url"):
            return UrlVerification(platform=self.platform, answer=self._encrypted_success())
        plain_id = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
        try:
            events = inbound.org_events(data, self.workspace, event_id=f"evt:{plain_id}")
        except inbound.MalformedPayload as exc:
            raise CallbackRejected(400, str(exc)) from None
        if not events:
            return None
        for extra in events[:-1]:  # one callback may name several users; the app dispatches the last
            await self._dispatch(extra)
        return events[-1]

    def _encrypted_success(self) -> str:
        assert self.crypto is not None
        return json.dumps(self.crypto.encrypt("success", self._now_ms()))

    def answer_verification(self, verification: UrlVerification) -> web.StreamResponse:
        return web.Response(text=verification.answer, content_type="application/json")

    def answer_callback(self, event: Event | None, answer: CallbackAnswer) -> web.StreamResponse:
        if (event is None or isinstance(event, MemberChanged)) and self.crypto is not None:
            return web.Response(text=self._encrypted_success(), content_type="application/json")
        return web.json_response({})

    # ------------------------------------------------------------------ rendering, sending
    def render(self, card: Card) -> dict[str, Any]:
        return render_card(card, template_id=self.cfg.card_template_id, t=self.t)

    async def send(self, recipient: str, card: Card, *, idempotency_key: str) -> SendResult:
        return await self.send_many([recipient], card, idempotency_key=idempotency_key)

    async def _with_uploaded_images(self, card: Card) -> Card:
        """DingTalk shows only media it hosts (``@…`` ids): each stored image is uploaded once and the card
        rendered with the hosted id."""
        if not any(isinstance(el, Image) and not el.media_id.startswith("@") for el in card.elements):
            return card
        elements: list[Any] = []
        for el in card.elements:
            if isinstance(el, Image) and not el.media_id.startswith("@"):
                hosted = await self.images.hosted_id(el.media_id)
                if hosted is not None:
                    el = el.model_copy(update={"media_id": hosted})
            elements.append(el)
        return card.model_copy(update={"elements": elements})

    async def send_many(self, recipients: list[str], card: Card, *, idempotency_key: str) -> SendResult:
        card = await self._with_uploaded_images(card)
        rendered = self.render(card)
        if rendered["interactive"]:
            result = await self._send_cards(recipients, card, rendered, idempotency_key)
        else:
            result = await self._send_plain(recipients, rendered)
        if result.invalid_recipients and self.cfg.work_notice_fallback:
            unreachable = result.invalid_recipients
            result.invalid_recipients = []
            for part in chunks(unreachable, 100):
                task_id = await self.client.work_notice(part, work_notice(card, self.t))
                result.message_refs.update({uid: f"wn:{task_id}" for uid in part})
        return result

    def out_track_id(self, idempotency_key: str, recipient: str) -> str:
        """Derived from the outbox key: a resend after a crash reuses the id, never shows a second card."""
        return "pl-" + hashlib.sha256(f"{idempotency_key}\n{recipient}".encode()).hexdigest()[:40]

    async def _ensure_route(self) -> None:
        if self.cfg.mode != "http" or self._route_registered:
            return
        async with self._route_lock:
            if not self._route_registered:
                url = f"{self.public_url}/callbacks/dingtalk?card_token={self.card_token}"
                await self.client.register_card_callback(self.route_key, url, self.card_token)
                self._route_registered = True

    async def _send_cards(
        self, recipients: list[str], card: Card, rendered: dict[str, Any], key: str
    ) -> SendResult:
        await self._ensure_route()
        result = SendResult()
        for rcpt in recipients:
            out_track_id = self.out_track_id(key, rcpt)
            params = card_param_map(card, self.t, sign=self.click_sign(out_track_id, rcpt))
            body: dict[str, Any] = {
                "cardTemplateId": rendered["cardTemplateId"],
                "outTrackId": out_track_id,
                "cardData": {"cardParamMap": params},
                "callbackType": "STREAM" if self.cfg.mode == "stream" else "HTTP",
                "openSpaceId": f"dtv1.card//IM_ROBOT.{rcpt}",
                "imRobotOpenSpaceModel": {"supportForward": False},
                "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.cfg.robot_code},
                "userIdType": 1,
            }
            if self.cfg.mode == "http":
                body["callbackRouteKey"] = self.route_key
            try:
                answer = await self.client.create_and_deliver(body)
            except PermanentError as exc:
                if "outTrackId" in str(exc) and "exist" in str(exc).lower():
                    result.message_refs[rcpt] = out_track_id  # delivered before a crash: nothing to do
                    continue
                raise
            delivered = _delivered(answer)
            if delivered:
                result.message_refs[rcpt] = out_track_id
            else:
                result.invalid_recipients.append(rcpt)
        return result

    async def _send_plain(self, recipients: list[str], rendered: dict[str, Any]) -> SendResult:
        result = SendResult()
        for part in chunks(recipients, BATCH_SEND_LIMIT):
            pending = part
            sent_any = False
            for attempt in range(len(THROTTLE_RETRIES) + 1):
                answer = await self.client.batch_send(pending, rendered["msgKey"], rendered["msgParam"])
                throttled = [str(u) for u in answer.get("flowControlledStaffIdList") or []]
                invalid = {str(u) for u in (answer.get("invalidStaffIdList") or [])}
                invalid |= {str(u) for u in (answer.get("filteredStaffIdList") or [])}
                key = str(answer.get("processQueryKey", ""))
                for uid in pending:
                    if uid in invalid:
                        result.invalid_recipients.append(uid)
                    elif uid not in throttled:
                        result.message_refs[uid] = f"otm:{key}"
                        sent_any = True
                if not throttled:
                    break
                if not sent_any and not result.message_refs:
                    raise RateLimited(
                        f"batchSend: all {len(throttled)} recipients flow-controlled",
                        retry_after=THROTTLE_RETRIES[0],
                    )
                if attempt == len(THROTTLE_RETRIES):
                    log.warning(
                        "dingtalk batchSend: still flow-controlled, giving up on them",
                        extra={"users": throttled[:20]},
                    )
                    result.invalid_recipients.extend(throttled)
                    break
                await asyncio.sleep(THROTTLE_RETRIES[attempt])
                pending = throttled
        return result

    async def update(self, message_ref: str, card: Card, *, recipient: str) -> None:
        """Interactive cards are updated in place by out-track id. A robot message or work notification cannot
        be edited, so its "update" is the new version sent as a new message."""
        card = await self._with_uploaded_images(card)
        if message_ref.startswith("pl-") or not message_ref.startswith(("otm:", "wn:")):
            params = card_param_map(card, self.t, sign=self.click_sign(message_ref, recipient))
            await self.client.update_card(message_ref, params)
            return
        await self.send(recipient, card, idempotency_key=f"update-{message_ref}-{recipient}")

    # ------------------------------------------------------------------ media
    async def download_media(self, ref: str, *, max_bytes: int) -> bytes:
        return await self.client.download(ref, max_bytes=max_bytes)

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        return await self.client.upload_media(data, filename=filename, mime=mime)

    # ------------------------------------------------------------------ org
    async def list_org(self) -> Org:
        root = await self.client.department(ROOT_DEPT)
        departments: dict[str, OrgDepartment] = {
            str(ROOT_DEPT): OrgDepartment(id=str(ROOT_DEPT), name=str(root.get("name") or "root"))
        }
        queue = [ROOT_DEPT]
        while queue:
            dept_id = queue.pop(0)
            for sub in await self.client.sub_departments(dept_id):
                sid = int(sub["dept_id"])
                if str(sid) in departments:
                    continue
                departments[str(sid)] = OrgDepartment(
                    id=str(sid), name=str(sub.get("name", "")), parent_id=str(sub.get("parent_id", dept_id))
                )
                queue.append(sid)
        members: dict[str, dict[str, Any]] = {}
        for dept_id_str, dept in departments.items():
            cursor = 0
            while True:
                page = await self.client.users_page(int(dept_id_str), cursor)
                for item in page.get("list") or []:
                    uid = str(item.get("userid", ""))
                    if not uid:
                        continue
                    members.setdefault(uid, item)
                    if item.get("leader") and uid not in dept.leader_ids:
                        dept.leader_ids.append(uid)
                if not page.get("has_more"):
                    break
                cursor = int(page.get("next_cursor") or 0)
        managers = await self._managers(members)
        org_members = [
            OrgMember(
                user_id=uid,
                name=str(item.get("name", uid)),
                department_ids=[str(d) for d in item.get("dept_id_list") or []],
                manager_id=managers.get(uid),
                active=bool(item.get("active", True)),
            )
            for uid, item in sorted(members.items())
        ]
        return Org(departments=list(departments.values()), members=org_members)

    async def _managers(self, members: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        """``user/list`` has no manager: read ``manager_userid`` from ``user/get`` where the list lacks it."""
        out: dict[str, str | None] = {}
        gate = asyncio.Semaphore(MANAGER_LOOKUPS)

        async def one(uid: str) -> None:
            async with gate:
                detail = await self.client.user(uid)
            out[uid] = str(detail["manager_userid"]) if detail.get("manager_userid") else None

        todo = []
        for uid, item in members.items():
            if "manager_userid" in item:
                out[uid] = str(item["manager_userid"]) if item["manager_userid"] else None
            else:
                todo.append(one(uid))
        await asyncio.gather(*todo)
        return out

    async def check_credentials(self) -> str:
        await self.client.api_token(refresh=True)
        await self.client.oapi_token(refresh=True)
        return f"DingTalk app {self.cfg.app_key}: api.dingtalk.com and oapi tokens OK ({self.cfg.mode} mode)"


def _json_object(body: bytes) -> dict[str, Any]:
    """The shared depth-capped loader (issue 16 #4): 400, never a ``RecursionError``."""
    return json_object(body)


def _delivered(answer: dict[str, Any]) -> bool:
    result = answer.get("result")
    if not isinstance(result, dict):
        return bool(answer.get("success", True))
    results = result.get("deliverResults") or []
    if not results:
        return bool(answer.get("success", True))
    return all(bool(r.get("success")) for r in results if isinstance(r, dict))
