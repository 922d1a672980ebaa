"""The one way an event enters the app: dispatch it, wake the outbox, count it.

HTTP callbacks (``callback``), the Feishu long connection, the DingTalk stream and the simulator all come
through here; the adapters hold this object only as their ``EventSink`` (adapters/base.py), never the
service. One place means one rule: every event is counted under ``perfloop_callbacks`` by platform and
result, and whatever it committed to the outbox is sent now rather than at the next poll.

When the dispatcher raises ``RetryLater`` (a transient database fault outlasted its one retry; nothing was
recorded), the event must come again: an HTTP callback is answered 503 with ``Retry-After`` (WeCom, Feishu
events and DingTalk events redeliver a non-2xx answer; a Feishu card click shows the clicker an error
instead of a false success), and on the Feishu long connection and the DingTalk stream the exception goes
on into the SDK, which answers the frame ``{"code": 500}`` (lark-oapi) or sends no ack (dingtalk-stream).
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.base import Adapter, CallbackAnswer, CallbackRejected
from bot.app.dispatcher import Dispatcher, FailedAnswer, RetryLater
from bot.app.metrics import Metrics
from bot.app.outbox import OutboxDelivery
from bot.core.events import Event, UrlVerification

log = logging.getLogger("perfloop.http")

RETRY_AFTER_SECONDS = 5


class Ingress:
    def __init__(self, *, dispatcher: Dispatcher, outbox: OutboxDelivery, metrics: Metrics) -> None:
        self.dispatcher = dispatcher
        self.outbox = outbox
        self.metrics = metrics

    async def __call__(self, event: Event) -> CallbackAnswer:
        """Dispatch one parsed event (the ``EventSink`` every adapter is given); ``RetryLater`` propagates,
        so that whoever delivered the event does not acknowledge it."""
        try:
            answer = await self.dispatcher.dispatch(event)
        except RetryLater:
            self._count(event.platform, "retry")
            raise
        if isinstance(answer, FailedAnswer):
            self._count(event.platform, "failed")
        else:
            self._count(event.platform, "refused" if answer.toast_kind == "error" else "processed")
        self.outbox.notify()
        return answer

    def wake(self) -> None:
        self.outbox.notify()

    async def callback(self, adapter: Adapter, request: web.Request) -> web.StreamResponse:
        """One HTTP callback: the adapter verifies and parses it, the event goes through ``__call__``, and
        the adapter turns the answer into the HTTP answer its platform expects."""
        platform = adapter.platform
        with self.metrics.callback_seconds.labels(platform).time():
            try:
                return await self._callback(adapter, request)
            except RetryLater:
                # Counted as "retry" where it was dispatched (a callback may carry several events).
                log.warning(
                    "callback not processed: platform asked to deliver again", extra={"platform": platform}
                )
                return web.json_response(
                    {"error": "temporarily unavailable; deliver again"},
                    status=503,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )

    async def _callback(self, adapter: Adapter, request: web.Request) -> web.StreamResponse:
        platform = adapter.platform
        try:
            parsed = await adapter.parse_callback(request)
        except CallbackRejected as exc:
            return self._rejected(platform, exc.status, exc.reason)
        except web.HTTPRequestEntityTooLarge:
            return self._rejected(platform, 413, "body too large")
        if isinstance(parsed, UrlVerification):
            self._count(platform, "verification")
            return adapter.answer_verification(parsed)
        if parsed is None:
            self._count(platform, "ignored")
            return adapter.answer_callback(None, CallbackAnswer())
        answer = await self(parsed)
        return adapter.answer_callback(parsed, answer)

    def _rejected(self, platform: str, status: int, reason: str) -> web.Response:
        self._count(platform, "rejected")
        log.warning("callback rejected", extra={"platform": platform, "status": status, "reason": reason})
        return web.json_response({"error": reason}, status=status)

    def _count(self, platform: str, result: str) -> None:
        self.metrics.callbacks.labels(platform, result).inc()
