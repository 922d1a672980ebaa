"""A fake DingTalk that speaks the real wire protocol, for end-to-end tests over loopback.

One aiohttp server plays both API hosts and the Stream gateway:
- api.dingtalk.com: ``/v1.0/oauth2/accessToken``, ``/v1.0/robot/oToMessages/batchSend`` (≤ 20 users),
  ``/v1.0/card/instances/createAndDeliver``, ``PUT /v1.0/card/instances``,
  ``/v1.0/card/callbacks/register``, ``/v1.0/robot/messageFiles/download`` (→ a temporary URL on this
  server), ``/v1.0/gateway/connections/open``;
  errors are HTTP 4xx/5xx with ``{"code","message","requestid"}``;
- oapi.dingtalk.com: ``/gettoken``, ``/topapi/v2/department/get|listsub``, ``/topapi/v2/user/list|get``,
  ``/topapi/message/corpconversation/asyncsend_v2``, ``/media/upload``; errors are ``errcode`` with HTTP 200;
- the Stream gateway: a WebSocket speaking the JSON frames (``CALLBACK``/``EVENT``/``SYSTEM``) and collecting
  the client's acks.
Tokens are enforced (and can be revoked to force a refresh), rate limits can be injected per path, and
every card, update and message is recorded. As DingTalk it signs robot messages, encrypts event callbacks,
posts card clicks to the registered callback URL, and pushes Stream frames.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.platform_crypto import DingTalkSealer, dingtalk_robot_sign

APP_KEY = "dingappkey0001"
APP_SECRET = "app-secret-for-tests-0123456789abcdef"
ROBOT_CODE = "dingappkey0001"
TOKEN = "evtoken"
AES_KEY = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij"
CORP_ID = "dingcorp0001"


@dataclass
class FakeUser:
    userid: str
    name: str
    dept_ids: list[int]
    manager: str | None = None
    leader_in: list[int] = field(default_factory=list)


@dataclass
class FakeDept:
    dept_id: int
    name: str
    parent_id: int


def default_org() -> tuple[list[FakeDept], list[FakeUser]]:
    depts = [
        FakeDept(1, "测试公司", 0),
        FakeDept(10, "研发部", 1),
        FakeDept(11, "后端组", 10),
        FakeDept(20, "销售部", 1),
    ]
    users = [
        FakeUser("leader", "刘总", [1], None, [1]),
        FakeUser("mgr", "王经理", [10], "leader", [10]),
        FakeUser("emp1", "张三", [10, 11], "mgr"),
        FakeUser("emp2", "李四", [11], "mgr"),
        FakeUser("smgr", "孙经理", [20], "leader", [20]),
    ]
    users += [FakeUser(f"s{i:03d}", f"销售{i}", [20], "smgr") for i in range(130)]
    return depts, users


class FakeDingTalk:
    def __init__(self) -> None:
        self.app_key = APP_KEY
        self.app_secret = APP_SECRET
        self.api_tokens: set[str] = set()
        self.oapi_tokens: set[str] = set()
        self.token_requests = {"api": 0, "oapi": 0}
        self.throttle: dict[str, int] = {}
        """path → how many next calls answer with the platform's rate-limit error."""
        self.flow_control: dict[str, int] = {}
        """user id → how many next batchSends report that user in flowControlledStaffIdList."""
        self.fail_5xx: dict[str, int] = {}
        self.unreachable: set[str] = set()
        self.batch_sends: list[dict[str, Any]] = []
        self.cards: dict[str, dict[str, Any]] = {}
        self.card_updates: list[dict[str, Any]] = []
        self.work_notices: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.file_urls: dict[str, str] = {}
        self.callback_routes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.depts, self.users = default_org()
        self.ws_clients: list[web.WebSocketResponse] = []
        self.ws_connected = asyncio.Event()
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.opened_subscriptions: list[list[dict[str, str]]] = []
        self._ids = itertools.count(1)
        self.crypto = DingTalkSealer(TOKEN, AES_KEY, APP_KEY)
        """dingtalk-sdk's crypto, never the adapter's (issue 16 #18)."""
        self._robot_ts: dict[int, str] = {}
        self.date_offset = 0.0
        """Seconds added to the ``Date`` header of every answer (``perfloop doctor`` reads it)."""
        """Signed robot timestamp (ms) → the message it was used for."""
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ server
    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        """DingTalk's clock as its answers show it: ``date_offset`` seconds off real time."""
        response.headers["Date"] = email.utils.formatdate(time.time() + self.date_offset, usegmt=True)

    async def start(self) -> str:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.on_response_prepare.append(self._date_header)
        r = app.router
        r.add_post("/v1.0/oauth2/accessToken", self.h_access_token)
        r.add_post("/v1.0/robot/oToMessages/batchSend", self.h_batch_send)
        r.add_post("/v1.0/card/instances/createAndDeliver", self.h_create_and_deliver)
        r.add_put("/v1.0/card/instances", self.h_update_card)
        r.add_post("/v1.0/card/callbacks/register", self.h_register)
        r.add_post("/v1.0/robot/messageFiles/download", self.h_download)
        r.add_get("/files/{key}", self.h_file)
        r.add_post("/v1.0/gateway/connections/open", self.h_open_connection)
        r.add_get("/gateway/ws", self.h_ws)
        r.add_get("/gettoken", self.h_gettoken)
        r.add_post("/topapi/v2/department/get", self.h_dept_get)
        r.add_post("/topapi/v2/department/listsub", self.h_listsub)
        r.add_post("/topapi/v2/user/list", self.h_user_list)
        r.add_post("/topapi/v2/user/get", self.h_user_get)
        r.add_post("/topapi/message/corpconversation/asyncsend_v2", self.h_asyncsend)
        r.add_post("/media/upload", self.h_upload)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()
        if self._session is not None:
            await self._session.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # ------------------------------------------------------------------ helpers
    def revoke_tokens(self) -> None:
        """As if the tokens expired early: the next call gets the invalid-token answer."""
        self.api_tokens.clear()
        self.oapi_tokens.clear()

    @staticmethod
    def api_error(status: int, code: str, message: str) -> web.Response:
        return web.json_response(
            {"code": code, "message": message, "requestid": uuid.uuid4().hex.upper()}, status=status
        )

    @staticmethod
    def oapi_error(errcode: int, errmsg: str, **extra: Any) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": errmsg, **extra})

    def _gate_api(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        if self.fail_5xx.get(request.path, 0) > 0:
            self.fail_5xx[request.path] -= 1
            return self.api_error(503, "ServiceUnavailable", "service busy")
        if request.headers.get("x-acs-dingtalk-access-token") not in self.api_tokens:
            return self.api_error(401, "InvalidAuthentication", "不合法的access_token")
        if self.throttle.get(request.path, 0) > 0:
            self.throttle[request.path] -= 1
            return self.api_error(403, "Forbidden.AccessDenied.QpsLimitForApi", "调用该接口超过限流")
        return None

    def _gate_oapi(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        if request.query.get("access_token") not in self.oapi_tokens:
            return self.oapi_error(40014, "不合法的access_token")
        if self.throttle.get(request.path, 0) > 0:
            self.throttle[request.path] -= 1
            return self.oapi_error(
                88,
                "ding talk error[subcode=90018,submsg=当前企业所有应用调用该接口次数过多]",
                subcode="90018",
            )
        return None

    # ------------------------------------------------------------------ new API
    async def h_access_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return self.api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = secrets.token_hex(16)
        self.api_tokens.add(token)
        self.token_requests["api"] += 1
        return web.json_response({"accessToken": token, "expireIn": 7200})

    async def h_batch_send(self, request: web.Request) -> web.Response:
        if (err := self._gate_api(request)) is not None:
            return err
        body = await request.json()
        users = body.get("userIds") or []
        if body.get("robotCode") != ROBOT_CODE:
            return self.api_error(400, "invalidParameter.robotCode", "robotCode 无效")
        if not users or len(users) > 20:
            return self.api_error(400, "invalidParameter.userIds", "userIds 数量必须在1-20之间")
        json.loads(body["msgParam"])  # must be a JSON string
        throttled = [u for u in users if self.flow_control.get(u, 0) > 0]
        for u in throttled:
            self.flow_control[u] -= 1
        invalid = [u for u in users if u in self.unreachable]
        delivered = [u for u in users if u not in throttled and u not in invalid]
        key = f"pqk{next(self._ids)}"
        self.batch_sends.append({**body, "delivered": delivered, "processQueryKey": key})
        return web.json_response(
            {
                "processQueryKey": key,
                "invalidStaffIdList": invalid,
                "flowControlledStaffIdList": throttled,
                "filteredStaffIdList": [],
            }
        )

    async def h_create_and_deliver(self, request: web.Request) -> web.Response:
        if (err := self._gate_api(request)) is not None:
            return err
        body = await request.json()
        out_track_id = body.get("outTrackId")
        if not out_track_id or not body.get("cardTemplateId"):
            return self.api_error(400, "invalidParameter", "outTrackId/cardTemplateId 必填")
        if out_track_id in self.cards:
            return self.api_error(400, "param.outTrackIdExist", "outTrackId already exists")
        params = body.get("cardData", {}).get("cardParamMap", {})
        if not all(isinstance(v, str) for v in params.values()):
            return self.api_error(400, "invalidParameter.cardParamMap", "cardParamMap 的值必须是字符串")
        space = str(body.get("openSpaceId", ""))
        user = space.removeprefix("dtv1.card//IM_ROBOT.")
        if body.get("callbackType") == "HTTP" and body.get("callbackRouteKey") not in self.callback_routes:
            return self.api_error(400, "invalidParameter.callbackRouteKey", "callbackRouteKey 未注册")
        ok = user not in self.unreachable
        self.cards[out_track_id] = {"body": body, "user": user, "params": dict(params), "delivered": ok}
        return web.json_response(
            {
                "success": True,
                "result": {
                    "outTrackId": out_track_id,
                    "deliverResults": [
                        {
                            "spaceType": "IM_ROBOT",
                            "spaceId": user,
                            "success": ok,
                            "errorMsg": "" if ok else "用户不在可见范围",
                            "carrierId": f"car{next(self._ids)}",
                        }
                    ],
                },
            }
        )

    async def h_update_card(self, request: web.Request) -> web.Response:
        if (err := self._gate_api(request)) is not None:
            return err
        body = await request.json()
        card = self.cards.get(body.get("outTrackId", ""))
        if card is None:
            return self.api_error(400, "param.cardNotExist", "卡片不存在")
        params = body.get("cardData", {}).get("cardParamMap", {})
        card["params"].update(params)
        self.card_updates.append(body)
        return web.json_response({"success": True, "result": True})

    async def h_register(self, request: web.Request) -> web.Response:
        if (err := self._gate_api(request)) is not None:
            return err
        body = await request.json()
        self.callback_routes[body["callbackRouteKey"]] = body
        return web.json_response(
            {"result": {"callbackUrl": body["callbackUrl"], "apiSecret": body["apiSecret"]}}
        )

    async def h_download(self, request: web.Request) -> web.Response:
        if (err := self._gate_api(request)) is not None:
            return err
        body = await request.json()
        code = body.get("downloadCode")
        if code not in self.files or body.get("robotCode") != ROBOT_CODE:
            return self.api_error(400, "invalidParameter.downloadCode", "downloadCode 无效")
        url = self.file_urls.get(code) or f"{self.url}/files/{code}?Expires={int(time.time()) + 3600}"
        return web.json_response({"downloadUrl": url})

    async def h_file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["key"]], content_type="image/png")

    async def h_open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return self.api_error(401, "InvalidAuthentication", "clientId or clientSecret invalid")
        self.opened_subscriptions.append(body.get("subscriptions", []))
        return web.json_response(
            {
                "endpoint": self.url.replace("http://", "ws://") + "/gateway/ws",
                "ticket": secrets.token_urlsafe(12),
            }
        )

    async def h_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_clients.append(ws)
        self.ws_connected.set()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    ack = json.loads(msg.data)
                    mid = ack.get("headers", {}).get("messageId")
                    fut = self.acks.get(mid)
                    if fut is not None and not fut.done():
                        fut.set_result(ack)
        finally:
            self.ws_clients.remove(ws)
            if not self.ws_clients:
                self.ws_connected.clear()
        return ws

    # ------------------------------------------------------------------ oapi
    async def h_gettoken(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if request.query.get("appkey") != self.app_key or request.query.get("appsecret") != self.app_secret:
            return self.oapi_error(40089, "不合法的corpid或corpsecret")
        token = secrets.token_hex(16)
        self.oapi_tokens.add(token)
        self.token_requests["oapi"] += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def h_dept_get(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        dept_id = (await request.json()).get("dept_id")
        dept = next((d for d in self.depts if d.dept_id == dept_id), None)
        if dept is None:
            return self.oapi_error(60003, "部门不存在")
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"dept_id": dept.dept_id, "name": dept.name, "parent_id": dept.parent_id},
            }
        )

    async def h_listsub(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        dept_id = (await request.json()).get("dept_id")
        subs = [
            {
                "dept_id": d.dept_id,
                "name": d.name,
                "parent_id": d.parent_id,
                "create_dept_group": False,
                "auto_add_user": False,
            }
            for d in self.depts
            if d.parent_id == dept_id and d.dept_id != 1
        ]
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": subs})

    async def h_user_list(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        body = await request.json()
        dept_id, cursor, size = body["dept_id"], int(body.get("cursor", 0)), int(body.get("size", 0))
        if not 1 <= size <= 100:
            return self.oapi_error(400002, "size 参数不合法")
        members = [u for u in self.users if dept_id in u.dept_ids]
        page = members[cursor : cursor + size]
        has_more = cursor + size < len(members)
        items = [
            {
                "userid": u.userid,
                "unionid": f"union-{u.userid}",
                "name": u.name,
                "title": "",
                "dept_id_list": u.dept_ids,
                "leader": dept_id in u.leader_in,
                "admin": False,
                "boss": False,
                "active": True,
            }
            for u in page
        ]
        result: dict[str, Any] = {"has_more": has_more, "list": items}
        if has_more:
            result["next_cursor"] = cursor + size
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result})

    async def h_user_get(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        uid = (await request.json()).get("userid")
        user = next((u for u in self.users if u.userid == uid), None)
        if user is None:
            return self.oapi_error(60121, "找不到该用户")
        result: dict[str, Any] = {
            "userid": user.userid,
            "name": user.name,
            "dept_id_list": user.dept_ids,
            "leader_in_dept": [{"dept_id": d, "leader": d in user.leader_in} for d in user.dept_ids],
            "active": True,
        }
        if user.manager:
            result["manager_userid"] = user.manager
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": result})

    async def h_asyncsend(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        body = await request.json()
        if not body.get("agent_id") or not body.get("userid_list") or "msgtype" not in body.get("msg", {}):
            return self.oapi_error(400002, "参数不合法")
        self.work_notices.append(body)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "task_id": next(self._ids), "request_id": uuid.uuid4().hex}
        )

    async def h_upload(self, request: web.Request) -> web.Response:
        if (err := self._gate_oapi(request)) is not None:
            return err
        form = await request.post()
        media = form.get("media")
        if request.query.get("type") != "image" or not isinstance(media, web.FileField):
            return self.oapi_error(40004, "不合法的媒体文件类型")
        data = media.file.read()
        media_id = f"@lADP{secrets.token_hex(8)}"
        self.uploads.append({"media_id": media_id, "filename": media.filename, "size": len(data)})
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "type": "image",
                "media_id": media_id,
                "created_at": int(time.time() * 1000),
            }
        )

    # ------------------------------------------------------------------ acting as DingTalk
    def robot_message(
        self,
        sender: str,
        *,
        text: str | None = None,
        download_code: str | None = None,
        msg_id: str | None = None,
        conversation_type: str = "1",
    ) -> dict[str, Any]:
        base: dict[str, Any] = {
            "conversationId": f"cid{sender}",
            "conversationType": conversation_type,
            "msgId": msg_id or f"msg{uuid.uuid4().hex[:16]}",
            "senderId": f"$:LWCP_v1:${sender}",
            "senderStaffId": sender,
            "senderNick": sender,
            "senderCorpId": CORP_ID,
            "chatbotUserId": "$:bot",
            "chatbotCorpId": CORP_ID,
            "robotCode": ROBOT_CODE,
            "createAt": int(time.time() * 1000),
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
            "sessionWebhookExpiredTime": int(time.time() * 1000) + 5_400_000,
            "isAdmin": False,
            "isInAtList": True,
        }
        if text is not None:
            base.update(msgtype="text", text={"content": text})
        else:
            base.update(msgtype="picture", content={"downloadCode": download_code})
        return base

    def buttons(self, out_track_id: str) -> list[dict[str, Any]]:
        """The buttons the card shows now (after any updates), as the general template's ``msgButtons``."""
        raw = self.cards[out_track_id]["params"].get("sys_full_json_obj") or "{}"
        return list(json.loads(raw).get("msgButtons") or [])

    def card_callback(
        self,
        out_track_id: str,
        user: str,
        button: dict[str, Any] | str,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A click as DingTalk's card service posts it.

        Given the button (a ``msgButtons`` entry), the click carries only what that button's ``params``
        carry (plus ``params``, standing for template inputs): which of ``actionIds`` / ``params`` a real
        click fills in is unsettled (PLATFORMS.md §6), and the adapter must not rely on the one we cannot
        confirm. Given a string, the click carries it as the only action id and no button params (the
        other reading of the platform).
        """
        if isinstance(button, dict):
            private: dict[str, Any] = {"params": {**(button.get("params") or {}), **(params or {})}}
        else:
            private = {"actionIds": [button], "params": params or {}}
        return {
            "type": "actionCallback",
            "corpId": CORP_ID,
            "outTrackId": out_track_id,
            "spaceType": "IM_ROBOT",
            "spaceId": user,
            "userId": user,
            "userIdType": 1,
            "extension": "{}",
            "content": json.dumps({"cardPrivateData": private}),
        }

    async def post_robot(
        self,
        bot_url: str,
        data: dict[str, Any],
        *,
        timestamp_ms: int,
        secret: str | None = None,
        sign: str | None = None,
        exact: bool = False,
    ) -> aiohttp.ClientResponse:
        """POST a robot message signed as DingTalk signs it: over the timestamp of this delivery. Two messages
        never share a millisecond here (a test's fixed clock would make them), because the adapter refuses a
        signature that already came with another message (issue 16 #5); a retry of the same ``msgId`` keeps
        its timestamp. ``exact``: sign ``timestamp_ms`` as given, as an attacker replaying a pair would."""
        msg_id = str(data.get("msgId", ""))
        if not exact:
            while self._robot_ts.get(timestamp_ms, msg_id) != msg_id:
                timestamp_ms += 1
            self._robot_ts[timestamp_ms] = msg_id
        ts = str(timestamp_ms)
        headers = {
            "timestamp": ts,
            "sign": sign or dingtalk_robot_sign(ts, secret or self.app_secret),
            "Content-Type": "application/json",
        }
        async with self.session.post(
            f"{bot_url}/callbacks/dingtalk", data=json.dumps(data), headers=headers
        ) as resp:
            await resp.read()
            return resp

    async def post_event(
        self, bot_url: str, event: dict[str, Any], *, timestamp_ms: int, encrypt: str | None = None
    ) -> tuple[int, Any]:
        env = self.crypto.encrypt(json.dumps(event), timestamp_ms)
        if encrypt is not None:  # a forged/garbled body, signed correctly so only decryption can catch it
            env["encrypt"] = encrypt
            env["msg_signature"] = self.crypto.signature(env["timeStamp"], env["nonce"], encrypt)
        query = {"msg_signature": env["msg_signature"], "timestamp": env["timeStamp"], "nonce": env["nonce"]}
        async with self.session.post(
            f"{bot_url}/callbacks/dingtalk", params=query, json={"encrypt": env["encrypt"]}
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def click_http(self, route_key: str, data: dict[str, Any]) -> tuple[int, Any]:
        """Post a card click to the URL registered for the card's route key, as DingTalk's card service."""
        url = self.callback_routes[route_key]["callbackUrl"]
        async with self.session.post(url, json=data) as resp:
            return resp.status, await resp.json(content_type=None)

    async def push_frame(
        self,
        topic: str,
        data: dict[str, Any],
        *,
        frame_type: str = "CALLBACK",
        message_id: str | None = None,
        extra_headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send one Stream frame to the connected client and wait for its ack."""
        await asyncio.wait_for(self.ws_connected.wait(), timeout)
        mid = message_id or uuid.uuid4().hex
        headers = {
            "appId": self.app_key,
            "connectionId": "conn1",
            "contentType": "application/json",
            "messageId": mid,
            "time": str(int(time.time() * 1000)),
            "topic": topic,
            **(extra_headers or {}),
        }
        frame = {"specVersion": "1.0", "type": frame_type, "headers": headers, "data": json.dumps(data)}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.acks[mid] = fut
        await self.ws_clients[-1].send_str(json.dumps(frame))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.acks.pop(mid, None)


# ---------------------------------------------------------------------- test harness
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dingtalk_settings(base: Any, fake_url: str, *, mode: str, bot_port: int, **extra: Any) -> Any:
    """The test ``settings`` with DingTalk enabled and pointed at the fake (both API hosts are the fake)."""
    section = {
        "enabled": True,
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "robot_code": ROBOT_CODE,
        "token": TOKEN,
        "aes_key": AES_KEY,
        "corp_id": CORP_ID,
        "api_base": fake_url,
        "oapi_base": fake_url,
        "mode": mode,
        "rate_limit": {"per_second": 1000.0, "burst": 1000},
        **extra,
    }
    return base.model_copy(
        update={
            "dingtalk": type(base.dingtalk).model_validate(section),
            "server": base.server.model_copy(update={"public_url": f"http://127.0.0.1:{bot_port}"}),
        }
    )
