"""Stream mode: DingTalk pushes robot messages, card clicks and events over one WebSocket; no public URL.

Built on the official dingtalk-stream client for its frame model, routing and acks, with two changes:
- the connection is opened with aiohttp against ``[dingtalk] api_base`` instead of the SDK's blocking
  ``requests.post`` to the ``DINGTALK_OPENAPI_ENDPOINT`` read at import time (no blocking call on the event
  loop, and the fake gateway in tests is just another base URL);
- the run loop stops when asked (the SDK's ``start()`` swallows ``CancelledError`` and reconnects forever).
dingtalk-stream 0.24.3 has no card-callback handler class, so ``CardCallbackHandler`` subclasses its
``CallbackHandler`` for topic ``/v1.0/card/instances/callback``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import websockets
from dingtalk_stream import (
    AckMessage,
    CallbackHandler,
    CallbackMessage,
    ChatbotMessage,
    Credential,
    DingTalkStreamClient,
    EventHandler,
    EventMessage,
)

from adapters.http import UnsafeJson, loads

log = logging.getLogger("perfloop.dingtalk.stream")

CARD_TOPIC = CallbackHandler.TOPIC_CARD_CALLBACK
ROBOT_TOPIC = ChatbotMessage.TOPIC

FrameSink = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]
"""(frame data, delivery id) → the callback response (``{}`` when there is nothing to say)."""
EventSink = Callable[[str, dict[str, Any], str], Awaitable[None]]
"""(event type, event data, event id)."""


class RobotMessageHandler(CallbackHandler):  # type: ignore[misc]
    def __init__(self, sink: FrameSink) -> None:
        super().__init__()
        self.sink = sink

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        await self.sink(message.data, str(message.headers.message_id or ""))
        return AckMessage.STATUS_OK, "OK"


class CardCallbackHandler(CallbackHandler):  # type: ignore[misc]
    """Card clicks. The ack's ``data.response`` may carry a card update; we update through the outbox
    (by out-track id) instead, so the answer is an empty object."""

    def __init__(self, sink: FrameSink) -> None:
        super().__init__()
        self.sink = sink

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        response = await self.sink(message.data, str(message.headers.message_id or ""))
        return AckMessage.STATUS_OK, response


class OrgEventHandler(EventHandler):  # type: ignore[misc]
    def __init__(self, sink: EventSink) -> None:
        super().__init__()
        self.sink = sink

    async def process(self, event: EventMessage) -> tuple[int, str]:
        headers = event.headers
        await self.sink(
            str(headers.event_type or ""),
            event.data if isinstance(event.data, dict) else {},
            str(headers.event_id or headers.message_id or ""),
        )
        return AckMessage.STATUS_OK, "OK"


class StreamClient(DingTalkStreamClient):  # type: ignore[misc]
    def __init__(
        self,
        app_key: str,
        app_secret: str,
        api_base: str,
        *,
        robot: FrameSink,
        card: FrameSink,
        event: EventSink,
    ) -> None:
        super().__init__(Credential(app_key, app_secret), logger=logging.getLogger("dingtalk_stream.client"))
        self.api_base = api_base.rstrip("/")
        self.register_callback_handler(ROBOT_TOPIC, RobotMessageHandler(robot))
        self.register_callback_handler(CARD_TOPIC, CardCallbackHandler(card))
        self.register_all_event_handler(OrgEventHandler(event))
        self.connected = asyncio.Event()
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def open_connection_async(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        topics = [{"type": "EVENT", "topic": "*"}] if self._is_event_required else []
        topics += [{"type": "CALLBACK", "topic": t} for t in self.callback_handler_map]
        body = {
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": topics,
            "ua": "perfloop/dingtalk-stream",
            "localIp": "",
        }
        async with session.post(self.api_base + "/v1.0/gateway/connections/open", json=body) as resp:
            resp.raise_for_status()
            data = await resp.json(content_type=None)
        if not isinstance(data, dict) or "endpoint" not in data or "ticket" not in data:
            raise RuntimeError("gateway answer without endpoint/ticket")
        return data

    async def run(self, stop: asyncio.Event) -> None:
        self.pre_start()
        backoff = 1.0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while not stop.is_set():
                try:
                    connection = await self.open_connection_async(session)
                    uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
                    async with websockets.connect(uri) as websocket:
                        self.websocket = websocket
                        self.connections += 1
                        self.connected.set()
                        backoff = 1.0
                        log.info("dingtalk stream connected")
                        async for raw in websocket:
                            try:  # the shared depth-capped loader (issue 16 #4)
                                frame = loads(raw)
                            except UnsafeJson as exc:
                                log.warning(
                                    "dingtalk stream: unreadable frame skipped", extra={"reason": str(exc)}
                                )
                                continue
                            if isinstance(frame, dict):
                                self._spawn(frame)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "dingtalk stream connection failed; retrying",
                        extra={"error": f"{type(exc).__name__}: {exc}", "retry_in": backoff},
                    )
                finally:
                    self.connected.clear()
                if stop.is_set():
                    break
                try:
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 30.0)

    def _spawn(self, frame: dict[str, Any]) -> None:
        """Each frame is handled in its own task (as the SDK does), so a slow handler never blocks pings."""
        task = asyncio.create_task(self.background_task(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
