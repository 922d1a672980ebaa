"""The ``/history`` card: a person's recent check-ins, reviews and actions, their streak, and the feedback
they may see (peer feedback only as the anonymous aggregate, and only past the threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cards.catalogue import Translator
from cards.feedback_common import cut, stars
from cards.model import Card, Header, Markdown, Note
from storage.feedback_scales import DIMENSIONS


@dataclass(frozen=True)
class ActionLine:
    """One action item as the history shows it; ``days_overdue`` > 0 only for an open item past its deadline
    (the stored status says "open" either way, the reader needs to see the difference)."""

    deliverable: str
    deadline: str
    status: str
    days_overdue: int = 0


@dataclass(frozen=True)
class GradeEvent:
    """One step of a released grade (release, HR correction, appeal, decision, withdrawal) on a local day."""

    kind: str
    date: str
    cycle: str
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class HistoryView:
    name: str
    checkins: Sequence[tuple[str, str]] = ()
    reviews: Sequence[tuple[str, str]] = ()
    actions: Sequence[ActionLine] = ()
    streak: int = 0
    peer_means: dict[str, float] | None = None
    peer_hidden: bool = False
    ratings: dict[str, float] = field(default_factory=dict)
    grade: str | None = None
    grade_events: Sequence[GradeEvent] = ()


def _status(t: Translator, kind: str, status: str) -> str:
    """A status in the words of its own record kind: an open check-in waits for the person (待填写), an
    open action item is in progress (进行中), a done one waits for sign-off (待验收)."""
    try:
        return t(f"history.{kind}_status.{status}")
    except KeyError:
        return status


def _action_status(t: Translator, line: ActionLine) -> str:
    if line.days_overdue > 0:
        return t("history.action_overdue", days=line.days_overdue)
    return _status(t, "action", line.status)


def history_card(t: Translator, view: HistoryView) -> Card:
    title = t("history.title", name=view.name)
    elements: list[Any] = []
    if view.checkins:
        lines = "\n".join(f"- {p} · {_status(t, 'checkin', s)}" for p, s in view.checkins)
        elements.append(Markdown(text=cut(t("history.checkins") + "\n" + lines, 2000)))
    if view.reviews:
        lines = "\n".join(f"- {p} · {_status(t, 'review', s)}" for p, s in view.reviews)
        elements.append(Markdown(text=cut(t("history.reviews") + "\n" + lines, 2000)))
    if view.actions:
        lines = "\n".join(
            f"- {cut(a.deliverable, 80)} · {a.deadline} · {_action_status(t, a)}" for a in view.actions
        )
        elements.append(Markdown(text=cut(t("history.actions") + "\n" + lines, 2000)))
    if view.peer_means is not None:
        lines = " · ".join(f"{t(f'peers.dim.{d}')} {stars(view.peer_means.get(d))}" for d in DIMENSIONS)
        elements.append(Markdown(text=cut(t("history.feedback") + "\n" + lines, 2000)))
    elif view.peer_hidden:
        elements.append(Markdown(text=t("history.feedback_hidden")))
    if view.ratings:
        lines = " · ".join(f"{t(f'ratings.aspect.{a}')} {stars(v)}" for a, v in view.ratings.items())
        elements.append(Markdown(text=cut(t("history.ratings") + "\n" + lines, 2000)))
    if view.grade:
        elements.append(Markdown(text=t("history.grade", grade=view.grade)))
    if view.grade_events:
        lines = "\n".join(
            t(f"grade_appeals.history.{e.kind}", date=e.date, cycle=e.cycle, before=e.before, after=e.after)
            for e in view.grade_events[-10:]
        )
        elements.append(Markdown(text=cut(t("grade_appeals.history_title") + "\n" + lines, 2000)))
    if not elements:
        elements.append(Markdown(text=t("history.empty")))
    elements.append(Note(text=t("history.streak", n=view.streak)))
    return Card(header=Header(title=cut(title, 60)), elements=elements, summary=cut(title, 100))
