"""Carry-over (issue 17 item 9): the offer of what the last cycle left open, and what one click carried.

The offer lists what would be carried (the key results below 100 % and the open action items) and has one
button; the answer names the objectives it filled and opens the goals form, where the person gives the
carried objectives their weights and submits: nothing is submitted for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import GoalsEdit
from cards.goal_actions import GoalCarryOver
from cards.model import Actions, Button, Card, Element, Header, Markdown, Note
from cards.text import shorten

SHOWN = 8
"""Lines listed on the offer; the rest is counted."""


def carry_offer_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    previous: str,
    key_results: Sequence[str],
    items: Sequence[str],
) -> Card:
    """``key_results``: the unfinished key results as "objective · key result (progress)"; ``items``: the
    open action items' deliverables."""
    lines = [t("carry.kr_line", what=shorten(k, 80)) for k in key_results]
    lines += [t("carry.item_line", what=shorten(i, 80)) for i in items]
    shown = lines[:SHOWN]
    if len(lines) > SHOWN:
        shown.append(t("carry.more", count=len(lines) - SHOWN))
    body = t("carry.offer_body", previous=previous, code=code, krs=len(key_results), items=len(items))
    title = t("carry.offer_title", code=code)
    return Card(
        header=Header(title=shorten(title, 60), colour="orange"),
        elements=[
            Markdown(text=shorten(body, 2000)),
            Markdown(text=shorten("\n".join(shown), 2000)),
            Note(text=t("carry.offer_note")),
            Actions(
                buttons=[
                    Button(
                        label=t("carry.button"), value=pack(GoalCarryOver(cycle_id=cycle_id)), style="primary"
                    )
                ]
            ),
        ],
        summary=shorten(title, 100),
    )


def carried_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    objectives: Sequence[str],
    key_results: int,
    items: int,
    left: int,
) -> Card:
    """What one click carried into which objectives, what did not fit (``left``), and the way to the form."""
    title = t("carry.done_title", count=key_results + items, code=code)
    elements: list[Element] = [
        Markdown(text=t("carry.done_body", krs=key_results, items=items)),
        Markdown(
            text=shorten("\n".join(t("carry.objective_line", what=shorten(o, 80)) for o in objectives), 2000)
        ),
    ]
    if left:
        elements.append(Markdown(text=t("carry.left", count=left)))
    elements += [
        Note(text=t("carry.weights_note")),
        Actions(
            buttons=[
                Button(label=t("carry.open_form"), value=pack(GoalsEdit(cycle_id=cycle_id)), style="primary")
            ]
        ),
    ]
    return Card(
        header=Header(title=shorten(title, 60), colour="green"),
        elements=elements,
        summary=shorten(title, 100),
    )
