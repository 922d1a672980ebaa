"""The only outbound path to WeCom: aiohttp calls with a shared access token and WeCom's error codes mapped
onto the outbox's error types.

- The access token is cached until ``REFRESH_MARGIN`` seconds before it expires; concurrent callers share
  one fetch (a lock, re-checked inside), and a call answered ``40014``/``42001`` (invalid/expired token)
  drops that token, fetches a new one once and retries once.
- ``45009``/``45033``/``45011`` → ``RateLimited`` (the outbox backs off and penalises the app's bucket).
- HTTP 5xx, ``-1`` (system busy), timeouts and connection errors → ``TransientError``.
- Any other non-zero ``errcode`` → ``WeComAPIError`` (permanent), carrying the code for callers that
  handle one.
wechatpy is not used here: it is synchronous and hard-codes the API host for tokens and media.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from adapters.base import PermanentError, RateLimited, TransientError, transport_error
from adapters.http import LazySession, TokenCache, read_answer

log = logging.getLogger("perfloop.wecom")

TOKEN_ERRORS = frozenset({40014, 42001})
RATE_ERRORS = frozenset({45009, 45011, 45033})
BUSY_ERRORS = frozenset({-1})
ALL_INVALID_RECIPIENTS = 81013
REFRESH_MARGIN = 300.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""A JSON answer larger than this is not WeCom's (user/list of a 10,000-person department is ~3 MB)."""


class WeComAPIError(PermanentError):
    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"wecom {path}: errcode {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class MediaTooLarge(PermanentError):
    pass


class WeComClient:
    def __init__(
        self,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        timeout: float = 10.0,
        rate_limit_pause: float = 60.0,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self.rate_limit_pause = rate_limit_pause
        """WeCom blocks a minute-level overrun for 60 s: tell the outbox to wait that long."""
        self._http = LazySession(timeout=timeout)
        self._token = TokenCache(self._fetch_token, margin=REFRESH_MARGIN)

    @property
    def token_fetches(self) -> int:
        return self._token.fetches

    # ------------------------------------------------------------------ plumbing
    async def close(self) -> None:
        await self._http.close()

    def _url(self, path: str) -> str:
        return f"{self.api_base}/cgi-bin/{path}"

    def _raise_for(self, path: str, result: dict[str, Any]) -> None:
        code = int(result.get("errcode", 0) or 0)
        if code == 0:
            return
        msg = str(result.get("errmsg", ""))
        if code in RATE_ERRORS:
            raise RateLimited(f"wecom {path}: errcode {code} {msg}", retry_after=self.rate_limit_pause)
        if code in BUSY_ERRORS:
            raise TransientError(f"wecom {path}: errcode {code} {msg}")
        raise WeComAPIError(path, code, msg)

    async def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        json_body: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
        binary_cap: int | None = None,
    ) -> dict[str, Any] | bytes:
        """One HTTP exchange. JSON answers come back as dicts; with ``binary_cap`` a file body comes back as
        bytes, read in chunks and abandoned as soon as it passes the cap."""
        try:
            async with self._http.get().request(
                method, self._url(path), params=params, json=json_body, data=form
            ) as resp:
                if resp.status >= 500:
                    raise TransientError(f"wecom {path}: HTTP {resp.status}")
                if resp.status != 200:
                    raise PermanentError(f"wecom {path}: HTTP {resp.status}")
                ctype = resp.headers.get("Content-Type", "")
                if binary_cap is not None and "json" not in ctype and not ctype.startswith("text/"):
                    return await read_answer(resp, binary_cap, too_large=MediaTooLarge)
                # The whole answer: one content.read(n) returns only what has arrived so far, which cut
                # user/list answers of a few thousand people short ("answer is not JSON").
                raw = await read_answer(resp, MAX_ANSWER_BYTES, too_large=MediaTooLarge)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"wecom {path}: {transport_error(exc)}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise TransientError(f"wecom {path}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise TransientError(f"wecom {path}: answer is not a JSON object")
        return data

    # ------------------------------------------------------------------ token
    async def token(self, *, force: bool = False) -> str:
        return await self._token.get(refresh=force)

    async def _fetch_token(self) -> tuple[str, float]:
        result = await self._request("GET", "gettoken", {"corpid": self.corp_id, "corpsecret": self._secret})
        assert isinstance(result, dict)
        self._raise_for("gettoken", result)
        return str(result["access_token"]), float(result.get("expires_in", 7200))

    async def _authed(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        binary_cap: int | None = None,
    ) -> dict[str, Any] | bytes:
        for attempt in range(2):
            token = await self.token()
            result = await self._request(
                method,
                path,
                {**(params or {}), "access_token": token},
                json_body=json_body,
                form=form() if form else None,
                binary_cap=binary_cap,
            )
            if isinstance(result, bytes):
                return result
            if int(result.get("errcode", 0) or 0) in TOKEN_ERRORS and attempt == 0:
                log.info("wecom token rejected; refreshing once", extra={"path": path})
                self._token.invalidate(token)
                continue
            self._raise_for(path, result)
            return result
        raise AssertionError("unreachable")

    async def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        result = await self._authed(method, path, **kw)
        assert isinstance(result, dict)
        return result

    # ------------------------------------------------------------------ endpoints
    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """``message/send``; ``body`` carries touser ("a|b|c", ≤ 1000), msgtype, agentid and the message."""
        return await self.call("POST", "message/send", json_body=body)

    async def update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "message/update_template_card", json_body=body)

    async def media_get(self, media_id: str, *, max_bytes: int) -> bytes:
        result = await self._authed("GET", "media/get", params={"media_id": media_id}, binary_cap=max_bytes)
        if isinstance(result, dict):  # errcode 0 with a JSON body: not a file
            raise PermanentError(f"wecom media/get: no file for {media_id!r}")
        return result

    async def media_upload(self, data: bytes, *, filename: str, mime: str, kind: str = "image") -> str:
        def form() -> aiohttp.FormData:
            fd = aiohttp.FormData()
            fd.add_field("media", data, filename=filename, content_type=mime)
            return fd

        result = await self.call("POST", "media/upload", params={"type": kind}, form=form)
        return str(result["media_id"])

    async def department_list(self) -> list[dict[str, Any]]:
        result = await self.call("GET", "department/list")
        return list(result.get("department", []))

    async def user_list(self, department_id: int | str) -> list[dict[str, Any]]:
        result = await self.call("GET", "user/list", params={"department_id": str(department_id)})
        return list(result.get("userlist", []))

    async def user_get(self, user_id: str) -> dict[str, Any]:
        return await self.call("GET", "user/get", params={"userid": user_id})
