"""Helpers for the flow tests: click a button, say something, run a scheduler call, find a payload."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from adapters.base import CallbackAnswer
from bot.app.service import Service
from bot.core.context import Context
from bot.core.events import CardAction, TextMessage
from cards.actions import Action, pack, unpack
from cards.model import Card
from tests.fakes.recording import RecordingAdapter

A = TypeVar("A", bound=Action)
T = TypeVar("T")

_ids = itertools.count(1)


async def click(
    service: Service,
    sender: str,
    payload: Action,
    form: dict[str, Any] | None = None,
    *,
    message_ref: str | None = None,
) -> CallbackAnswer:
    event = CardAction(
        platform="rec",
        workspace="rec-app",
        event_id=f"click-{next(_ids)}",
        sender_id=sender,
        value=pack(payload),
        form=form or {},
        message_ref=message_ref or f"ref-{sender}",
    )
    return await service.dispatcher.dispatch(event)


async def say(service: Service, sender: str, text: str) -> CallbackAnswer:
    event = TextMessage(
        platform="rec", workspace="rec-app", event_id=f"text-{next(_ids)}", sender_id=sender, text=text
    )
    return await service.dispatcher.dispatch(event)


async def run_as(service: Service, person_id: int, fn: Callable[[Context], Awaitable[T]]) -> T:
    box: list[T] = []

    async def job(ctx: Context) -> None:
        box.append(await fn(ctx))

    await service.dispatcher.run_for_person(person_id, job)
    return box[0]


def button(card: Card, kind: type[A]) -> A:
    for b in card.buttons():
        payload = unpack(b.value)
        if isinstance(payload, kind):
            return payload
    raise AssertionError(f"no {kind.__name__} button on card {card.header.title!r}")


def has_enabled(card: Card, kind: type[Action]) -> bool:
    return any(isinstance(unpack(b.value), kind) and not b.disabled for b in card.buttons())


def text_of(card: Card) -> str:
    return card.model_dump_json()


def last_to(recorder: RecordingAdapter, recipient: str) -> Card:
    cards = recorder.to(recipient)
    assert cards, f"nothing was sent to {recipient}"
    return cards[-1]


def last_update(recorder: RecordingAdapter, recipient: str) -> Card:
    mine = [card for _, card, rcpt in recorder.updates if rcpt == recipient]
    assert mine, f"no card update for {recipient}"
    return mine[-1]
