"""HTTP plumbing every platform shares: capped body reads, one lazily opened session, one token cache.

Written once because each copy had to learn the same lessons: one ``content.read(n)`` returns only what has
arrived so far (a body split over TCP segments, or chunked, was cut short), a missing or lying
Content-Length must not make us buffer more than the cap, and concurrent callers must share one token fetch.
What differs per platform stays with the platform: the error a too-large answer becomes, the token margin,
how a token answer is read.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import aiohttp
from aiohttp import web

from adapters.base import CallbackRejected, PermanentError

CHUNK_BYTES = 64 * 1024

MAX_JSON_DEPTH = 32
"""The deepest JSON any platform sends us is about eight levels (a Feishu form submit); 32 leaves room for
growth. Python's C parser recurses once per level and raises ``RecursionError`` (not ``ValueError``) near
1,000, so without this cap 3 KB of brackets was a 500 with a traceback."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A JSON string: the brackets inside do not count."""
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _b in b"[{":
    _STEP[_b] = 1
for _b in b"]}":
    _STEP[_b] = -1


class UnsafeJson(ValueError):
    """Not JSON, or JSON nested deeper than the cap: bad input, never a crash."""


def json_depth(raw: bytes) -> int:
    """How deep the brackets of ``raw`` nest, strings skipped; linear in ``len(raw)``, no recursion.

    Malformed input (an unclosed string, unbalanced brackets) still gets a number: the parser rejects it next.
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for anything that came from outside: the depth is checked before parsing (so parsing
    cannot recurse past the cap), and every failure, bad UTF-8 included, is an ``UnsafeJson``. The one JSON
    entry point for what a platform or the simulator page sends, on every platform."""
    scanned = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if json_depth(scanned) > max_depth:
        raise UnsafeJson(f"JSON nested deeper than {max_depth} levels")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces, the scan caps depth
        raise UnsafeJson(f"not JSON: {type(exc).__name__}") from None
    return _mend_surrogates(data) if _SURROGATE.search(scanned) else data


_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""A ``\\uD800``–``\\uDFFF`` escape, or a surrogate already in a ``str`` (encoded with surrogatepass)."""
_LONE = re.compile("[\ud800-\udfff]")


def _mend_surrogates(data: Any) -> Any:
    """Every lone surrogate replaced by U+FFFD (issue 16 #8). JSON allows ``"\\ud800"`` alone, Python
    parses it into a ``str`` that no UTF-8 text can hold, and everything downstream (pydantic, the
    database) refused it: the message was answered 400 and the sender heard nothing. A pair that makes one
    character was already joined by the parser, so whatever is left is lone. The depth cap bounds the
    recursion."""
    if isinstance(data, str):
        return _LONE.sub("\ufffd", data)
    if isinstance(data, list):
        return [_mend_surrogates(v) for v in data]
    if isinstance(data, dict):
        return {_mend_surrogates(k): _mend_surrogates(v) for k, v in data.items()}
    return data


def json_object(raw: bytes | str, *, what: str = "body") -> dict[str, Any]:
    """A JSON object from outside, or ``CallbackRejected(400)``: answered at once, no crash logged."""
    try:
        data = loads(raw)
    except UnsafeJson as exc:
        raise CallbackRejected(400, f"{what}: {exc}") from None
    if not isinstance(data, dict):
        raise CallbackRejected(400, f"{what} is not a JSON object")
    return data


async def read_callback_body(request: web.Request, limit: int) -> bytes:
    """A platform callback's whole body, refused (413) as soon as it passes ``limit``.

    The body is read from the stream, where aiohttp's ``client_max_size`` does not apply.
    """
    if request.content_length is not None and request.content_length > limit:
        raise CallbackRejected(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise CallbackRejected(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_answer(
    resp: aiohttp.ClientResponse,
    cap: int,
    *,
    too_large: Callable[[str], PermanentError] = PermanentError,
) -> bytes:
    """A platform answer's whole body, abandoned as soon as it passes ``cap`` (a lying Content-Length too).

    ``too_large`` builds the error a platform raises for it (WeCom has its own ``MediaTooLarge``).
    """
    declared = resp.content_length
    if declared is not None and declared > cap:
        raise too_large(f"media too large: {declared} bytes > {cap}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > cap:
            raise too_large(f"media too large: more than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class LazySession:
    """One aiohttp session per platform client, opened on first use (inside the running loop, as aiohttp
    wants) and opened again after ``close``."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


TokenFetch = Callable[[], Awaitable[tuple[str, float]]]
"""Fetch a fresh access token: (token, seconds it is valid)."""


class TokenCache:
    """A platform access token, fetched once and shared until ``margin`` seconds before it expires.

    Concurrent callers share one fetch (a lock, re-checked inside). A forced refresh that had to wait for
    another caller's refresh uses that fresh token instead of fetching a third: a broadcast whose token
    expired mid-way refreshes once, not once per worker.
    """

    def __init__(self, fetch: TokenFetch, *, margin: float, min_ttl: float = 0.0) -> None:
        self._fetch = fetch
        self.margin = margin
        self.min_ttl = min_ttl
        """The shortest time a fetched token is trusted, whatever the platform says."""
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _fresh(self) -> str | None:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        return None

    async def get(self, *, refresh: bool = False) -> str:
        if not refresh and (token := self._fresh()):
            return token
        seen = self._token
        async with self._lock:
            token = self._fresh()
            if token and (not refresh or token != seen):
                return token
            token, ttl = await self._fetch()
            self._token = token
            self._expires_at = time.monotonic() + max(self.min_ttl, ttl - self.margin)
            self.fetches += 1
            return token

    def invalidate(self, stale: str | None = None) -> None:
        """Drop ``stale`` (a token the platform refused); None drops whatever is cached."""
        if stale is None or self._token == stale:
            self._token = None
            self._expires_at = 0.0


@dataclass(frozen=True)
class ReplayWindow:
    """How far a signed timestamp may be from our clock: ``window`` seconds into the past (the platform's own
    retries must fit, plus any slowness of our clock), ``tolerance`` seconds into the future (a fast platform
    clock or a slow one of ours). Every platform's pair is configurable (``[wecom|dingtalk|feishu]
    replay_window_seconds`` / ``clock_tolerance_seconds``): a host clock that drifts makes every callback
    fail, and ``perfloop doctor`` warns about that."""

    window: float
    tolerance: float

    def refusal(self, timestamp: float, now: float) -> str | None:
        """Why ``timestamp`` (seconds) is refused at ``now``, or None when it is inside the window."""
        age = now - timestamp
        if age > self.window:
            return f"timestamp {int(age)} s old, outside the {int(self.window)} s replay window"
        if -age > self.tolerance:
            return f"timestamp {int(-age)} s ahead, beyond the {int(self.tolerance)} s clock tolerance"
        return None

    def expires(self, timestamp: float) -> float:
        """When a request signed at ``timestamp`` leaves the window for good (what a replay memory keeps)."""
        return timestamp + self.window


async def server_clock_offset(url: str, *, timeout: float = 10.0) -> float:
    """Seconds the server at ``url`` is ahead of this host (negative: behind), from its ``Date`` header.

    Any answer carries ``Date`` (a 404 too), so no credentials are needed. ``Date`` has a one-second
    resolution and the round trip adds its half, so differences under ~2 s mean nothing. Raises ``OSError``
    or ``aiohttp.ClientError`` when the server cannot be reached, ``ValueError`` when it sends no usable
    ``Date``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        started = time.time()
        async with session.get(url, allow_redirects=False) as resp:
            ended = time.time()
            date = resp.headers.get("Date")
    if not date:
        raise ValueError("the answer has no Date header")
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        raise ValueError(f"unreadable Date header {date[:60]!r}") from None
    return server - (started + ended) / 2
