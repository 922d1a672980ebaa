"""The "snooze 1 day" button on prompt cards (check-in, 3-2-1).

The scheduler owns what snoozing means (handlers/snooze.py); the flows only put the button on their cards,
so the payload and its builder live here where both can import them without depending on each other.
"""

from __future__ import annotations

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.model import Button


@action("schedule.snooze")
class Snooze(Action):
    flow: str
    ref_id: int


def snooze_button(t: Translator, *, flow: str, ref_id: int) -> Button:
    return Button(label=t("snooze.button"), value=pack(Snooze(flow=flow, ref_id=ref_id)))
