"""Per-person conversations held in memory, with live subscribers for the page's event stream.

The simulator has no platform server to remember messages, so this *is* the platform: a conversation is the
list of cards the bot sent plus what the person typed or uploaded. Subscribers (one queue per open page) get
every change pushed; a page that reconnects re-reads the whole list, so a dropped event costs nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Sender = Literal["bot", "user"]
Kind = Literal["card", "text", "image"]

MAX_MESSAGES_PER_PERSON = 500
"""Older messages fall off the front: a long demo must not grow memory without bound."""

MAX_QUEUED_EVENTS = 1000
"""A page that stops reading (a frozen tab) loses live events beyond this and catches up on reconnect."""


@dataclass
class SimMessage:
    id: str
    user: str
    sender: Sender
    kind: Kind
    at: datetime
    card: dict[str, Any] | None = None
    """The rendered card (``render.render_card``), already in the shape the page draws."""
    text: str | None = None
    src: str | None = None
    """For images: the URL the page loads them from."""
    version: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender": self.sender,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "card": self.card,
            "text": self.text,
            "src": self.src,
            "version": self.version,
        }


@dataclass
class Conversations:
    _by_user: dict[str, list[SimMessage]] = field(default_factory=dict)
    _by_id: dict[str, SimMessage] = field(default_factory=dict)
    _subscribers: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _closed: bool = False

    def next_id(self) -> str:
        return f"sim-{next(self._ids)}"

    def messages(self, user: str) -> list[SimMessage]:
        return list(self._by_user.get(user, []))

    def get(self, message_id: str) -> SimMessage | None:
        return self._by_id.get(message_id)

    def users(self) -> list[str]:
        return list(self._by_user)

    def add(self, message: SimMessage) -> SimMessage:
        history = self._by_user.setdefault(message.user, [])
        history.append(message)
        self._by_id[message.id] = message
        while len(history) > MAX_MESSAGES_PER_PERSON:
            dropped = history.pop(0)
            self._by_id.pop(dropped.id, None)
        self._publish(message.user, {"type": "message", "message": message.as_json()})
        return message

    def replace_card(self, message_id: str, card: dict[str, Any]) -> SimMessage | None:
        """Update a card in place (same id, same position) and tell the open pages."""
        message = self._by_id.get(message_id)
        if message is None or message.kind != "card":
            return None
        message.card = card
        message.version += 1
        self._publish(message.user, {"type": "update", "message": message.as_json()})
        return message

    @asynccontextmanager
    async def subscribe(self, user: str) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of this person's changes; ``None`` in it means the server is shutting down."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(MAX_QUEUED_EVENTS)
        if self._closed:
            queue.put_nowait(None)
        subscribers = self._subscribers.setdefault(user, set())
        subscribers.add(queue)
        try:
            yield queue
        finally:
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(user, None)

    def subscriber_count(self, user: str | None = None) -> int:
        if user is not None:
            return len(self._subscribers.get(user, ()))
        return sum(len(s) for s in self._subscribers.values())

    def close(self) -> None:
        """End every open stream so a shutting-down server does not wait for idle pages."""
        self._closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                _offer(queue, None, force=True)

    def _publish(self, user: str, event: dict[str, Any]) -> None:
        for queue in self._subscribers.get(user, ()):
            _offer(queue, event)


def _offer(
    queue: asyncio.Queue[dict[str, Any] | None], item: dict[str, Any] | None, *, force: bool = False
) -> None:
    if queue.full():
        if not force:
            return
        queue.get_nowait()
    queue.put_nowait(item)


class MediaStore:
    """Uploaded images and uploaded bot media, by reference; bounded so a long demo stays small."""

    def __init__(self, max_items: int = 2000) -> None:
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._max_items = max_items

    def put(self, ref: str, data: bytes, mime: str) -> None:
        self._items[ref] = (data, mime)
        self._items.move_to_end(ref)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def get(self, ref: str) -> tuple[bytes, str] | None:
        return self._items.get(ref)
