"""HTTP plumbing every platform shares: capped body reads, one lazily opened session, one token cache.

Written once because each copy had to learn the same lessons: one ``content.read(n)`` returns only what has
arrived so far (a body split over TCP segments, or chunked, was cut short), a missing or lying
Content-Length must not make us buffer more than the cap, and concurrent callers must share one token fetch.
What differs per platform stays with the platform: the error a too-large answer becomes, the token margin,
how a token answer is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from adapters.base import CallbackRejected, PermanentError

CHUNK_BYTES = 64 * 1024


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
