"""Kickoff cards: HR's preview (head-count, confirm/cancel) and the card everyone in scope receives.

The rhythm text needs five values of the schedule configuration. Cards import nothing above storage types,
so they are asked for through ``Rhythm``, a read-only Protocol: ``bot.core.config.ScheduleConfig``
satisfies it as it is, and the handler passes ``settings.schedule`` without this module knowing the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Literal, Protocol

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.flow_actions import GoalsEdit, KickoffAck, KickoffCancel, KickoffConfirm, KickoffTeamGoals
from cards.model import Actions, Button, Card, Fields, Header, KeyValue, Markdown, Note


class Rhythm(Protocol):
    """What the kickoff cards say about when check-ins and reviews happen (the configured schedule)."""

    @property
    def checkin_every_weeks(self) -> int: ...

    @property
    def checkin_weekday(self) -> int: ...

    @property
    def checkin_time(self) -> time: ...

    @property
    def review_day(self) -> Literal["last_workday", "first_workday"] | int: ...

    @property
    def review_time(self) -> time: ...


def rhythm_text(t: Translator, schedule: Rhythm) -> str:
    """What will be asked and when, from the configured schedule (not a hard-coded promise)."""
    weekdays = t.words("kickoff.weekdays")
    review_day = schedule.review_day
    if review_day == "last_workday":
        review = t("kickoff.review_last_workday")
    elif review_day == "first_workday":
        review = t("kickoff.review_first_workday")
    else:
        review = t("kickoff.review_day_n", day=review_day)
    return t(
        "kickoff.rhythm",
        weeks=schedule.checkin_every_weeks,
        weekday=weekdays[schedule.checkin_weekday % 7],
        time=schedule.checkin_time.strftime("%H:%M"),
        review=review,
        review_time=schedule.review_time.strftime("%H:%M"),
    )


def period_text(t: Translator, starts_on: date | None, ends_on: date | None) -> str:
    if starts_on and ends_on:
        return t("kickoff.period_range", start=starts_on.isoformat(), end=ends_on.isoformat())
    if starts_on:
        return t("kickoff.period_from", start=starts_on.isoformat())
    return "—"


@action("kickoff.confirm_overlap")
class KickoffConfirmOverlap(Action):
    """ "Start anyway" on a preview that shows an overlap with an active cycle: the explicit override."""

    cycle_id: int


@action("kickoff.stop")
class KickoffStop(Action):
    """Cancel an *active* cycle, from the confirmation ``/cancelcycle`` shows (a draft needs none)."""

    cycle_id: int


@dataclass(frozen=True)
class Overlap:
    """An active cycle that already holds some of the people a new cycle would reach, in the same days."""

    code: str
    starts_on: date | None
    ends_on: date | None
    shared: int


@dataclass(frozen=True)
class CycleRow:
    """One line of the ``/cancelcycle`` list."""

    code: str
    status: str
    starts_on: date | None
    ends_on: date | None
    participants: int


def overlap_text(t: Translator, overlaps: Sequence[Overlap]) -> str:
    """``2026-Q4（2026-10-01 至 2026-12-31，3 人）、…``: the same words on the preview and in the CLI."""
    return t("kickoff.overlap_sep").join(
        t("kickoff.overlap_item", code=o.code, period=period_text(t, o.starts_on, o.ends_on), n=o.shared)
        for o in overlaps[:5]
    )


def preview_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    scope_names: list[str],
    headcount: int,
    managers: int,
    schedule: Rhythm,
    starts_on: date | None,
    ends_on: date | None,
    past: bool = False,
    overlaps: Sequence[Overlap] = (),
) -> Card:
    """HR's last look before everyone in scope is notified: who, when, and anything that needs a second
    thought. An overlap with an active cycle replaces "start" by an explicit, red "start anyway"."""
    scope = "、".join(scope_names) if scope_names else t("kickoff.whole_company")
    elements: list[Fields | Markdown | Note | Actions] = [
        Fields(
            items=[
                KeyValue(label=t("kickoff.period"), value=period_text(t, starts_on, ends_on)),
                KeyValue(label=t("kickoff.scope"), value=scope[:200]),
                KeyValue(label=t("kickoff.headcount"), value=str(headcount)),
                KeyValue(label=t("kickoff.managers"), value=str(managers)),
            ]
        ),
        Markdown(text=rhythm_text(t, schedule)),
    ]
    if past and ends_on is not None:
        elements.append(Markdown(text=t("kickoff.past_warning", end=ends_on.isoformat())))
    if overlaps:
        others = overlap_text(t, overlaps)
        elements.append(
            Markdown(text=t("kickoff.overlap_warning", others=others, code=overlaps[0].code)[:1000])
        )
        start = Button(
            label=t("kickoff.confirm_overlap"),
            value=pack(KickoffConfirmOverlap(cycle_id=cycle_id)),
            style="danger",
        )
    else:
        start = Button(
            label=t("kickoff.confirm"), value=pack(KickoffConfirm(cycle_id=cycle_id)), style="primary"
        )
    elements.append(Note(text=t("kickoff.preview_note", n=headcount)))
    elements.append(
        Actions(
            buttons=[
                start,
                Button(label=t("common.cancel"), value=pack(KickoffCancel(cycle_id=cycle_id))),
            ]
        )
    )
    warn = past or bool(overlaps)
    return Card(
        header=Header(title=t("kickoff.preview_title", code=code)[:60], colour="red" if warn else "orange"),
        elements=list(elements),
        summary=t("kickoff.preview_title", code=code)[:100],
    )


def cancellable_card(t: Translator, *, rows: Sequence[CycleRow]) -> Card:
    """``/cancelcycle`` without a code: how to use it and which cycles it can stop."""
    if rows:
        lines = [
            t(
                "kickoff.cancel_line",
                code=r.code,
                status=t(f"kickoff.status.{r.status}"),
                period=period_text(t, r.starts_on, r.ends_on),
                n=r.participants,
            )
            for r in rows[:20]
        ]
        body = t("kickoff.cancel_usage", example=rows[0].code) + "\n\n" + "\n".join(lines)
    else:
        body = t("kickoff.no_cancellable")
    return Card(
        header=Header(title=t("kickoff.cancel_title"), colour="grey"),
        elements=[Markdown(text=body[:2000])],
        summary=t("kickoff.cancel_title"),
    )


def stop_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    starts_on: date | None,
    ends_on: date | None,
    participants: int,
) -> Card:
    """The confirmation before an active cycle is cancelled: how many people it reached, what stops."""
    return Card(
        header=Header(title=t("kickoff.stop_title", code=code)[:60], colour="red"),
        elements=[
            Fields(
                items=[
                    KeyValue(label=t("kickoff.period"), value=period_text(t, starts_on, ends_on)),
                    KeyValue(label=t("kickoff.participants"), value=str(participants)),
                ]
            ),
            Markdown(text=t("kickoff.stop_body", n=participants)),
            Actions(
                buttons=[
                    Button(
                        label=t("kickoff.stop_confirm"),
                        value=pack(KickoffStop(cycle_id=cycle_id)),
                        style="danger",
                    )
                ]
            ),
        ],
        summary=t("kickoff.stop_title", code=code)[:100],
    )


def kickoff_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    starts_on: date | None,
    ends_on: date | None,
    schedule: Rhythm,
    max_goals: int,
    manager: bool,
    acknowledged_note: str | None = None,
) -> Card:
    """The broadcast card. Once acknowledged only "got it" is disabled: goal buttons keep working."""
    buttons = [
        Button(
            label=t("kickoff.ack"),
            value=pack(KickoffAck(cycle_id=cycle_id)),
            style="primary",
            disabled=acknowledged_note is not None,
        ),
        Button(label=t("kickoff.my_goals"), value=pack(GoalsEdit(cycle_id=cycle_id))),
    ]
    if manager:
        buttons.append(Button(label=t("kickoff.team_goals"), value=pack(KickoffTeamGoals(cycle_id=cycle_id))))
    elements: list[Fields | Markdown | Note | Actions] = [
        Fields(items=[KeyValue(label=t("kickoff.period"), value=period_text(t, starts_on, ends_on))]),
        Markdown(text=t("kickoff.body", max_goals=max_goals)),
        Markdown(text=rhythm_text(t, schedule)),
    ]
    if manager:
        elements.append(Markdown(text=t("kickoff.manager_body")))
    elements.append(Actions(buttons=buttons))
    if acknowledged_note:
        elements.append(Note(text=acknowledged_note[:300]))
    return Card(
        header=Header(title=t("kickoff.card_title", code=code)[:60], colour="blue"),
        elements=list(elements),
        summary=t("kickoff.card_title", code=code)[:100],
    )
