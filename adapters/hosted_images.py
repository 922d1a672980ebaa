"""Card images live in our media store (sha256 ids); a platform shows only images it hosts.

Each adapter uploads a stored image once and reuses the platform's id: WeCom's and DingTalk's media ids
expire after about three days (so the cache entry does too), Feishu's image keys do not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from adapters.base import MediaReader

log = logging.getLogger("perfloop.media")

Upload = Callable[[bytes, str, str], Awaitable[str]]
"""(data, filename, mime) → the platform's id for the uploaded image."""


class HostedImages:
    def __init__(
        self, store: MediaReader | None, upload: Upload, *, ttl_seconds: float | None = None
    ) -> None:
        self.store = store
        """The app's media store; None until the adapter is given one (``use_store``)."""
        self.upload = upload
        self.ttl_seconds = ttl_seconds
        self._ids: dict[str, tuple[str, float]] = {}

    def use_store(self, store: MediaReader) -> None:
        """The app's media store, unless the adapter was built with its own (a test's)."""
        if self.store is None:
            self.store = store

    async def hosted_id(self, stored_id: str) -> str | None:
        """The platform's id for a stored image, uploading it the first time; None if it is not stored."""
        cached = self._ids.get(stored_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        if self.store is None:
            return None
        try:
            data, mime = await self.store.read(stored_id)
        except (OSError, ValueError):  # missing, or not a media-store id
            log.warning("card image missing from the media store", extra={"media_id": stored_id})
            return None
        hosted = await self.upload(data, f"{stored_id[:16]}.{mime.rsplit('/', 1)[-1]}", mime)
        expires = time.monotonic() + self.ttl_seconds if self.ttl_seconds is not None else float("inf")
        self._ids[stored_id] = (hosted, expires)
        return hosted

    def known(self) -> dict[str, str]:
        """Stored id → platform id for every image uploaded and still valid (for synchronous renderers)."""
        now = time.monotonic()
        return {k: v for k, (v, exp) in self._ids.items() if exp > now}
