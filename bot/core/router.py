"""Handler registration by event kind, command, conversation state and typed action payload.

Each ``handlers/<flow>.py`` owns a module-level ``router = Router()``; the dispatcher merges them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.core.context import Context, Reply
from cards.actions import Action
from cards.model import Form
from storage.models import ConversationState

ActionHandler = Callable[[Context, Any], Awaitable[Reply | None]]
CommandHandler = Callable[[Context, str], Awaitable[Reply | None]]
StateHandler = Callable[[Context, ConversationState, str], Awaitable[Reply | None]]
TextHandler = Callable[[Context, str], Awaitable[Reply | None]]
ImageHandler = Callable[[Context, str], Awaitable[Reply | None]]
FormBuilder = Callable[[Context, Any], Awaitable[Form]]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Router:
    actions: dict[str, ActionHandler] = field(default_factory=dict)
    commands: dict[str, CommandHandler] = field(default_factory=dict)
    states: dict[str, StateHandler] = field(default_factory=dict)
    texts: list[TextHandler] = field(default_factory=list)
    images: list[ImageHandler] = field(default_factory=list)
    forms: dict[str, FormBuilder] = field(default_factory=dict)

    def action(self, payload: type[Action], *, form: FormBuilder | None = None) -> Callable[[F], F]:
        """Route clicks whose packed value unpacks to ``payload``; the handler gets the typed object.

        ``form`` rebuilds, server-side, the Form this action submits. On platforms whose cards have no text
        inputs (WeCom, DingTalk) the dispatcher uses it to ask the text questions one by one in chat and then
        calls the handler with the collected answers in ``ctx.event.form``, exactly as if the card had inputs.
        """

        def wrap(fn: F) -> F:
            self._put(self.actions, payload.action_id, fn)
            if form is not None:
                self._put(self.forms, payload.action_id, form)
            return fn

        return wrap

    def command(self, *names: str) -> Callable[[F], F]:
        """``/kickoff 2026-Q1 研发部`` → handler(ctx, "2026-Q1 研发部")."""

        def wrap(fn: F) -> F:
            for name in names:
                self._put(self.commands, name.lstrip("/").lower(), fn)
            return fn

        return wrap

    def state(self, kind: str) -> Callable[[F], F]:
        """Plain text from a person whose conversation state is ``kind`` (e.g. awaiting check-in answers)."""

        def wrap(fn: F) -> F:
            self._put(self.states, kind, fn)
            return fn

        return wrap

    def text(self) -> Callable[[F], F]:
        """Fallback text handlers, tried in order; one returning a Reply ends the search."""

        def wrap(fn: F) -> F:
            self.texts.append(fn)
            return fn

        return wrap

    def image(self) -> Callable[[F], F]:
        def wrap(fn: F) -> F:
            self.images.append(fn)
            return fn

        return wrap

    def include(self, other: Router) -> None:
        for k, v in other.actions.items():
            self._put(self.actions, k, v)
        for k, c in other.commands.items():
            self._put(self.commands, k, c)
        for k, s in other.states.items():
            self._put(self.states, k, s)
        for k, f in other.forms.items():
            self._put(self.forms, k, f)
        self.texts.extend(other.texts)
        self.images.extend(other.images)

    @staticmethod
    def _put(table: dict[str, Any], key: str, fn: Any) -> None:
        if key in table and table[key] is not fn:
            raise ValueError(f"two handlers registered for {key!r}")
        table[key] = fn
