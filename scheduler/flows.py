"""The plug-in table: which flow function a due item is handed to.

The names are the CONTRACT's (``open_checkin``, ``remind_action_item``…). By default they resolve lazily
to ``handlers.<module>:<function>`` (the first of ``a|b`` alternatives that exists), so the scheduler imports
no flow at start-up, and a deployment without one of them (or a test) simply gets "not installed" for that
flow: its items wait, unrecorded, until it exists.
Tests and other deployments pass their own callables.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger("perfloop.scheduler")

FlowFn = Callable[..., Awaitable[Any]]

DEFAULT_HANDLERS: dict[str, str] = {
    "open_checkin": "handlers.checkin.checkin:open_checkin",
    "remind_checkin": "handlers.checkin.checkin:remind_checkin",
    "close_missed_checkin": "handlers.checkin.checkin:close_missed_checkin",
    "open_review": "handlers.review321.review321:open_review",
    # The CONTRACT names no 3-2-1 reminder; a flow-owned one wins, else the scheduler re-sends the prompt.
    "remind_review": "handlers.review321.review321:remind_review|handlers.engagement.snooze:resend_review_prompt",
    "remind_action_item": "handlers.action_items.action_items:remind_action_item",
    "escalate_action_item": "handlers.action_items.escalation:escalate_action_item",
    "send_digest": "handlers.digest.digest:send_digest",
    "check_evidence_rules": "handlers.evidence.evidence:check_evidence_rules",
}


class FlowTable:
    def __init__(self, handlers: Mapping[str, FlowFn | str] | None = None) -> None:
        self._entries: dict[str, FlowFn | str] = dict(DEFAULT_HANDLERS if handlers is None else handlers)
        self._resolved: dict[str, FlowFn | None] = {}

    def register(self, name: str, fn: FlowFn | str) -> None:
        self._entries[name] = fn
        self._resolved.pop(name, None)

    def get(self, name: str) -> FlowFn | None:
        if name not in self._resolved:
            self._resolved[name] = self._resolve(name)
        return self._resolved[name]

    def _resolve(self, name: str) -> FlowFn | None:
        entry = self._entries.get(name)
        if entry is None or callable(entry):
            return entry
        for target in entry.split("|"):
            module_name, _, attr = target.partition(":")
            try:
                fn = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError):
                continue
            if callable(fn):
                return fn  # type: ignore[no-any-return]
        log.warning("flow not installed; its scheduled items wait", extra={"flow": name, "target": entry})
        return None
