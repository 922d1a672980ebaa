"""Closing a cycle: HR's preview of what is still open, the confirmation, and the one card everyone in
scope receives when the cycle is closed.

The numbers arrive as ``CloseCounts`` (the handler counts them; cards never query), and the same counts
feed the CLI's printed preview through ``preview_lines``, so chat and CLI say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.kickoff import period_text
from cards.model import Actions, Button, Card, Fields, Header, KeyValue, Markdown, Note

Mode = Literal["carry_over", "cancel"]
LatePolicy = Literal["refuse", "accept"]


@action("cycle_close.choose")
class CycleCloseChoose(Action):
    """On the preview: close carrying open items over, or cancelling them; asks for a confirmation."""

    cycle_id: int
    mode: Mode


@action("cycle_close.confirm")
class CycleCloseConfirm(Action):
    cycle_id: int
    mode: Mode


@action("cycle_close.back")
class CycleCloseBack(Action):
    """From the confirmation back to a fresh preview."""

    cycle_id: int


@action("cycle_close.resume")
class CycleCloseResume(Action):
    """ "Keep running": a closing cycle goes back to active."""

    cycle_id: int


@dataclass(frozen=True)
class CloseCounts:
    """What a cycle still has open, counted when the preview (or the close) is made."""

    cycle_id: int
    code: str
    status: str
    starts_on: date | None
    ends_on: date | None
    participants: int
    ungraded: int
    """Active participants without any grade."""
    unreleased: int
    """Grades proposed (or held by calibration) but not released."""
    open_checkins: int
    open_action_items: int
    unrated_deliverables: int
    pending_appeals: int


def preview_lines(t: Translator, counts: CloseCounts) -> list[tuple[str, str]]:
    """(label, value) of the preview, in order: the card's fields and the CLI's lines."""
    return [
        (t("kickoff.period"), period_text(t, counts.starts_on, counts.ends_on)),
        (t("cycle_close.state"), t(f"kickoff.status.{counts.status}")),
        (t("kickoff.participants"), str(counts.participants)),
        (t("cycle_close.ungraded"), str(counts.ungraded)),
        (t("cycle_close.unreleased"), str(counts.unreleased)),
        (t("cycle_close.open_checkins"), str(counts.open_checkins)),
        (t("cycle_close.open_action_items"), str(counts.open_action_items)),
        (t("cycle_close.unrated_deliverables"), str(counts.unrated_deliverables)),
        (t("cycle_close.pending_appeals"), str(counts.pending_appeals)),
    ]


def _fields(t: Translator, counts: CloseCounts) -> Fields:
    return Fields(items=[KeyValue(label=label, value=value) for label, value in preview_lines(t, counts)])


def _open_items(counts: CloseCounts) -> int:
    return counts.open_checkins + counts.open_action_items + counts.unrated_deliverables


def preview_card(t: Translator, *, counts: CloseCounts, late: LatePolicy) -> Card:
    """HR's look at what is still open; the cycle is *closing* while it is shown."""
    cid = counts.cycle_id
    elements: list[Fields | Markdown | Note | Actions] = [
        _fields(t, counts),
        Markdown(text=t("cycle_close.preview_body", code=counts.code)),
    ]
    if counts.ungraded or counts.unreleased or counts.pending_appeals:
        elements.append(
            Markdown(
                text=t(
                    "cycle_close.grades_warning",
                    ungraded=counts.ungraded,
                    unreleased=counts.unreleased,
                    appeals=counts.pending_appeals,
                )
            )
        )
    elements += [
        Markdown(text=t("cycle_close.carry_hint") + "\n" + t("cycle_close.cancel_hint")),
        Note(text=t(f"cycle_close.late_{late}") + " " + t("cycle_close.after_note", n=counts.participants)),
        Actions(
            buttons=[
                Button(
                    label=t("cycle_close.choose_carry"),
                    value=pack(CycleCloseChoose(cycle_id=cid, mode="carry_over")),
                    style="primary",
                ),
                Button(
                    label=t("cycle_close.choose_cancel"),
                    value=pack(CycleCloseChoose(cycle_id=cid, mode="cancel")),
                    style="danger",
                ),
                Button(label=t("cycle_close.resume"), value=pack(CycleCloseResume(cycle_id=cid))),
            ]
        ),
    ]
    title = t("cycle_close.preview_title", code=counts.code)
    return Card(
        header=Header(title=title[:60], colour="orange" if _open_items(counts) else "blue"),
        elements=list(elements),
        summary=title[:100],
    )


def mode_text(t: Translator, mode: Mode, counts: CloseCounts) -> str:
    return t(
        f"cycle_close.confirm_{mode}",
        checkins=counts.open_checkins,
        actions=counts.open_action_items,
        ratings=counts.unrated_deliverables,
    )


def confirm_card(t: Translator, *, counts: CloseCounts, mode: Mode) -> Card:
    """The last look: what happens to the open items, who is told, that it cannot be undone."""
    cid = counts.cycle_id
    title = t("cycle_close.confirm_title", code=counts.code)
    return Card(
        header=Header(title=title[:60], colour="red" if mode == "cancel" else "orange"),
        elements=[
            _fields(t, counts),
            Markdown(text=mode_text(t, mode, counts)),
            Markdown(text=t("cycle_close.confirm_body", n=counts.participants)),
            Actions(
                buttons=[
                    Button(
                        label=t("cycle_close.confirm"),
                        value=pack(CycleCloseConfirm(cycle_id=cid, mode=mode)),
                        style="danger" if mode == "cancel" else "primary",
                    ),
                    Button(label=t("cycle_close.back"), value=pack(CycleCloseBack(cycle_id=cid))),
                ]
            ),
        ],
        summary=title[:100],
    )


def closing_card(
    t: Translator,
    *,
    code: str,
    starts_on: date | None,
    ends_on: date | None,
    closed_on: str,
    mode: Mode,
    late: LatePolicy,
) -> Card:
    """The one card each person in scope gets when the cycle closes: what became of their open items, what
    a late answer meets, where the results will be."""
    title = t("cycle_close.card_title", code=code)
    return Card(
        header=Header(title=title[:60], colour="green"),
        elements=[
            Fields(
                items=[
                    KeyValue(label=t("kickoff.period"), value=period_text(t, starts_on, ends_on)),
                    KeyValue(label=t("cycle_close.closed_on"), value=closed_on),
                ]
            ),
            Markdown(text=t("cycle_close.card_body")),
            Markdown(text=t(f"cycle_close.card_{mode}")),
            Markdown(text=t(f"cycle_close.card_late_{late}")),
            Note(text=t("cycle_close.card_results")),
        ],
        summary=title[:100],
    )
