"""The only outbound path to Feishu: tenant token, messages, card patches, images, resources, contacts.

Why aiohttp and not lark-oapi's request path: lark-oapi's ``a*`` methods are async for the call itself but
fetch the tenant access token with blocking ``requests`` inside ``verify()`` (PLATFORMS.md §0.4), which would
stall the whole event loop for the length of a token round trip (and deadlock against a fake served on the
same loop). Its raw ``arequest`` also fails to parse JSON bodies. So every call here is plain aiohttp on the
service's loop, with the wire shapes taken from the SDK's request builders.

Error mapping (what the outbox sees):
- HTTP 429, or body code 99991400 (the gateway's "request trigger frequency limit", which older APIs send
  with HTTP 400), 11232 and 230020 (message-service limits) → ``RateLimited(retry_after)`` where
  ``retry_after`` is the ``x-ogw-ratelimit-reset`` header in seconds;
- HTTP 5xx, timeouts, connection errors → ``TransientError``;
- an invalid/expired tenant token (99991661, 99991663-99991666, 99991668, or a bare HTTP 401) →
  one refresh and one retry, then ``TransientError``;
- any other non-zero code → ``FeishuApiError`` (a ``PermanentError``) carrying the code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from adapters.base import PermanentError, RateLimited, TransientError, transport_error
from adapters.http import LazySession, TokenCache, read_answer
from adapters.ratelimit import TokenBucket

log = logging.getLogger("perfloop.feishu")

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"  # noqa: S105 - a URL path
INVALID_TOKEN_CODES = frozenset({99991661, 99991663, 99991664, 99991665, 99991666, 99991668})
RATE_LIMIT_CODES = frozenset({99991400, 11232, 230020})
INVALID_RECIPIENT_CODES = frozenset({230013, 99992361})
"""230013: the user is outside the bot's availability scope; 99992361: an open_id of another app."""
TOKEN_MARGIN_SECONDS = 600
"""Refresh 10 minutes before expiry (as lark-oapi does); with < 30 min left Feishu issues a new token."""
UUID_MAX = 50
"""``uuid`` on im/v1/messages: at most 50 characters; one success per uuid per hour."""
PAGE_SIZE = 50
DEFAULT_RETRY_AFTER = 1.0


class FeishuApiError(PermanentError):
    """A non-zero ``code`` that retrying cannot fix (bad card, no permission, unknown message…)."""

    def __init__(self, code: int, msg: str, *, status: int) -> None:
        super().__init__(f"feishu code {code} (HTTP {status}): {msg}")
        self.code = code
        self.status = status


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes | None = None


def checked_api_base(api_base: str) -> str:
    """https only, except plain http to a loopback fake (lark-oapi's rule): the app secret travels here."""
    url = urlsplit(api_base.rstrip("/"))
    loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
    if url.scheme != "https" and not (url.scheme == "http" and loopback):
        raise ValueError(f"feishu api_base must be an https URL (got {api_base!r})")
    if not url.hostname or url.path or url.query:
        raise ValueError(
            f"feishu api_base must be a bare origin like https://open.feishu.cn (got {api_base!r})"
        )
    return api_base.rstrip("/")


def idempotency_uuid(key: str) -> str:
    """Our idempotency key as Feishu's ``uuid``: as-is when short enough, else a stable digest of it."""
    if len(key) <= UUID_MAX:
        return key
    return "pl-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[: UUID_MAX - 3]


class FeishuClient:
    def __init__(
        self,
        *,
        api_base: str,
        app_id: str,
        app_secret: str,
        timeout: float = 10.0,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.api_base = checked_api_base(api_base)
        self.app_id = app_id
        self.app_secret = app_secret
        self.limiter = limiter
        """The app's message-API budget (50/s and 1,000/min), taken per send or patch right before it."""
        self._http = LazySession(timeout=timeout)
        self._token = TokenCache(self._fetch_token, margin=TOKEN_MARGIN_SECONDS, min_ttl=60)

    @property
    def token_fetches(self) -> int:
        return self._token.fetches

    async def close(self) -> None:
        await self._http.close()

    # ------------------------------------------------------------------ token
    async def token(self, *, force: bool = False) -> str:
        return await self._token.get(refresh=force)

    async def _fetch_token(self) -> tuple[str, float]:
        answer = await self._send(
            "POST", TOKEN_PATH, json_body={"app_id": self.app_id, "app_secret": self.app_secret}
        )
        _raise_for(answer)
        token = answer.body.get("tenant_access_token")
        expire = answer.body.get("expire")
        if not isinstance(token, str) or not token or not isinstance(expire, int):
            raise TransientError("token answer without tenant_access_token/expire")
        log.info("tenant access token fetched", extra={"app_id": self.app_id, "expire": expire})
        return token, float(expire)

    def invalidate_token(self, stale: str | None) -> None:
        self._token.invalidate(stale)

    # ------------------------------------------------------------------ transport
    async def _send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form: aiohttp.FormData | None = None,
        max_bytes: int | None = None,
    ) -> _Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if json_body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        data: Any = (
            form
            if form is not None
            else (
                json.dumps(json_body, ensure_ascii=False).encode("utf-8") if json_body is not None else None
            )
        )
        try:
            async with self._http.get().request(
                method, self.api_base + path, params=params, data=data, headers=headers
            ) as resp:
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                is_json = resp.content_type == "application/json"
                if max_bytes is not None and resp.status == 200 and not is_json:
                    return _Answer(resp.status, hdrs, {"code": 0}, await read_answer(resp, max_bytes))
                # The whole answer: one content.read(n) returns only what has arrived so far, which cuts a
                # large contact page short.
                raw = await read_answer(resp, MAX_ANSWER_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{method} {path}: {transport_error(exc)}") from None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if "code" not in body:
            body["code"] = 0 if resp.status == 200 else -resp.status
        return _Answer(resp.status, hdrs, body)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form_factory: Any = None,
        max_bytes: int | None = None,
        paced: bool = False,
    ) -> _Answer:
        """One authorised call; an invalid-token answer refreshes the token once and repeats the call.
        ``paced`` calls (the message APIs) go through the limiter: granted right before they go out, counted
        once answered."""
        for attempt in (1, 2):
            token = await self.token()
            form = form_factory() if form_factory is not None else None
            async with self.limiter.slot() if paced and self.limiter is not None else nullcontext():
                answer = await self._send(
                    method,
                    path,
                    token=token,
                    params=params,
                    json_body=json_body,
                    form=form,
                    max_bytes=max_bytes,
                )
            code = answer.body.get("code")
            if code in INVALID_TOKEN_CODES or (answer.status == 401 and code == -401):
                self.invalidate_token(token)
                if attempt == 1:
                    log.info("tenant token rejected, refreshing", extra={"code": code})
                    continue
                raise TransientError(f"tenant token rejected twice (code {code})")
            _raise_for(answer)
            return answer
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ messages
    async def send_card(self, open_id: str, card: dict[str, Any], *, uuid: str) -> str:
        answer = await self.call(
            "POST",
            "/open-apis/im/v1/messages",
            params={"receive_id_type": "open_id"},
            json_body={
                "receive_id": open_id,
                "msg_type": "interactive",
                "content": json.dumps(card, ensure_ascii=False),
                "uuid": idempotency_uuid(uuid),
            },
            paced=True,
        )
        message_id = (answer.body.get("data") or {}).get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise TransientError("send answer without data.message_id")
        return message_id

    async def patch_card(self, message_id: str, card: dict[str, Any]) -> None:
        await self.call(
            "PATCH",
            f"/open-apis/im/v1/messages/{quote(message_id, safe='')}",
            json_body={"content": json.dumps(card, ensure_ascii=False)},
            paced=True,
        )

    async def upload_image(self, data: bytes, *, filename: str, mime: str) -> str:
        def form() -> aiohttp.FormData:
            fd = aiohttp.FormData()
            fd.add_field("image_type", "message")
            fd.add_field("image", data, filename=filename, content_type=mime)
            return fd

        answer = await self.call("POST", "/open-apis/im/v1/images", form_factory=form)
        key = (answer.body.get("data") or {}).get("image_key")
        if not isinstance(key, str) or not key:
            raise TransientError("image upload answer without data.image_key")
        return key

    async def download_resource(self, message_id: str, file_key: str, *, max_bytes: int) -> bytes:
        path = f"/open-apis/im/v1/messages/{quote(message_id, safe='')}/resources/{quote(file_key, safe='')}"
        answer = await self.call("GET", path, params={"type": "image"}, max_bytes=max_bytes)
        if answer.raw is None:
            raise PermanentError("resource answer carried no file")
        return answer.raw

    # ------------------------------------------------------------------ contacts
    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        token = ""
        while True:
            query = dict(params, page_size=str(PAGE_SIZE))
            if token:
                query["page_token"] = token
            data = (await self.call("GET", path, params=query)).body.get("data") or {}
            for item in data.get("items") or []:
                if isinstance(item, dict):
                    yield item
            token = data.get("page_token") or ""
            if not data.get("has_more") or not token:
                return

    async def departments(self) -> list[dict[str, Any]]:
        """Every department under the root ("0"), recursively, as far as the app's contact scope reaches."""
        params = {
            "fetch_child": "true",
            "department_id_type": "open_department_id",
            "user_id_type": "open_id",
        }
        return [d async for d in self._pages("/open-apis/contact/v3/departments/0/children", params)]

    async def users_in(self, department_id: str) -> list[dict[str, Any]]:
        params = {
            "department_id": department_id,
            "department_id_type": "open_department_id",
            "user_id_type": "open_id",
        }
        return [u async for u in self._pages("/open-apis/contact/v3/users/find_by_department", params)]


MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""A JSON answer larger than this is not Feishu's."""


def _raise_for(answer: _Answer) -> None:
    code = answer.body.get("code")
    msg = str(answer.body.get("msg") or "")
    if answer.status == 429 or code in RATE_LIMIT_CODES:
        raise RateLimited(
            f"feishu rate limit (HTTP {answer.status}, code {code}): {msg}",
            retry_after=_retry_after(answer.headers),
        )
    if answer.status >= 500:
        raise TransientError(f"feishu HTTP {answer.status} (code {code}): {msg}")
    if code != 0:
        raise FeishuApiError(int(code) if isinstance(code, int) else -1, msg, status=answer.status)


def _retry_after(headers: dict[str, str]) -> float:
    try:
        value = float(headers.get("x-ogw-ratelimit-reset", ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return value if value > 0 else DEFAULT_RETRY_AFTER
