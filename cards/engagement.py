"""Engagement texts and cards: the streak line for the check-in confirmation, the social-proof line for
reminders, and the status card of ``/team`` settings."""

from __future__ import annotations

from cards.catalogue import Translator
from cards.feedback_common import cut
from cards.model import Card, Fields, Header, KeyValue, Markdown


def streak_line(t: Translator, streak: int) -> str | None:
    """ "🔥 4 on-time check-ins in a row" — only from two on, one is not a streak."""
    return t("engagement.streak", n=streak) if streak >= 2 else None


def social_proof_line(t: Translator, answered: int, asked: int) -> str | None:
    """ "12 of 15 teammates have answered" — only when someone else has answered, or it is not proof."""
    return (
        t("engagement.social_proof", answered=answered, asked=asked) if asked > 1 and answered > 0 else None
    )


def team_card(
    t: Translator,
    *,
    cadence_weeks: int,
    weekday: int,
    window_hours: int,
    mentions: bool,
    members: int,
) -> Card:
    title = t("engagement.team_title")
    return Card(
        header=Header(title=title),
        elements=[
            Fields(
                items=[
                    KeyValue(
                        label=t("engagement.team_cadence"), value=t("engagement.every_weeks", n=cadence_weeks)
                    ),
                    KeyValue(
                        label=t("engagement.team_weekday"), value=t.words("engagement.weekdays")[weekday]
                    ),
                    KeyValue(label=t("engagement.team_window"), value=t("engagement.hours", n=window_hours)),
                    KeyValue(
                        label=t("engagement.team_mentions"),
                        value=t("engagement.on") if mentions else t("engagement.off"),
                    ),
                    KeyValue(label=t("engagement.team_members"), value=str(members)),
                ]
            ),
            Markdown(text=cut(t("engagement.team_usage"), 2000)),
        ],
        summary=title,
    )
