"""Errors that cross floors: a platform call that failed, seen by the outbox (retry or dead-letter) and by
flows that download media (tell the person). Adapters raise them; nobody above needs to import an adapter
to catch them."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send/update failed. ``retryable`` decides between backoff and the dead-letter state."""

    retryable: bool = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(DeliveryError):
    """The platform asked us to slow down (WeCom 45009, Feishu 99991400 / HTTP 429, DingTalk 403 QPS…)."""


class TransientError(DeliveryError):
    """5xx, timeouts, connection resets: try again later."""


class PermanentError(DeliveryError):
    """The request itself is wrong (bad recipient, bad card): retrying cannot help."""

    retryable = False
