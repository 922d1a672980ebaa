"""The only outbound path to DingTalk: tokens, the new REST API (api.dingtalk.com) and the old oapi.

Everything goes through aiohttp. dingtalk-sdk is synchronous (``requests``) and its ``asyncsend_v2`` ignores
the configured base URL (it posts to the TOP gateway ``eco.taobao.com``, PLATFORMS.md §0.2), so the old oapi
calls are made here too; the SDK is kept only for its callback crypto.

Error mapping (what the outbox understands):
- new API: errors are HTTP 4xx/5xx with ``{"code","message","requestid"}``; an invalid or expired token is
  ``400/401 InvalidAuthentication`` → refresh once and retry; HTTP 429 or a ``*QpsLimit*`` / ``Throttling*`` /
  ``ApiCountLimit*`` code → RateLimited; 5xx → TransientError; other 4xx → PermanentError.
- oapi: HTTP 200 with ``errcode``; 40014 / 42001 / 40001 / 33001 → refresh once (dingtalk-sdk's list);
  88 / 90002 / 90018 / 90019 / 90020 → RateLimited; -1 (system busy) → TransientError.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from adapters.base import PermanentError, RateLimited, TransientError, transport_error
from adapters.http import LazySession, TokenCache, read_answer
from adapters.ratelimit import limiter_for
from bot.core.config import DingTalkConfig

log = logging.getLogger("perfloop.dingtalk")

TOKEN_CODES_OAPI = {33001, 40001, 40014, 42001}
RATE_CODES_OAPI = {88, 90002, 90018, 90019, 90020}
RATE_CODE_MARKERS = ("QpsLimit", "Throttling", "ApiCountLimit", "FlowControl")
TOKEN_CODES_API = {"InvalidAuthentication", "InvalidAccessToken"}
TOKEN_EARLY_SECONDS = 300
BATCH_SEND_LIMIT = 20
"""``oToMessages/batchSend`` takes at most 20 user ids per call."""
DOWNLOAD_HOST_SUFFIXES = (".dingtalk.com",)


def _token_from(data: dict[str, Any], token_key: str, ttl_key: str, what: str) -> tuple[str, float]:
    token = data.get(token_key)
    if not isinstance(token, str) or not token:
        raise PermanentError(f"{what} without {token_key}")
    return token, float(data.get(ttl_key, 7200))


class DingTalkClient:
    def __init__(self, cfg: DingTalkConfig, *, timeout: float = 10.0) -> None:
        self.cfg = cfg
        self.api_base = cfg.api_base.rstrip("/")
        self.oapi_base = cfg.oapi_base.rstrip("/")
        self._http = LazySession(timeout=timeout)
        self._tokens = {
            "api": TokenCache(self._fetch_api_token, margin=TOKEN_EARLY_SECONDS, min_ttl=60),
            "oapi": TokenCache(self._fetch_oapi_token, margin=TOKEN_EARLY_SECONDS, min_ttl=60),
        }
        """The new API (api.dingtalk.com) and the old oapi have a token each."""
        self.bucket = limiter_for(cfg.rate_limit)
        """Per API call, not per outbox row: one row may fan out into 20 card deliveries."""

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._http.get()

    @property
    def token_fetches(self) -> dict[str, int]:
        return {kind: cache.fetches for kind, cache in self._tokens.items()}

    async def close(self) -> None:
        await self._http.close()

    # ------------------------------------------------------------------ tokens
    async def api_token(self, *, refresh: bool = False) -> str:
        return await self._tokens["api"].get(refresh=refresh)

    async def oapi_token(self, *, refresh: bool = False) -> str:
        return await self._tokens["oapi"].get(refresh=refresh)

    async def _fetch_api_token(self) -> tuple[str, float]:
        data = await self._raw_api(
            "POST",
            "/v1.0/oauth2/accessToken",
            token=None,
            json={"appKey": self.cfg.app_key, "appSecret": self.cfg.app_secret},
        )
        return _token_from(data, "accessToken", "expireIn", "DingTalk accessToken answer")

    async def _fetch_oapi_token(self) -> tuple[str, float]:
        data = await self._raw_oapi(
            "GET",
            "/gettoken",
            token=None,
            params={"appkey": self.cfg.app_key, "appsecret": self.cfg.app_secret},
        )
        return _token_from(data, "access_token", "expires_in", "DingTalk gettoken answer")

    # ------------------------------------------------------------------ new API
    async def api(self, method: str, path: str, json: dict[str, Any]) -> dict[str, Any]:
        token = await self.api_token()
        try:
            return await self._raw_api(method, path, token=token, json=json)
        except _InvalidToken:
            token = await self.api_token(refresh=True)
        try:
            return await self._raw_api(method, path, token=token, json=json)
        except _InvalidToken as exc:
            raise TransientError(f"fresh token rejected: {exc}") from None

    async def _raw_api(
        self, method: str, path: str, *, token: str | None, json: dict[str, Any]
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["x-acs-dingtalk-access-token"] = token
        try:
            async with (
                self.bucket.slot() if token is not None else nullcontext(),
                self.session.request(method, self.api_base + path, json=json, headers=headers) as resp,
            ):
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{method} {path}: {transport_error(exc)}") from None
        if status < 300:
            return body if isinstance(body, dict) else {}
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        detail = f"{method} {path}: HTTP {status} {code} {message}".strip()
        if token is not None and (code in TOKEN_CODES_API or status == 401):
            raise _InvalidToken(detail)
        if status == 429 or any(m in code for m in RATE_CODE_MARKERS):
            self.bucket.penalise(retry_after or 1.0)
            raise RateLimited(detail, retry_after=retry_after or 1.0)
        if status >= 500:
            raise TransientError(detail, retry_after=retry_after)
        raise PermanentError(detail)

    # ------------------------------------------------------------------ oapi
    async def oapi(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        token = await self.oapi_token()
        try:
            return await self._raw_oapi(method, path, token=token, json=json, data=data, params=params)
        except _InvalidToken:
            token = await self.oapi_token(refresh=True)
        try:
            return await self._raw_oapi(method, path, token=token, json=json, data=data, params=params)
        except _InvalidToken as exc:
            raise TransientError(f"fresh token rejected: {exc}") from None

    async def _raw_oapi(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        url = self.oapi_base + path
        try:
            async with (
                self.bucket.slot() if token is not None else nullcontext(),
                self.session.request(method, url, params=query, json=json, data=data) as resp,
            ):
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{method} {path}: {transport_error(exc)}") from None
        if status >= 500:
            raise TransientError(f"{method} {path}: HTTP {status}")
        if status == 429:
            raise RateLimited(f"{method} {path}: HTTP 429", retry_after=1.0)
        if not isinstance(body, dict):
            raise TransientError(f"{method} {path}: HTTP {status} without a JSON body")
        errcode = int(body.get("errcode", 0) or 0)
        if errcode == 0:
            return body
        detail = f"{method} {path}: errcode {errcode} {body.get('errmsg', '')}"
        if token is not None and errcode in TOKEN_CODES_OAPI:
            raise _InvalidToken(detail)
        if errcode in RATE_CODES_OAPI or int(body.get("subcode", 0) or 0) in RATE_CODES_OAPI:
            self.bucket.penalise(1.0)
            raise RateLimited(detail, retry_after=1.0)
        if errcode == -1:
            raise TransientError(detail)
        raise PermanentError(detail)

    # ------------------------------------------------------------------ robot, cards
    async def batch_send(self, user_ids: list[str], msg_key: str, msg_param: str) -> dict[str, Any]:
        if len(user_ids) > BATCH_SEND_LIMIT:
            raise ValueError(f"batchSend takes at most {BATCH_SEND_LIMIT} users")
        return await self.api(
            "POST",
            "/v1.0/robot/oToMessages/batchSend",
            {"robotCode": self.cfg.robot_code, "userIds": user_ids, "msgKey": msg_key, "msgParam": msg_param},
        )

    async def create_and_deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api("POST", "/v1.0/card/instances/createAndDeliver", body)

    async def update_card(self, out_track_id: str, param_map: dict[str, str]) -> dict[str, Any]:
        return await self.api(
            "PUT",
            "/v1.0/card/instances",
            {
                "outTrackId": out_track_id,
                "cardData": {"cardParamMap": param_map},
                "cardUpdateOptions": {"updateCardDataByKey": True},
            },
        )

    async def register_card_callback(self, route_key: str, url: str, api_secret: str) -> None:
        await self.api(
            "POST",
            "/v1.0/card/callbacks/register",
            {"callbackRouteKey": route_key, "callbackUrl": url, "apiSecret": api_secret, "forceUpdate": True},
        )

    # ------------------------------------------------------------------ media
    def _download_allowed(self, url: str) -> bool:
        """Only DingTalk's own hosts (or the configured fake in tests): a download URL is never an SSRF."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        configured = {urlsplit(b).hostname for b in (self.api_base, self.oapi_base)}
        configured_ports = {(urlsplit(b).hostname, urlsplit(b).port) for b in (self.api_base, self.oapi_base)}
        if (host, parts.port) in configured_ports and host in configured:
            return parts.scheme in ("http", "https")
        suffixes = DOWNLOAD_HOST_SUFFIXES + tuple(
            "." + h.lower().lstrip(".") for h in self.cfg.download_hosts
        )
        return parts.scheme == "https" and (host == "dingtalk.com" or host.endswith(suffixes))

    async def download(self, download_code: str, *, max_bytes: int) -> bytes:
        data = await self.api(
            "POST",
            "/v1.0/robot/messageFiles/download",
            {"downloadCode": download_code, "robotCode": self.cfg.robot_code},
        )
        url = data.get("downloadUrl")
        if not isinstance(url, str) or not self._download_allowed(url):
            raise PermanentError(f"refusing download URL outside DingTalk: {str(url)[:100]!r}")
        try:
            async with self.session.get(url, allow_redirects=False) as resp:
                if resp.status >= 500:
                    raise TransientError(f"media download: HTTP {resp.status}")
                if resp.status != 200:
                    raise PermanentError(f"media download: HTTP {resp.status}")
                return await read_answer(resp, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"media download: {transport_error(exc)}") from None

    async def upload_media(self, data: bytes, *, filename: str, mime: str) -> str:
        def form() -> aiohttp.FormData:  # a FormData is single-use, so the token retry builds a new one
            fd = aiohttp.FormData()
            fd.add_field("media", data, filename=filename, content_type=mime)
            return fd

        token = await self.oapi_token()
        try:
            body = await self._raw_oapi(
                "POST", "/media/upload", token=token, data=form(), params={"type": "image"}
            )
        except _InvalidToken:
            token = await self.oapi_token(refresh=True)
            try:
                body = await self._raw_oapi(
                    "POST", "/media/upload", token=token, data=form(), params={"type": "image"}
                )
            except _InvalidToken as exc:
                raise TransientError(f"fresh token rejected: {exc}") from None
        media_id = body.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise PermanentError("media/upload answer without media_id")
        return media_id

    # ------------------------------------------------------------------ work notifications
    async def work_notice(self, user_ids: list[str], msg: dict[str, Any]) -> str:
        body = await self.oapi(
            "POST",
            "/topapi/message/corpconversation/asyncsend_v2",
            json={"agent_id": self.cfg.agent_id, "userid_list": ",".join(user_ids), "msg": msg},
        )
        return str(body.get("task_id", ""))

    # ------------------------------------------------------------------ org
    async def department(self, dept_id: int) -> dict[str, Any]:
        body = await self.oapi("POST", "/topapi/v2/department/get", json={"dept_id": dept_id})
        result = body.get("result")
        return result if isinstance(result, dict) else {}

    async def sub_departments(self, dept_id: int) -> list[dict[str, Any]]:
        body = await self.oapi("POST", "/topapi/v2/department/listsub", json={"dept_id": dept_id})
        result = body.get("result")
        return [d for d in result if isinstance(d, dict)] if isinstance(result, list) else []

    async def users_page(self, dept_id: int, cursor: int, size: int = 100) -> dict[str, Any]:
        body = await self.oapi(
            "POST",
            "/topapi/v2/user/list",
            json={
                "dept_id": dept_id,
                "cursor": cursor,
                "size": size,
                "contain_access_limit": False,
                "language": "zh_CN",
            },
        )
        result = body.get("result")
        return result if isinstance(result, dict) else {}

    async def user(self, user_id: str) -> dict[str, Any]:
        body = await self.oapi("POST", "/topapi/v2/user/get", json={"userid": user_id, "language": "zh_CN"})
        result = body.get("result")
        return result if isinstance(result, dict) else {}


class _InvalidToken(Exception):
    pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""
