"""Long-connection mode: lark-oapi's ``ws.Client`` in its own thread and event loop.

Why a thread: ``ws.Client.start()`` drives a *module-level* loop captured at import time with
``run_until_complete`` and never returns, and its endpoint discovery uses blocking ``requests``
(PLATFORMS.md §0.5, §2.6). So the client gets a private loop on a daemon thread (assigned to
``lark_oapi.ws.client.loop`` before ``start()``), and every event it receives is handed to the service's
own loop with ``asyncio.run_coroutine_threadsafe``; the SDK's handler is synchronous, so the thread waits
(at most ``answer_timeout`` seconds, inside Feishu's 3 s budget) for the answer, which for a card action is
the toast + updated card the SDK sends back in the response frame.

Only public SDK registration is used (``register_p2_card_action_trigger`` and
``register_p2_customized_event``); the typed SDK objects are marshalled back to the plain schema 2.0 dict
so the same ``inbound.parse_payload`` serves both modes. Frames typed ``card`` (legacy card callbacks) are
dropped by the SDK itself: card clicks must be configured as the new ``card.action.trigger`` callback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as ws_client
from lark_oapi.core.json import JSON
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)
from lark_oapi.event.custom import CustomizedEvent

from adapters.feishu.inbound import CONTACT_CHANGES

log = logging.getLogger("perfloop.feishu.ws")

PayloadHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any] | None]]
EVENT_TYPES = ("im.message.receive_v1", *CONTACT_CHANGES)


class LongConnection:
    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        domain: str,
        on_payload: PayloadHandler,
        answer_timeout: float = 2.5,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.domain = domain.rstrip("/")
        self.on_payload = on_payload
        self.answer_timeout = answer_timeout
        self._main: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.handled = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, main_loop: asyncio.AbstractEventLoop) -> None:
        if self._thread is not None:
            return
        self._main = main_loop
        self._thread = threading.Thread(target=self._run, name="feishu-long-connection", daemon=True)
        self._thread.start()

    async def stop(self, wait_seconds: float = 5.0) -> None:
        """Stop the private loop (repeatedly: the SDK's reconnect path can swallow one stop) and join."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while thread.is_alive() and loop.time() < deadline:
            ws_loop = self._loop
            if ws_loop is not None and not ws_loop.is_closed():
                ws_loop.call_soon_threadsafe(ws_loop.stop)
            await asyncio.to_thread(thread.join, 0.2)
        if thread.is_alive():
            log.warning("long-connection thread did not stop in time")
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ws_client.loop = loop  # the SDK's module-level loop: start() runs everything on it
        self._loop = loop
        client = ws_client.Client(
            self.app_id,
            self.app_secret,
            event_handler=self._dispatcher(),
            domain=self.domain,
            auto_reconnect=True,
            log_level=lark.LogLevel.WARNING,
        )
        self._client = client
        try:
            if not self._stopping.is_set():
                client.start()
        except RuntimeError:
            if not self._stopping.is_set():
                log.exception("long connection loop stopped unexpectedly")
        except Exception:
            log.exception("long connection failed")
        finally:
            self._shutdown(loop, client)

    @staticmethod
    def _shutdown(loop: asyncio.AbstractEventLoop, client: Any) -> None:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            conn = getattr(client, "_conn", None)  # the SDK has no public close; its socket is ``_conn``
            if conn is not None:
                loop.run_until_complete(conn.close())
        except Exception:
            log.exception("long connection shutdown")
        finally:
            loop.close()

    # ------------------------------------------------------------------ SDK handlers (run on the WS thread)
    def _dispatcher(self) -> lark.EventDispatcherHandler:
        # Frames on the long connection are neither encrypted nor signed: the SDK ignores these two values.
        builder = lark.EventDispatcherHandler.builder("", "").register_p2_card_action_trigger(self._on_card)
        for event_type in EVENT_TYPES:
            builder = builder.register_p2_customized_event(event_type, self._on_event)
        return builder.build()

    def _on_card(self, data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        answer = self._bridge(data)
        return P2CardActionTriggerResponse(answer or {})

    def _on_event(self, data: CustomizedEvent) -> None:
        self._bridge(data)

    def _bridge(self, data: Any) -> dict[str, Any] | None:
        """Back to the plain envelope, then onto the service loop; wait for its answer within the budget."""
        payload = json.loads(JSON.marshal(data) or "{}")
        if self._main is None:
            raise RuntimeError("long connection not started")
        future = asyncio.run_coroutine_threadsafe(self.on_payload(payload), self._main)
        try:
            result: dict[str, Any] | None = future.result(timeout=self.answer_timeout)
        except concurrent.futures.TimeoutError:
            # The dispatcher keeps going on the main loop; Feishu's redelivery is then deduplicated.
            log.warning("event not answered within budget", extra={"timeout": self.answer_timeout})
            raise
        self.handled += 1
        return result
