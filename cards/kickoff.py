"""Kickoff cards: HR's preview (head-count, confirm/cancel) and the card everyone in scope receives.

The rhythm text needs five values of the schedule configuration. Cards import nothing above storage types,
so they are asked for through ``Rhythm``, a read-only Protocol: ``bot.core.config.ScheduleConfig``
satisfies it as it is, and the handler passes ``settings.schedule`` without this module knowing the config.
"""

from __future__ import annotations

from datetime import date, time
from typing import Literal, Protocol

from cards.actions import pack
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


def preview_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    scope_names: list[str],
    headcount: int,
    managers: int,
    schedule: Rhythm,
) -> Card:
    scope = "、".join(scope_names) if scope_names else t("kickoff.whole_company")
    return Card(
        header=Header(title=t("kickoff.preview_title", code=code)[:60], colour="orange"),
        elements=[
            Fields(
                items=[
                    KeyValue(label=t("kickoff.scope"), value=scope[:200]),
                    KeyValue(label=t("kickoff.headcount"), value=str(headcount)),
                    KeyValue(label=t("kickoff.managers"), value=str(managers)),
                ]
            ),
            Markdown(text=rhythm_text(t, schedule)),
            Note(text=t("kickoff.preview_note")),
            Actions(
                buttons=[
                    Button(
                        label=t("kickoff.confirm"),
                        value=pack(KickoffConfirm(cycle_id=cycle_id)),
                        style="primary",
                    ),
                    Button(
                        label=t("common.cancel"), value=pack(KickoffCancel(cycle_id=cycle_id)), style="danger"
                    ),
                ]
            ),
        ],
        summary=t("kickoff.preview_title", code=code)[:100],
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
