"""Typed button payloads (the aiogram "callback data" habit).

A payload class per action: ``CheckinAck(checkin_id=42)`` packs to ``"checkin.ack|{"checkin_id":42}"`` on the
button, and the click unpacks back to a ``CheckinAck`` that also routes the event.
Handlers never see a raw dict.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class InvalidAction(ValueError):
    """A click whose value is not a known, well-formed action (forged, truncated, or from an old card)."""


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    action_id: ClassVar[str]


_REGISTRY: dict[str, type[Action]] = {}

A = TypeVar("A", bound=type[Action])


def action(action_id: str) -> Any:
    """Class decorator: register a payload model under its action id."""

    def wrap(cls: A) -> A:
        if action_id in _REGISTRY and _REGISTRY[action_id] is not cls:
            raise ValueError(f"action id {action_id} registered twice")
        cls.action_id = action_id
        _REGISTRY[action_id] = cls
        return cls

    return wrap


def pack(payload: Action) -> str:
    return f"{payload.action_id}|{json.dumps(payload.model_dump(mode='json'), separators=(',', ':'))}"


def unpack(value: str) -> Action:
    action_id, sep, body = value.partition("|")
    if not sep:
        raise InvalidAction("no action id")
    cls = _REGISTRY.get(action_id)
    if cls is None:
        raise InvalidAction(f"unknown action {action_id!r}")
    try:
        return cls.model_validate(json.loads(body or "{}"))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise InvalidAction(f"bad payload for {action_id}") from exc


def registered_actions() -> dict[str, type[Action]]:
    return dict(_REGISTRY)
