"""``KickoffError``: bad kickoff input, phrased through the catalogue so chat and CLI say the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cards.catalogue import Translator


@dataclass(frozen=True)
class Label:
    """A parameter that is itself a catalogue key (a status word): translated with the message, so a
    CLI in English and a chat in Chinese each get their own word."""

    key: str


class KickoffError(ValueError):
    """Raised with a catalogue key and its parameters; the chat refuses with it, the CLI prints it."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def message(self, t: Translator) -> str:
        return t(self.key, **{k: t(v.key) if isinstance(v, Label) else v for k, v in self.params.items()})
