"""The monthly growth snapshot card and the words of its picture.

The flow passes the month's figures in as a ``SnapshotView`` (plain values; cards never read storage); this
module turns them into the reader's language twice: as the ``SnapshotPicture`` that ``cards.snapshot_chart``
draws (the card's image and the PDF), and as the card around that image, which repeats the key figures in
text so they survive a platform that shows no image and can be read by a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from cards.catalogue import Translator
from cards.model import Card, Fields, Header, Image, KeyValue, Markdown, Note
from cards.snapshot_chart import GoalBar, RadarPicture, SnapshotPicture, Tile
from cards.text import shorten
from storage.feedback_scales import DIMENSIONS

MAX_GOALS = 5


@dataclass(frozen=True)
class GoalFigure:
    title: str
    progress: int | None


@dataclass(frozen=True)
class SnapshotView:
    """One person's month, as the flow computed it (``storage.queries.snapshot.MonthFigures``)."""

    month: str
    """``2026-09``."""
    name: str
    first_day: date
    last_day: date
    checkins_due: int = 0
    checkins_on_time: int = 0
    evidence: int = 0
    ratings: dict[str, int] = field(default_factory=dict)
    actions_done: int = 0
    actions_overdue: int = 0
    kudos: int = 0
    kudos_points: int = 0
    streak: int = 0
    goals: tuple[GoalFigure, ...] = ()
    goal_progress: int | None = None
    peers: dict[str, float] | None = None
    """Mean peer score per dimension, when a round closed in the month."""
    self_scores: dict[str, float] | None = None
    peer_answers: int = 0


def month_label(t: Translator, month: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return t("snapshot.month", year=year, name=t(f"snapshot.month_names.m{mon}"))


def _tiles(t: Translator, v: SnapshotView) -> tuple[Tile, ...]:
    if v.checkins_due:
        rate = round(100 * v.checkins_on_time / v.checkins_due)
        checkins = Tile(
            t("snapshot.tile_checkins"),
            t("snapshot.tile_checkins_value", on_time=v.checkins_on_time, due=v.checkins_due),
            t("snapshot.tile_checkins_rate", rate=rate),
            alert=v.checkins_on_time < v.checkins_due,
        )
    else:
        checkins = Tile(t("snapshot.tile_checkins"), "—", t("snapshot.tile_checkins_none"))
    ratings = {k: v.ratings.get(k, 0) for k in ("meets", "improve", "support")}
    overdue = (
        t("snapshot.tile_actions_overdue", n=v.actions_overdue)
        if v.actions_overdue
        else t("snapshot.tile_actions_none_overdue")
    )
    return (
        checkins,
        Tile(
            t("snapshot.tile_evidence"),
            t("snapshot.tile_evidence_value", n=v.evidence),
            t("snapshot.tile_evidence_detail", **ratings),
        ),
        Tile(
            t("snapshot.tile_actions"),
            t("snapshot.tile_actions_value", n=v.actions_done),
            overdue,
            alert=v.actions_overdue > 0,
        ),
        Tile(
            t("snapshot.tile_kudos"),
            t("snapshot.tile_kudos_value", n=v.kudos),
            t("snapshot.tile_kudos_detail", points=v.kudos_points),
        ),
        Tile(t("snapshot.tile_streak"), t("snapshot.tile_streak_value", n=v.streak)),
    )


def picture(t: Translator, v: SnapshotView) -> SnapshotPicture:
    """What the image (and the PDF) shows, in ``t``'s language."""
    month = month_label(t, v.month)
    radar = None
    if v.peers:
        dims = [d for d in DIMENSIONS if d in v.peers]
        if len(dims) >= 3:
            own = v.self_scores or {}
            radar = RadarPicture(
                heading=t("snapshot.radar", n=v.peer_answers),
                labels=tuple(t(f"peers.dim.{d}") for d in dims),
                peers=tuple(v.peers[d] for d in dims),
                self_scores=tuple(own.get(d, 0.0) for d in dims) if own else None,
                legend=(t("snapshot.radar_peers"), t("snapshot.radar_self")),
            )
    goals = tuple(GoalBar(g.title, g.progress) for g in v.goals[:MAX_GOALS])
    if not goals and v.goal_progress is not None:
        goals = (GoalBar(t("snapshot.overall_goal"), v.goal_progress),)
    overall = (
        t("snapshot.goals_overall", p=v.goal_progress)
        if v.goal_progress is not None
        else t("snapshot.goals_overall_none")
    )
    return SnapshotPicture(
        title=t("snapshot.title", month=month),
        subtitle=t(
            "snapshot.subtitle", first=v.first_day.isoformat(), last=v.last_day.isoformat(), name=v.name
        ),
        tiles=_tiles(t, v),
        goals_heading=t("snapshot.goals"),
        goals=goals,
        no_goals=t("snapshot.no_goals"),
        overall=overall,
        radar=radar,
        footer=t("snapshot.footer", last=v.last_day.isoformat()),
    )


def snapshot_card(
    t: Translator,
    v: SnapshotView,
    *,
    media_id: str | None,
    pdf_url: str | None = None,
    pdf_hours: int = 0,
    own: bool = True,
) -> Card:
    """The card: the picture, then the same figures as text, then how to get the PDF."""
    month = month_label(t, v.month)
    title = t("snapshot.title", month=month) if own else t("snapshot.title_of", name=v.name, month=month)
    pic = picture(t, v)
    elements: list[Image | Fields | Markdown | Note] = []
    if media_id is not None:
        elements.append(Image(media_id=media_id, alt=shorten(t("snapshot.image_alt", month=month), 100)))
    items = [KeyValue(label=shorten(tile.label, 40), value=shorten(tile.value, 200)) for tile in pic.tiles]
    items.append(KeyValue(label=shorten(pic.goals_heading, 40), value=shorten(pic.overall, 200)))
    elements.append(Fields(items=items))
    if pdf_url is not None:
        elements.append(Markdown(text=shorten(t("snapshot.pdf_link", url=pdf_url, hours=pdf_hours), 2000)))
    else:
        elements.append(Note(text=shorten(t("snapshot.pdf_hint"), 300)))
    summary = t(
        "snapshot.summary", month=month, on_time=v.checkins_on_time, due=v.checkins_due, done=v.actions_done
    )
    return Card(
        header=Header(title=shorten(title, 60), subtitle=shorten(pic.subtitle, 120), colour="blue"),
        elements=elements,
        summary=shorten(summary, 100),
    )
