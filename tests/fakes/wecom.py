"""A protocol-faithful fake WeCom (企业微信) for tests: both sides of the wire.

Server side (an aiohttp app on loopback) — the ``/cgi-bin`` endpoints perfloop calls, with WeCom's JSON
shapes and error codes (HTTP 200 + ``errcode``/``errmsg``): ``gettoken``, ``message/send``,
``message/update_template_card``, ``media/get``, ``media/upload``, ``department/list``, ``user/list``,
``user/get``. It enforces access tokens (41001 missing, 40014 unknown, 42001 expired), can expire every token
at once, answers 45009 beyond a configurable per-minute limit (or for the next N calls), validates template
cards against the documented shape, honours ``enable_duplicate_check`` like WeCom (a resend within the window
is not shown twice), issues single-use ``response_code`` s (one per ``message/send``, shared by all its
recipients), drops messages beyond WeCom's per-member limits (30 a minute and 1,000 an hour from the app to
one member, doc 90236/90454: answered ok, silently not delivered) and records everything it receives.

Client side — builds callbacks exactly as WeCom does (plaintext XML encrypted and signed with wechatpy's
WXBizMsgCrypt implementation, ``msg_signature``/``timestamp``/``nonce`` in the query) and POSTs them to
perfloop, timing each answer against WeCom's 5-second limit.

Where the real platform's behaviour is not documented the fake's choice is marked "fake:" below.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.platform_crypto import WeComSealer

# The published WeCom/wechatpy sample credentials (PLATFORMS.md §1.5): handy defaults for tests.
SAMPLE_TOKEN = "123456"
SAMPLE_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
SAMPLE_CORP_ID = "wx49f0ab532d5d035a"

INVALID_RESPONSE_CODE = 40058
"""fake: WeCom's exact errcode for a used/expired response_code is undocumented; 40058 is its generic
"invalid parameter" code. perfloop treats any refusal of an update as "send the card afresh"."""

TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}
MEMBER_LIMITS = ((60.0, 30), (3600.0, 1000))
"""WeCom: an app may send one member at most 30 messages a minute and 1,000 an hour; excess is dropped
silently (no error code). (window seconds, messages)."""
ALLOWED_FIELDS: dict[str, set[str]] = {
    "text_notice": {
        "card_type",
        "source",
        "action_menu",
        "main_title",
        "emphasis_content",
        "quote_area",
        "sub_title_text",
        "horizontal_content_list",
        "jump_list",
        "card_action",
        "task_id",
    },
    "news_notice": {
        "card_type",
        "source",
        "action_menu",
        "main_title",
        "quote_area",
        "image_text_area",
        "card_image",
        "vertical_content_list",
        "horizontal_content_list",
        "jump_list",
        "card_action",
        "task_id",
    },
    "button_interaction": {
        "card_type",
        "source",
        "action_menu",
        "main_title",
        "quote_area",
        "sub_title_text",
        "horizontal_content_list",
        "jump_list",
        "card_action",
        "task_id",
        "button_selection",
        "button_list",
        "replace_text",
    },
    "vote_interaction": {
        "card_type",
        "source",
        "main_title",
        "task_id",
        "checkbox",
        "submit_button",
        "replace_text",
    },
    "multiple_interaction": {
        "card_type",
        "source",
        "main_title",
        "task_id",
        "select_list",
        "submit_button",
        "replace_text",
    },
}


def validate_template_card(card: Any) -> list[str]:
    """Problems with a ``template_card`` object against doc 90236/90372 (empty list = valid)."""
    errors: list[str] = []
    if not isinstance(card, dict):
        return ["template_card is not an object"]
    ctype = card.get("card_type")
    if ctype not in ALLOWED_FIELDS:
        return [f"unknown card_type {ctype!r}"]
    extra = set(card) - ALLOWED_FIELDS[ctype]
    if extra:
        errors.append(f"{ctype} does not take {sorted(extra)}")
    task_id = card.get("task_id")
    if ctype in INTERACTIVE and not task_id:
        errors.append("task_id is required for interactive cards")
    if task_id is not None and not (isinstance(task_id, str) and TASK_ID.match(task_id)):
        errors.append("task_id must be 1-128 of [0-9A-Za-z_-@]")
    title = card.get("main_title") or {}
    if ctype == "text_notice":
        if not title.get("title") and not card.get("sub_title_text"):
            errors.append("text_notice needs main_title.title or sub_title_text")
        action = card.get("card_action") or {}
        if action.get("type") not in (1, 2) or (action.get("type") == 1 and not action.get("url")):
            errors.append("text_notice needs card_action {type 1, url} or {type 2, appid}")
    elif not title.get("title"):
        errors.append("main_title.title is required")
    for kv in card.get("horizontal_content_list", []):
        if not kv.get("keyname"):
            errors.append("horizontal_content_list item without keyname")
    if len(card.get("horizontal_content_list", [])) > 6:
        errors.append("horizontal_content_list holds at most 6 items")
    if "quote_area" in card and not isinstance(card["quote_area"], dict):
        errors.append("quote_area must be an object")

    def key_ok(key: Any, what: str) -> None:
        if not isinstance(key, str) or not key:
            errors.append(f"{what}: key is required")
        elif len(key.encode()) > 1024:
            errors.append(f"{what}: key longer than 1024 bytes")

    def options_ok(options: Any, limit: int, what: str) -> None:
        if not isinstance(options, list) or not 1 <= len(options) <= limit:
            errors.append(f"{what}: option_list needs 1..{limit} options")
            return
        ids = [o.get("id") for o in options]
        if any(not isinstance(i, str) or not i or len(i.encode()) > 128 for i in ids):
            errors.append(f"{what}: option ids must be 1..128 bytes")
        if len(set(ids)) != len(ids):
            errors.append(f"{what}: option ids must be unique")
        if any(not o.get("text") for o in options):
            errors.append(f"{what}: option text is required")

    if ctype == "button_interaction":
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or len(buttons) > 6:
            errors.append("button_list holds at most 6 buttons")
            buttons = []
        keys = []
        for b in buttons:
            if not b.get("text"):
                errors.append("button text is required")
            if b.get("style", 1) not in (1, 2, 3, 4):
                errors.append("button style must be 1..4")
            if b.get("type", 0) == 0:
                key_ok(b.get("key"), "button")
                keys.append(b.get("key"))
            elif not b.get("url"):
                errors.append("url button without url")
        if len(keys) != len(set(keys)):
            errors.append("button keys must be unique")
        if "button_selection" in card:
            sel = card["button_selection"]
            key_ok(sel.get("question_key"), "button_selection")
            options_ok(sel.get("option_list"), 10, "button_selection")
    if ctype == "vote_interaction":
        box = card.get("checkbox") or {}
        key_ok(box.get("question_key"), "checkbox")
        if box.get("mode", 0) not in (0, 1):
            errors.append("checkbox.mode must be 0 or 1")
        options_ok(box.get("option_list"), 20, "checkbox")
    if ctype == "multiple_interaction":
        selects = card.get("select_list")
        if not isinstance(selects, list) or not 1 <= len(selects) <= 3:
            errors.append("select_list needs 1..3 selectors")
            selects = []
        for sel in selects:
            key_ok(sel.get("question_key"), "select_list")
            options_ok(sel.get("option_list"), 10, "select_list")
    if ctype in ("vote_interaction", "multiple_interaction"):
        key_ok((card.get("submit_button") or {}).get("key"), "submit_button")
    return errors


@dataclass
class SentMessage:
    body: dict[str, Any]
    recipients: list[str]
    invalid: list[str]
    msgid: str
    response_code: str | None
    shown: bool = True
    """False when WeCom's duplicate check suppressed it."""
    dropped: list[str] = field(default_factory=list)
    """Recipients it never reached because of the per-member limits (the API still answered ok)."""

    @property
    def card(self) -> dict[str, Any]:
        return dict(self.body.get("template_card", {}))


@dataclass
class CardUpdate:
    body: dict[str, Any]
    response_code: str
    userids: list[str]


@dataclass
class _Code:
    userids: set[str]
    message: SentMessage
    used: bool = False
    expired: bool = False


@dataclass
class FakeWeCom:
    corp_id: str = SAMPLE_CORP_ID
    secret: str = "fake-secret"
    agent_id: int = 1000002
    token: str = SAMPLE_TOKEN
    encoding_aes_key: str = SAMPLE_AES_KEY
    now: Callable[[], float] = time.time
    date_offset: float = 0.0
    """Seconds added to the ``Date`` header of every answer (``perfloop doctor`` reads it)."""
    token_ttl: int = 7200
    rate_limit_per_minute: int | None = None
    departments: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    messages: list[SentMessage] = field(default_factory=list)
    updates: list[CardUpdate] = field(default_factory=list)
    rejected_updates: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[tuple[str, bytes, str]] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)
    """(path, errcode) of every API call, in order."""
    callback_seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.crypto = WeComSealer(self.token, self.encoding_aes_key, self.corp_id)
        """wechatpy's crypto, never the adapter's (issue 16 #18)."""
        self._tokens: dict[str, float] = {}
        self._codes: dict[str, _Code] = {}
        self._dupes: dict[str, tuple[float, SentMessage]] = {}
        self._forced: list[int] = []
        self._call_times: list[float] = []
        self._member_sends: dict[str, list[float]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        """WeCom's clock as its answers show it: ``date_offset`` seconds off real time."""
        response.headers["Date"] = email.utils.formatdate(time.time() + self.date_offset, usegmt=True)

    async def start(self) -> str:
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.on_response_prepare.append(self._date_header)
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._authed(self._send))
        app.router.add_post("/cgi-bin/message/update_template_card", self._authed(self._update))
        app.router.add_get("/cgi-bin/media/get", self._authed(self._media_get))
        app.router.add_post("/cgi-bin/media/upload", self._authed(self._media_upload))
        app.router.add_get("/cgi-bin/department/list", self._authed(self._department_list))
        app.router.add_get("/cgi-bin/user/list", self._authed(self._user_list))
        app.router.add_get("/cgi-bin/user/get", self._authed(self._user_get))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ test controls
    def add_department(
        self, dept_id: int, name: str, parent_id: int = 0, *, leaders: list[str] | None = None
    ) -> None:
        self.departments.append(
            {
                "id": dept_id,
                "name": name,
                "parentid": parent_id,
                "order": dept_id,
                "department_leader": list(leaders or []),
            }
        )

    def add_user(
        self,
        user_id: str,
        name: str,
        departments: list[int],
        *,
        direct_leader: list[str] | None = None,
        status: int = 1,
    ) -> None:
        self.users[user_id] = {
            "userid": user_id,
            "name": name,
            "department": departments,
            "order": [0] * len(departments),
            "position": "",
            "status": status,
            "is_leader_in_dept": [0] * len(departments),
            "direct_leader": list(direct_leader or []),
            "main_department": departments[0] if departments else 1,
        }

    def expire_tokens(self) -> None:
        """Every issued token now answers 42001 (as after its 7200 s)."""
        for tok in self._tokens:
            self._tokens[tok] = 0.0

    def throttle(self, calls: int) -> None:
        """The next ``calls`` API calls (not gettoken) answer 45009."""
        self._forced.extend([45009] * calls)

    def fail_next(self, *answers: int) -> None:
        """The next API calls (not gettoken) fail in order: a value in 100..599 is an HTTP status (502…),
        anything else an errcode (-1 system busy, 45033…)."""
        self._forced.extend(answers)

    def expire_code(self, code: str) -> None:
        self._codes[code].expired = True

    def add_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        media_id = f"MEDIA_{secrets.token_hex(12)}"
        self.media[media_id] = (data, content_type)
        return media_id

    @property
    def shown(self) -> list[SentMessage]:
        return [m for m in self.messages if m.shown]

    def shown_to(self, user_id: str) -> list[SentMessage]:
        return [
            m
            for m in self.shown
            if user_id in m.recipients and user_id not in m.invalid and user_id not in m.dropped
        ]

    def dropped_for(self, user_id: str) -> list[SentMessage]:
        return [m for m in self.messages if user_id in m.dropped]

    def token_fetches(self) -> int:
        return sum(1 for path, code in self.calls if path == "gettoken" and code == 0)

    # ------------------------------------------------------------------ server helpers
    @staticmethod
    def _answer(errcode: int = 0, errmsg: str = "ok", /, **data: Any) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": errmsg, **data})

    def _record(self, path: str, errcode: int) -> None:
        self.calls.append((path, errcode))

    def _authed(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            path = request.path.removeprefix("/cgi-bin/")
            token = request.query.get("access_token")
            if not token:
                self._record(path, 41001)
                return self._answer(41001, "access_token missing")
            if token not in self._tokens:
                self._record(path, 40014)
                return self._answer(40014, "invalid access_token")
            if self._tokens[token] <= self.now():
                self._record(path, 42001)
                return self._answer(42001, "access_token expired")
            if self._forced:
                forced = self._forced.pop(0)
                self._record(path, forced)
                if 100 <= forced < 600:
                    return web.Response(status=forced, text="upstream unavailable")
                return self._answer(forced, "api freq out of limit" if forced == 45009 else "forced failure")
            if self.rate_limit_per_minute is not None:
                now = self.now()
                self._call_times = [t for t in self._call_times if t > now - 60]
                if len(self._call_times) >= self.rate_limit_per_minute:
                    self._record(path, 45009)
                    return self._answer(45009, "api freq out of limit")
                self._call_times.append(now)
            response: web.StreamResponse = await handler(request)
            code = 0
            if isinstance(response, web.Response) and response.content_type == "application/json":
                assert response.text is not None
                code = int(json.loads(response.text).get("errcode", 0))
            self._record(path, code)
            return response

        return wrapped

    # ------------------------------------------------------------------ endpoints
    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            self._record("gettoken", 40013)
            return self._answer(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            self._record("gettoken", 40001)
            return self._answer(40001, "invalid credential")
        token = secrets.token_urlsafe(48)
        self._tokens[token] = self.now() + self.token_ttl
        self._record("gettoken", 0)
        return self._answer(access_token=token, expires_in=self.token_ttl)

    async def _send(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._answer(47001, "data format error")
        if body.get("agentid") != self.agent_id:
            return self._answer(40056, "invalid agentid")
        recipients = [u for u in str(body.get("touser", "")).split("|") if u]
        if not recipients or len(recipients) > 1000:
            return self._answer(40031, "invalid userid list: 1..1000 users")
        msgtype = body.get("msgtype")
        if msgtype == "template_card":
            problems = validate_template_card(body.get("template_card"))
            if problems:
                return self._answer(40058, "; ".join(problems))
        elif msgtype == "text":
            if not (body.get("text") or {}).get("content"):
                return self._answer(40058, "text.content is required")
        elif msgtype == "image":
            if (body.get("image") or {}).get("media_id") not in self.media:
                return self._answer(40007, "invalid media_id")
        else:
            return self._answer(40008, "invalid message type")
        invalid = [u for u in recipients if u not in self.users or self.users[u]["status"] != 1]
        if len(invalid) == len(recipients):
            return self._answer(81013, "user & party & tag all invalid")
        if body.get("enable_duplicate_check"):
            content = {
                k: v
                for k, v in body.items()
                if k not in ("enable_duplicate_check", "duplicate_check_interval")
            }
            digest = json.dumps(content, sort_keys=True, ensure_ascii=False)
            interval = min(int(body.get("duplicate_check_interval", 1800)), 4 * 3600)
            seen = self._dupes.get(digest)
            if seen is not None and self.now() - seen[0] < interval:
                first = seen[1]
                # fake: WeCom answers ok and shows nothing new; we hand back the first send's ids.
                self.messages.append(
                    SentMessage(body, recipients, invalid, first.msgid, first.response_code, shown=False)
                )
                return self._answer(
                    invaliduser="|".join(invalid),
                    invalidparty="",
                    invalidtag="",
                    unlicenseduser="",
                    msgid=first.msgid,
                    **({"response_code": first.response_code} if first.response_code else {}),
                )
        msgid = f"msg{next(self._ids)}_{secrets.token_hex(6)}"
        code = None
        if msgtype == "template_card" and body["template_card"]["card_type"] in INTERACTIVE:
            code = f"RC_{secrets.token_urlsafe(24)}"
        dropped = [u for u in recipients if u not in invalid and not self._member_slot(u)]
        sent = SentMessage(body, recipients, invalid, msgid, code, dropped=dropped)
        self.messages.append(sent)
        if code is not None:
            self._codes[code] = _Code({u for u in recipients if u not in invalid}, sent)
        if body.get("enable_duplicate_check"):
            content = {
                k: v
                for k, v in body.items()
                if k not in ("enable_duplicate_check", "duplicate_check_interval")
            }
            self._dupes[json.dumps(content, sort_keys=True, ensure_ascii=False)] = (self.now(), sent)
        extra = {"response_code": code} if code else {}
        return self._answer(
            invaliduser="|".join(invalid),
            invalidparty="",
            invalidtag="",
            unlicenseduser="",
            msgid=msgid,
            **extra,
        )

    def _member_slot(self, user_id: str) -> bool:
        """Count one message to ``user_id``; False when it is over WeCom's per-member limits (dropped)."""
        now = self.now()
        stamps = [t for t in self._member_sends.get(user_id, []) if t > now - 3600]
        self._member_sends[user_id] = stamps
        if any(sum(1 for t in stamps if t > now - window) >= limit for window, limit in MEMBER_LIMITS):
            return False
        stamps.append(now)
        return True

    async def _update(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("agentid") != self.agent_id:
            return self._answer(40056, "invalid agentid")
        code = self._codes.get(str(body.get("response_code")))
        if code is None or code.used or code.expired:
            self.rejected_updates.append(body)
            return self._answer(INVALID_RESPONSE_CODE, "invalid response_code (used, expired or unknown)")
        userids = list(body.get("userids", []))
        if not userids or len(userids) > 1000 or not set(userids) <= code.userids:
            return self._answer(40031, "userids not among the card's recipients")
        if "template_card" in body:
            problems = validate_template_card(body["template_card"])
            original = code.message.card.get("task_id")
            if body["template_card"].get("task_id") != original:
                # fake: WeCom's AI-bot docs say the replacement keeps the card's task_id; assumed here too.
                problems.append(f"task_id must stay {original!r}")
            if problems:
                return self._answer(40058, "; ".join(problems))
        elif not (body.get("button") or {}).get("replace_name"):
            return self._answer(40058, "button.replace_name or template_card is required")
        code.used = True
        self.updates.append(CardUpdate(body, str(body["response_code"]), userids))
        return self._answer(invaliduser="")

    async def _media_get(self, request: web.Request) -> web.StreamResponse:
        found = self.media.get(request.query.get("media_id", ""))
        if found is None:
            return self._answer(40007, "invalid media_id")
        data, ctype = found
        return web.Response(
            body=data, content_type=ctype, headers={"Content-disposition": 'attachment; filename="photo.jpg"'}
        )

    async def _media_upload(self, request: web.Request) -> web.Response:
        kind = request.query.get("type")
        if kind not in ("image", "voice", "video", "file"):
            return self._answer(40004, "invalid media type")
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, aiohttp.BodyPartReader) or part.name != "media" or not part.filename:
            return self._answer(40007, "media part with a filename is required")
        data = bytes(await part.read())
        if kind == "image" and len(data) > 10 * 1024 * 1024:
            return self._answer(40009, "invalid image size")
        media_id = f"UP_{secrets.token_hex(16)}"
        ctype = part.headers.get("Content-Type", "application/octet-stream")
        self.media[media_id] = (data, ctype)
        self.uploads.append((media_id, data, part.filename))
        return self._answer(type=kind, media_id=media_id, created_at=str(int(self.now())))

    async def _department_list(self, request: web.Request) -> web.Response:
        root = request.query.get("id")
        depts = self.departments
        if root:
            keep = {int(root)}
            changed = True
            while changed:
                changed = False
                for d in depts:
                    if d["parentid"] in keep and d["id"] not in keep:
                        keep.add(d["id"])
                        changed = True
            depts = [d for d in depts if d["id"] in keep]
        return self._answer(department=depts)

    async def _user_list(self, request: web.Request) -> web.Response:
        try:
            dept = int(request.query["department_id"])
        except (KeyError, ValueError):
            return self._answer(60123, "invalid party id")
        if dept not in {d["id"] for d in self.departments}:
            return self._answer(60123, "invalid party id")
        users = [u for u in self.users.values() if dept in u["department"] and u["status"] != 5]
        return self._answer(userlist=users)

    async def _user_get(self, request: web.Request) -> web.Response:
        user = self.users.get(request.query.get("userid", ""))
        if user is None or user["status"] == 5:
            return self._answer(60111, "userid not found")
        return self._answer(**user)

    # ------------------------------------------------------------------ the WeCom client side
    def _timestamp(self) -> str:
        return str(int(self.now()))

    def text_xml(self, user: str, content: str, *, msg_id: str | None = None) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{self._timestamp()}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id or next(self._ids) + 7_000_000_000_000_000_000}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def image_xml(self, user: str, media_id: str, *, msg_id: str | None = None) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{self._timestamp()}</CreateTime>"
            f"<MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[https://wework.qpic.cn/wwpic/{media_id}/0]]></PicUrl>"
            f"<MediaId><![CDATA[{media_id}]]></MediaId>"
            f"<MsgId>{msg_id or next(self._ids) + 7_000_000_000_000_000_000}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

    def click_xml(
        self, user: str, message: SentMessage, key: str, selected: dict[str, list[str]] | None = None
    ) -> tuple[str, str]:
        """A ``template_card_event`` for ``user`` tapping ``key`` on ``message``: (xml, response_code).

        Each tap carries a fresh response_code valid for that user's copy of the card (doc 90240)."""
        code = f"RC_{secrets.token_urlsafe(24)}"
        self._codes[code] = _Code({user}, message)
        card = message.card
        items = "".join(
            f"<SelectedItem><QuestionKey><![CDATA[{q}]]></QuestionKey><OptionIds>"
            + "".join(f"<OptionId><![CDATA[{o}]]></OptionId>" for o in ids)
            + "</OptionIds></SelectedItem>"
            for q, ids in (selected or {}).items()
        )
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{self._timestamp()}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event>"
            f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{card.get('task_id', '')}]]></TaskId>"
            f"<CardType><![CDATA[{card.get('card_type', '')}]]></CardType>"
            f"<ResponseCode><![CDATA[{code}]]></ResponseCode><AgentID>{self.agent_id}</AgentID>"
            + (f"<SelectedItems>{items}</SelectedItems>" if items else "")
            + "</xml>"
        )
        return xml, code

    def contact_xml(self, change: str, user: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{self._timestamp()}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
            f"<ChangeType>{change}</ChangeType><UserID><![CDATA[{user}]]></UserID></xml>"
        )

    def signed(self, plaintext: str, *, timestamp: str | None = None) -> tuple[str, dict[str, str]]:
        """(body, query) for a callback, encrypted and signed as WeCom does."""
        ts = timestamp or self._timestamp()
        body, sig, nonce = self.crypto.envelope(plaintext, timestamp=ts, agent_id=self.agent_id)
        return body, {"msg_signature": sig, "timestamp": ts, "nonce": nonce}

    async def post(self, base_url: str, body: str | bytes, query: dict[str, str]) -> tuple[int, str]:
        started = time.perf_counter()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base_url}/callbacks/wecom?{urlencode(query)}",
                data=body,
                headers={"Content-Type": "text/xml; charset=utf-8"},
            ) as resp,
        ):
            text = await resp.text()
        self.callback_seconds.append(time.perf_counter() - started)
        return resp.status, text

    async def deliver(self, base_url: str, plaintext: str) -> tuple[int, str]:
        """Encrypt, sign and POST one callback; returns perfloop's (status, body)."""
        body, query = self.signed(plaintext)
        return await self.post(base_url, body, query)

    async def verify_url(self, base_url: str, echo: str = "1616140317555161061") -> tuple[int, str]:
        """The URL check WeCom runs when the callback URL is saved in the admin console."""
        ts = self._timestamp()
        nonce = str(secrets.randbelow(10**10))
        echostr = self.crypto.encrypt(echo)
        sig = self.crypto.signature(ts, nonce, echostr)
        query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base_url}/callbacks/wecom?{urlencode(query)}") as resp,
        ):
            return resp.status, await resp.text()
