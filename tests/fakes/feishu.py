"""A protocol-faithful fake Feishu: the open-apis the adapter calls, plus Feishu's side of the callbacks.

Server side (aiohttp on 127.0.0.1): tenant tokens (same token while ≥ 30 min remain, revocable), message
create with ``uuid`` idempotency (same uuid within an hour → the same message, nothing new recorded), card
PATCH (needs ``update_multi``), image upload, message-resource download, contact v3 departments/users with
pagination, answers in the ``{"code","msg","data"}`` envelope with Feishu's codes, the per-app frequency
limits of the message APIs (50/s and 1,000/min, sliding windows; HTTP 429 + 99991400 +
``x-ogw-ratelimit-reset``), and the long-connection endpoint with a websocket
that speaks lark-oapi's protobuf ``Frame``.

Client side: builds schema 2.0 envelopes, encrypts them exactly like Feishu (AES-256-CBC, key
sha256(encrypt_key), random IV prepended, PKCS#7; lark-oapi only ships the decrypting half, and the tests
check this output with lark-oapi's ``AESCipher``), signs them (``X-Lark-Signature``) and POSTs them.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import itertools
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakes.platform_crypto import feishu_encrypt as encrypt
from tests.fakes.platform_crypto import feishu_signature as signature

CARD_MAX_BYTES = 30 * 1024
TOKEN_TTL = 7200


ROOT_TAGS = {
    "markdown",
    "hr",
    "img",
    "column_set",
    "form",
    "div",
    "button",
    "input",
    "select_static",
    "multi_select_static",
    "date_picker",
    "note",
    "collapsible_panel",
    "interactive_container",
}
NAMED_INPUTS = {"input", "select_static", "multi_select_static", "date_picker"}


def card_problem(card: Any) -> str | None:
    """What Feishu would reject in a card JSON 2.0 (the subset of its rules perfloop's cards can break)."""
    if not isinstance(card, dict) or card.get("schema") != "2.0":
        return "schema must be 2.0"
    if (card.get("config") or {}).get("update_multi") is not True:
        return "config.update_multi must be true for updatable cards"
    if not ((card.get("header") or {}).get("title") or {}).get("content"):
        return "header.title.content is required"
    elements = (card.get("body") or {}).get("elements")
    if not isinstance(elements, list):
        return "body.elements must be a list"
    names: list[str] = []

    def walk(nodes: list[Any], in_form: bool) -> str | None:
        for node in nodes:
            tag = node.get("tag")
            if tag == "action":
                return "the 1.0 action module is not supported in JSON 2.0"
            if tag == "form":
                if in_form:
                    return "a form cannot contain a form"
                if not node.get("name"):
                    return "form.name is required"
                inner = node.get("elements") or []
                if not any(b.get("tag") == "button" and b.get("form_action_type") == "submit" for b in inner):
                    return "a form needs a submit button"
                problem = walk(inner, True)
                if problem:
                    return problem
                continue
            if tag in NAMED_INPUTS:
                if not in_form:
                    return f"{tag} outside a form would call back on every change"
                if not node.get("name"):
                    return f"{tag}.name is required inside a form"
            if tag in ("select_static", "multi_select_static") and not node.get("options"):
                return "select options are required"
            if tag == "button":
                for behaviour in node.get("behaviors") or []:
                    if behaviour.get("type") == "callback" and not isinstance(behaviour.get("value"), dict):
                        return "callback values must be JSON objects"
                if node.get("form_action_type") and not in_form:
                    return "form_action_type outside a form"
            if node.get("name"):
                names.append(node["name"])
            if tag == "column_set":
                for column in node.get("columns") or []:
                    problem = walk(column.get("elements") or [], in_form)
                    if problem:
                        return problem
        return None

    if any(node.get("tag") not in ROOT_TAGS for node in elements):
        return "unknown component tag"
    problem = walk(elements, False)
    if problem is None and len(names) != len(set(names)):
        return "component names must be unique in a card"
    return problem


def ok(data: Any = None) -> web.Response:
    body: dict[str, Any] = {"code": 0, "msg": "success"}
    if data is not None:
        body["data"] = data
    return web.json_response(body)


def err(code: int, msg: str, *, status: int = 400, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


@dataclass
class SentMessage:
    message_id: str
    receive_id: str
    receive_id_type: str
    card: dict[str, Any]
    uuid: str | None
    at: float


@dataclass
class Posted:
    status: int
    body: Any
    seconds: float


@dataclass
class FakeFeishu:
    app_id: str = "cli_fake"
    app_secret: str = "secret-fake"
    verification_token: str = "vtoken-fake"
    encrypt_key: str = "ekey-fake"
    tenant_key: str = "tk-fake"
    per_second_limit: int = 50
    per_minute_limit: int = 1000
    """Feishu's message APIs: 50 calls/s and 1,000/min per app, each a sliding window (PLATFORMS.md §2.7)."""
    limit_clock: Callable[[], float] = time.monotonic
    """The clock of those windows (a test moves a minute on without waiting for it)."""
    now: Callable[[], float] = time.time
    """Feishu's clock, for the timestamps it signs (tests with a fixed service clock pass that clock)."""
    date_offset: float = 0.0
    """Seconds added to the ``Date`` header of every answer: a platform clock that disagrees with ours."""
    messages: list[SentMessage] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)
    resources: dict[tuple[str, str], bytes] = field(default_factory=dict)
    departments: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    scripted: list[web.Response] = field(default_factory=list)
    """Answers served (in order) instead of the next message-create call: rate limits, 5xx…"""
    token_requests: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    _tokens: dict[str, float] = field(default_factory=dict)
    _uuids: dict[str, tuple[SentMessage, float]] = field(default_factory=dict)
    _window: list[float] = field(default_factory=list)
    _minute: deque[float] = field(default_factory=deque)
    throttled: int = 0
    """Rate-limit answers given (either window)."""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    url: str = ""
    _ws: web.WebSocketResponse | None = None
    _ws_connected: asyncio.Event = field(default_factory=asyncio.Event)
    _ws_waiting: dict[str, asyncio.Future[Frame]] = field(default_factory=dict)
    ws_pings: int = 0
    ws_endpoint_requests: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ server lifecycle
    async def start(self) -> str:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.on_response_prepare.append(self._date_header)
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self.h_token)
        app.router.add_post("/open-apis/im/v1/messages", self.h_send)
        app.router.add_patch("/open-apis/im/v1/messages/{message_id}", self.h_patch)
        app.router.add_post("/open-apis/im/v1/images", self.h_image)
        app.router.add_get("/open-apis/im/v1/messages/{message_id}/resources/{file_key}", self.h_resource)
        app.router.add_get("/open-apis/contact/v3/departments/{department_id}/children", self.h_departments)
        app.router.add_get("/open-apis/contact/v3/users/find_by_department", self.h_users)
        app.router.add_post("/callback/ws/endpoint", self.h_ws_endpoint)
        app.router.add_get("/ws", self.h_ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = email.utils.formatdate(time.time() + self.date_offset, usegmt=True)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ auth
    async def h_token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        body = await request.json()
        if body.get("app_id") != self.app_id:
            return err(10003, "invalid param")
        if body.get("app_secret") != self.app_secret:
            return err(10014, "app secret invalid")
        now = time.monotonic()
        current = [(t, exp) for t, exp in self._tokens.items() if exp - now >= 30 * 60]
        if current:
            token, exp = current[0]
        else:
            token, exp = f"t-{secrets.token_hex(12)}", now + TOKEN_TTL
            self._tokens[token] = exp
        return web.json_response(
            {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": int(exp - now)}
        )

    def revoke_tokens(self) -> None:
        """As if every issued tenant token had expired (the next API call answers 99991663)."""
        self._tokens.clear()

    def _auth(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return err(99991661, "Missing access token for authorization.")
        exp = self._tokens.get(header.removeprefix("Bearer "))
        if exp is None or exp < time.monotonic():
            return err(
                99991663, "Invalid access token for authorization. Please make a request with token attached."
            )
        return None

    def _limited(self) -> web.Response | None:
        """The per-app frequency control of the message APIs: past either window's limit the answer is
        HTTP 429, code 99991400, with the limit and the seconds until the window has room again."""
        now = self.limit_clock()
        self._window = [t for t in self._window if now - t < 1.0]
        minute = self._minute
        while minute and now - minute[0] >= 60.0:
            minute.popleft()
        if len(self._window) >= self.per_second_limit:
            return self._frequency_limit(self.per_second_limit, 1)
        if len(minute) >= self.per_minute_limit:
            reset = minute[len(minute) - self.per_minute_limit] + 60.0 - now
            return self._frequency_limit(self.per_minute_limit, max(1, math.ceil(reset)))
        self._window.append(now)
        minute.append(now)
        return None

    def _frequency_limit(self, limit: int, reset: int) -> web.Response:
        self.throttled += 1
        return err(
            99991400,
            "request trigger frequency limit",
            status=429,
            headers={"x-ogw-ratelimit-limit": str(limit), "x-ogw-ratelimit-reset": str(reset)},
        )

    # ------------------------------------------------------------------ messages
    async def h_send(self, request: web.Request) -> web.Response:
        denied = self._auth(request) or self._limited()
        if denied is not None:
            return denied
        if self.scripted:
            return self.scripted.pop(0)
        id_type = request.query.get("receive_id_type", "")
        if id_type not in ("open_id", "user_id", "union_id", "email", "chat_id"):
            return err(99992402, "field validation failed: receive_id_type")
        body = await request.json()
        uuid = body.get("uuid")
        if uuid is not None and (not isinstance(uuid, str) or len(uuid) > 50):
            return err(99992402, "field validation failed: uuid max length 50")
        if body.get("msg_type") != "interactive":
            return err(230001, "invalid message content")
        content = body.get("content")
        if not isinstance(content, str) or len(content.encode("utf-8")) > CARD_MAX_BYTES:
            return err(230025, "The length of the message content reaches its limit.")
        try:
            card = json.loads(content)
        except ValueError:
            return err(230001, "invalid message content")
        problem = card_problem(card)
        if problem is not None:
            return err(230099, f"Failed to create card content: {problem}")
        known = {u["open_id"] for u in self.users}
        if self.users and id_type == "open_id" and body.get("receive_id") not in known:
            return err(230013, "Bot has NO availability to this user.")
        now = time.monotonic()
        if uuid and uuid in self._uuids and now - self._uuids[uuid][1] < 3600:
            return ok(self._message_data(self._uuids[uuid][0]))
        msg = SentMessage(f"om_{next(self._ids):06d}", body.get("receive_id", ""), id_type, card, uuid, now)
        self.messages.append(msg)
        if uuid:
            self._uuids[uuid] = (msg, now)
        return ok(self._message_data(msg))

    def _message_data(self, msg: SentMessage) -> dict[str, Any]:
        ms = str(int(time.time() * 1000))
        return {
            "message_id": msg.message_id,
            "root_id": "",
            "parent_id": "",
            "msg_type": "interactive",
            "create_time": ms,
            "update_time": ms,
            "deleted": False,
            "updated": False,
            "chat_id": f"oc_{msg.receive_id}",
            "sender": {
                "id": self.app_id,
                "id_type": "app_id",
                "sender_type": "app",
                "tenant_key": self.tenant_key,
            },
            "body": {"content": json.dumps(msg.card, ensure_ascii=False)},
        }

    async def h_patch(self, request: web.Request) -> web.Response:
        denied = self._auth(request) or self._limited()
        if denied is not None:
            return denied
        message_id = request.match_info["message_id"]
        if not any(m.message_id == message_id for m in self.messages):
            return err(230011, "The message was not found or has been recalled.")
        card = json.loads((await request.json())["content"])
        problem = card_problem(card)
        if problem is not None:
            return err(230099, f"Failed to create card content: {problem}")
        self.patches.append((message_id, card))
        return ok()

    # ------------------------------------------------------------------ media
    async def h_image(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        form = await request.post()
        image = form.get("image")
        if form.get("image_type") != "message" or not isinstance(image, web.FileField):
            return err(99992402, "field validation failed")
        data = image.file.read()
        if len(data) > 10 * 1024 * 1024:
            return err(234006, "The file size exceeds the limit.")
        key = f"img_v3_{next(self._ids):06d}"
        self.images[key] = data
        return ok({"image_key": key})

    async def h_resource(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        if request.query.get("type") not in ("image", "file"):
            return err(99992402, "field validation failed: type")
        data = self.resources.get((request.match_info["message_id"], request.match_info["file_key"]))
        if data is None:
            return err(234003, "File not in msg.")
        return web.Response(
            body=data,
            content_type="image/png",
            headers={"Content-Disposition": 'attachment; filename="image.png"'},
        )

    # ------------------------------------------------------------------ contacts
    @staticmethod
    def _page(items: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
        size = min(int(request.query.get("page_size", "10")), 50)
        start = int(request.query.get("page_token") or 0)
        chunk = items[start : start + size]
        more = start + size < len(items)
        return {"has_more": more, "page_token": str(start + size) if more else "", "items": chunk}

    async def h_departments(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        parent = request.match_info["department_id"]
        if request.query.get("fetch_child") == "true" and parent == "0":
            items = list(self.departments)
        else:
            items = [d for d in self.departments if d["parent_department_id"] == parent]
        return ok(self._page(items, request))

    async def h_users(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        dept = request.query.get("department_id", "")
        return ok(self._page([u for u in self.users if dept in u["department_ids"]], request))

    def add_user(self, open_id: str, name: str, dept: str, leader: str | None = None, **status: bool) -> None:
        self.users.append(
            {
                "open_id": open_id,
                "user_id": f"u_{open_id}",
                "union_id": f"on_{open_id}",
                "name": name,
                "department_ids": [dept],
                "leader_user_id": leader or "",
                "status": {
                    "is_frozen": False,
                    "is_resigned": False,
                    "is_activated": True,
                    "is_exited": False,
                    "is_unjoin": False,
                    **status,
                },
            }
        )

    def add_department(self, dept_id: str, name: str, parent: str = "0", leader: str | None = None) -> None:
        self.departments.append(
            {
                "name": name,
                "department_id": f"d_{dept_id}",
                "open_department_id": dept_id,
                "parent_department_id": parent,
                "leader_user_id": leader or "",
                "status": {"is_deleted": False},
            }
        )

    # ------------------------------------------------------------------ acting as Feishu: envelopes
    def envelope(
        self, event_type: str, event: dict[str, Any], *, event_id: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        return {
            "schema": "2.0",
            "header": {
                "event_id": event_id or secrets.token_hex(16),
                "event_type": event_type,
                "create_time": str(int(self.now() * 1000)),
                "token": self.verification_token if token is None else token,
                "app_id": self.app_id,
                "tenant_key": self.tenant_key,
            },
            "event": event,
        }

    def text_message(self, open_id: str, text: str, **kw: Any) -> dict[str, Any]:
        mid = f"om_in_{secrets.token_hex(6)}"
        return self.envelope(
            "im.message.receive_v1",
            {
                "sender": {
                    "sender_id": {"open_id": open_id, "user_id": f"u_{open_id}", "union_id": f"on_{open_id}"},
                    "sender_type": "user",
                    "tenant_key": self.tenant_key,
                },
                "message": {
                    "message_id": mid,
                    "root_id": "",
                    "parent_id": "",
                    "create_time": str(int(self.now() * 1000)),
                    "chat_id": f"oc_{open_id}",
                    "chat_type": "p2p",
                    "message_type": "text",
                    "content": json.dumps({"text": text}, ensure_ascii=False),
                    "mentions": None,
                },
            },
            **kw,
        )

    def image_message(self, open_id: str, data: bytes, **kw: Any) -> dict[str, Any]:
        mid = f"om_in_{secrets.token_hex(6)}"
        key = f"img_v3_in_{secrets.token_hex(6)}"
        self.resources[(mid, key)] = data
        return self.envelope(
            "im.message.receive_v1",
            {
                "sender": {
                    "sender_id": {"open_id": open_id},
                    "sender_type": "user",
                    "tenant_key": self.tenant_key,
                },
                "message": {
                    "message_id": mid,
                    "create_time": str(int(self.now() * 1000)),
                    "chat_id": f"oc_{open_id}",
                    "chat_type": "p2p",
                    "message_type": "image",
                    "content": json.dumps({"image_key": key}),
                },
            },
            **kw,
        )

    def card_click(
        self,
        open_id: str,
        packed: str,
        *,
        message_id: str = "om_card",
        name: str = "B0_0",
        form_value: dict[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """A click on a button whose callback value is ``{"perfloop": packed}``.

        With ``form_value`` it is a form submit, and then the action carries *no* value: Lark's docs say a
        button inside a form submits with ``form_action_type`` and does not take ``behaviors``, so the
        fake strips them; only the button's ``name`` (pass the rendered one) and the form values arrive.
        """
        value: dict[str, Any] = {} if form_value is not None else {"perfloop": packed}
        return self.envelope(
            "card.action.trigger",
            {
                "operator": {
                    "open_id": open_id,
                    "user_id": f"u_{open_id}",
                    "union_id": f"on_{open_id}",
                    "tenant_key": self.tenant_key,
                },
                "token": f"c-{secrets.token_hex(8)}",
                "action": {
                    "tag": "button",
                    "value": value,
                    "name": name,
                    "form_value": form_value,
                    "timezone": "Asia/Shanghai",
                },
                "host": "im_message",
                "delivery_type": None,
                "context": {"open_message_id": message_id, "open_chat_id": f"oc_{open_id}"},
            },
            **kw,
        )

    def user_changed(self, change: str, open_id: str, **kw: Any) -> dict[str, Any]:
        return self.envelope(
            f"contact.user.{change}_v3",
            {"object": {"open_id": open_id, "user_id": f"u_{open_id}", "name": open_id}},
            **kw,
        )

    def url_verification(self, challenge: str) -> dict[str, Any]:
        return {"challenge": challenge, "token": self.verification_token, "type": "url_verification"}

    # ------------------------------------------------------------------ acting as Feishu: delivery
    def seal(
        self,
        payload: dict[str, Any],
        *,
        encrypt_key: str | None = None,
        sign: bool = True,
        signature_override: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        key = self.encrypt_key if encrypt_key is None else encrypt_key
        try:
            plain = json.dumps(payload, ensure_ascii=False).encode("utf-8").decode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: Feishu's JSON carries it as a \ud800 escape
            plain = json.dumps(payload)
        body = json.dumps({"encrypt": encrypt(key, plain)}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if sign:
            ts, nonce = str(int(self.now())), secrets.token_hex(8)
            headers.update(
                {
                    "X-Lark-Request-Timestamp": ts,
                    "X-Lark-Request-Nonce": nonce,
                    "X-Lark-Signature": signature_override or signature(ts, nonce, self.encrypt_key, body),
                }
            )
        return body, headers

    @staticmethod
    async def post(url: str, body: bytes, headers: dict[str, str]) -> Posted:
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
            text = await resp.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Posted(resp.status, parsed, time.perf_counter() - started)

    async def deliver(self, url: str, payload: dict[str, Any], **seal: Any) -> Posted:
        body, headers = self.seal(payload, **seal)
        return await self.post(url, body, headers)

    # ------------------------------------------------------------------ long connection
    async def h_ws_endpoint(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.ws_endpoint_requests.append(body)
        if body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret:
            return web.json_response({"code": 1000040343, "msg": "invalid app credentials"})
        ws_url = self.url.replace("http://", "ws://") + "/ws?device_id=dev-1&service_id=7"
        return web.json_response(
            {
                "code": 0,
                "msg": "ok",
                "data": {
                    "URL": ws_url,
                    "ClientConfig": {
                        "ReconnectCount": -1,
                        "ReconnectInterval": 1,
                        "ReconnectNonce": 0,
                        "PingInterval": 120,
                    },
                },
            }
        )

    async def h_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self._ws_connected.set()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            frame = Frame()
            frame.ParseFromString(msg.data)
            headers = {h.key: h.value for h in frame.headers}
            if frame.method == 0 and headers.get("type") == "ping":
                self.ws_pings += 1
                pong = Frame(SeqID=0, LogID=0, service=frame.service, method=0)
                h = pong.headers.add()
                h.key, h.value = "type", "pong"
                await ws.send_bytes(pong.SerializeToString())
            elif frame.method == 1:
                waiter = self._ws_waiting.pop(headers.get("message_id", ""), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
        self._ws = None
        self._ws_connected.clear()
        return ws

    async def wait_ws_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ws_connected.wait(), timeout)

    async def ws_push(self, payload: dict[str, Any], *, timeout: float = 5.0) -> tuple[int, Any]:
        """Send one event frame as Feishu does; return the client's response code and decoded result."""
        assert self._ws is not None, "no long connection"
        message_id = f"msg-{secrets.token_hex(6)}"
        frame = Frame(
            SeqID=next(self._ids),
            LogID=0,
            service=7,
            method=1,
            payload=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        )
        for key, value in (
            ("type", "event"),
            ("message_id", message_id),
            ("trace_id", secrets.token_hex(4)),
            ("sum", "1"),
            ("seq", "0"),
        ):
            h = frame.headers.add()
            h.key, h.value = key, value
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._ws_waiting[message_id] = waiter
        await self._ws.send_bytes(frame.SerializeToString())
        reply = await asyncio.wait_for(waiter, timeout)
        response = json.loads(reply.payload)
        data = response.get("data")
        decoded = json.loads(base64.b64decode(data)) if data else None
        return int(response["code"]), decoded


# ------------------------------------------------------- test wiring shared by tests/adapters/test_feishu_*
def feishu_settings(settings: Any, fake: FakeFeishu, *, mode: str = "webhook", **extra: Any) -> Any:
    """The test ``settings`` with a Feishu section pointed at the fake."""
    from bot.core.config import FeishuConfig

    fields: dict[str, Any] = {
        "enabled": True,
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "verification_token": fake.verification_token,
        "encrypt_key": fake.encrypt_key,
        "api_base": fake.url,
        "mode": mode,
    }
    cfg = FeishuConfig(**(fields | extra))
    return settings.model_copy(update={"feishu": cfg})


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run a perfloop aiohttp app on a loopback port (lifecycle included); returns runner and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
