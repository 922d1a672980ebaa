"""The figures of the monthly growth snapshot, for a whole wave of people at once.

The snapshot goes to everyone on the same morning, so its figures are computed per *wave*, not per person:
each function takes the people of one time zone (one local month, one UTC window) and answers for all of
them with one aggregate query per figure and chunk of ``CHUNK`` ids — about ten queries for 500 people
instead of ten per person. Everything is relative to the month's end (``MonthWindow.end``): a check-in
answered, an action done or a photo sent after it belongs to the next snapshot.

The rules, so the numbers can be checked by hand:

- check-ins *due* in the month are those answered (``submitted``, ``acknowledged``, ``followup``) or
  ``missed``; *on time* are the answered ones (a late one becomes ``missed``); open and skipped ones are
  neither;
- *evidence* is the photos received in the month, by the manager's rating (unrated ones counted apart);
- actions *done* were marked done in the month (and not returned since); *overdue* were still to deliver at
  the month's end (not done, not closed by then) with their deadline in the month or before;
- *kudos* received in the month, count and points;
- the *streak* is the check-in streak of ``storage.queries.engagement.streak_for`` at the month's end, over
  the last ``STREAK_DAYS`` days (leave never breaks it);
- *goals*: the goals of the cycle of the person's latest answered check-in before the month's end, with
  the progress that check-in gave (weighted by the goals' weights); no goals: its overall percentage;
- the *radar*: only when some of the person's peer answers were released in the month (a round closed),
  the anonymous aggregate (``storage.queries.feedback.aggregate``) with the person's self scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.feedback_scales import DIMENSIONS
from storage.models import (
    ActionItem,
    AuditLog,
    CheckIn,
    Evidence,
    Goal,
    PeerFeedback,
    Person,
    Recognition,
    Snapshot,
)
from storage.queries import feedback as fq
from storage.queries.metrics import DONE_CHECKIN
from storage.queries.people import on_leave

CHUNK = 500
"""Ids per ``IN (…)``: well under SQLite's and asyncpg's parameter limits, big enough to keep queries few."""
STREAK_DAYS = 366
"""How far back the streak looks (a year of check-ins; ``streak_for`` reads 200 rows for one person)."""
DONE_ACTION = ("done", "accepted")
RATINGS = ("meets", "improve", "support")
OVERALL = "overall"
"""The progress key of a check-in by someone without goals (``cards.checkin.OVERALL``)."""


@dataclass(frozen=True)
class MonthWindow:
    """One local calendar month as a UTC half-open interval."""

    month: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, month: str, zone: ZoneInfo) -> MonthWindow:
        year, mon = (int(x) for x in month.split("-"))
        first = date(year, mon, 1)
        following = date(year + 1, 1, 1) if mon == 12 else date(year, mon + 1, 1)
        return cls(
            month=month,
            first_day=first,
            last_day=following - timedelta(days=1),
            start=datetime.combine(first, time(0), tzinfo=zone),
            end=datetime.combine(following, time(0), tzinfo=zone),
        )


@dataclass
class GoalProgress:
    title: str
    weight: int
    progress: int | None


@dataclass
class Radar:
    peers: dict[str, float]
    self_scores: dict[str, float] | None
    answered: int


@dataclass
class MonthFigures:
    """Everything one snapshot shows; stored as JSON on the ``snapshots`` row (``as_json``/``from_json``)."""

    month: str
    checkins_due: int = 0
    checkins_on_time: int = 0
    evidence: int = 0
    ratings: dict[str, int] = field(default_factory=dict)
    actions_done: int = 0
    actions_overdue: int = 0
    kudos: int = 0
    kudos_points: int = 0
    streak: int = 0
    goals: list[GoalProgress] = field(default_factory=list)
    overall_progress: int | None = None
    radar: Radar | None = None

    @property
    def goal_progress(self) -> int | None:
        """The weighted mean of the goals' progress; the overall percentage when there are no goals."""
        known = [g for g in self.goals if g.progress is not None]
        weight = sum(max(g.weight, 0) for g in known)
        if known and weight > 0:
            return round(sum(max(g.weight, 0) * (g.progress or 0) for g in known) / weight)
        return self.overall_progress

    def as_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "checkins_due": self.checkins_due,
            "checkins_on_time": self.checkins_on_time,
            "evidence": self.evidence,
            "ratings": dict(self.ratings),
            "actions_done": self.actions_done,
            "actions_overdue": self.actions_overdue,
            "kudos": self.kudos,
            "kudos_points": self.kudos_points,
            "streak": self.streak,
            "goals": [{"title": g.title, "weight": g.weight, "progress": g.progress} for g in self.goals],
            "overall_progress": self.overall_progress,
            "radar": None
            if self.radar is None
            else {
                "peers": self.radar.peers,
                "self_scores": self.radar.self_scores,
                "answered": self.radar.answered,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MonthFigures:
        radar = data.get("radar")
        return cls(
            month=str(data.get("month", "")),
            checkins_due=int(data.get("checkins_due", 0)),
            checkins_on_time=int(data.get("checkins_on_time", 0)),
            evidence=int(data.get("evidence", 0)),
            ratings={str(k): int(v) for k, v in (data.get("ratings") or {}).items()},
            actions_done=int(data.get("actions_done", 0)),
            actions_overdue=int(data.get("actions_overdue", 0)),
            kudos=int(data.get("kudos", 0)),
            kudos_points=int(data.get("kudos_points", 0)),
            streak=int(data.get("streak", 0)),
            goals=[
                GoalProgress(str(g["title"]), int(g["weight"]), g.get("progress"))
                for g in data.get("goals") or []
            ],
            overall_progress=data.get("overall_progress"),
            radar=None
            if not radar
            else Radar(
                peers={str(k): float(v) for k, v in radar["peers"].items()},
                self_scores=(
                    {str(k): float(v) for k, v in radar["self_scores"].items()}
                    if radar.get("self_scores")
                    else None
                ),
                answered=int(radar.get("answered", 0)),
            ),
        )


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


async def month_figures(
    session: AsyncSession, people: Sequence[Person], window: MonthWindow, *, threshold: int
) -> dict[int, MonthFigures]:
    """The figures of ``window`` for every one of ``people`` (all in the zone the window was made for)."""
    out = {p.id: MonthFigures(month=window.month) for p in people}
    for ids in _chunks(sorted(out)):
        await _checkins(session, ids, window, out)
        await _evidence(session, ids, window, out)
        await _actions(session, ids, window, out)
        await _kudos(session, ids, window, out)
        await _goals(session, ids, window, out)
        await _radar(session, ids, window, out, threshold=threshold)
    await _streaks(session, people, window, out)
    return out


async def _checkins(
    session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures]
) -> None:
    rows = await session.execute(
        select(CheckIn.person_id, CheckIn.status, func.count())
        .where(CheckIn.person_id.in_(ids), CheckIn.due_at >= w.start, CheckIn.due_at < w.end)
        .group_by(CheckIn.person_id, CheckIn.status)
    )
    for pid, status, n in rows.all():
        fig = out[int(pid)]
        if status in DONE_CHECKIN:
            fig.checkins_due += int(n)
            fig.checkins_on_time += int(n)
        elif status == "missed":
            fig.checkins_due += int(n)


async def _evidence(
    session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures]
) -> None:
    rows = await session.execute(
        select(Evidence.person_id, Evidence.rating, func.count())
        .where(Evidence.person_id.in_(ids), Evidence.received_at >= w.start, Evidence.received_at < w.end)
        .group_by(Evidence.person_id, Evidence.rating)
    )
    for pid, rating, n in rows.all():
        fig = out[int(pid)]
        fig.evidence += int(n)
        key = rating if rating in RATINGS else "unrated"
        fig.ratings[key] = fig.ratings.get(key, 0) + int(n)


async def _actions(
    session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures]
) -> None:
    done = await session.execute(
        select(ActionItem.owner_id, func.count())
        .where(
            ActionItem.owner_id.in_(ids),
            ActionItem.status.in_(DONE_ACTION),
            ActionItem.done_at >= w.start,
            ActionItem.done_at < w.end,
        )
        .group_by(ActionItem.owner_id)
    )
    for pid, n in done.all():
        out[int(pid)].actions_done = int(n)
    overdue = await session.execute(
        select(ActionItem.owner_id, func.count())
        .where(
            ActionItem.owner_id.in_(ids),
            ActionItem.deadline <= w.last_day,
            ActionItem.created_at < w.end,
            or_(ActionItem.done_at.is_(None), ActionItem.done_at >= w.end),
            or_(
                ActionItem.closed_at >= w.end,
                and_(ActionItem.closed_at.is_(None), ActionItem.status != "closed"),
            ),
        )
        .group_by(ActionItem.owner_id)
    )
    for pid, n in overdue.all():
        out[int(pid)].actions_overdue = int(n)


async def _kudos(session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures]) -> None:
    rows = await session.execute(
        select(Recognition.to_person_id, func.count(), func.coalesce(func.sum(Recognition.points), 0))
        .where(
            Recognition.to_person_id.in_(ids),
            Recognition.created_at >= w.start,
            Recognition.created_at < w.end,
        )
        .group_by(Recognition.to_person_id)
    )
    for pid, n, points in rows.all():
        out[int(pid)].kudos = int(n)
        out[int(pid)].kudos_points = int(points)


async def _goals(session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures]) -> None:
    ranked = (
        select(
            CheckIn.person_id.label("person_id"),
            CheckIn.cycle_id.label("cycle_id"),
            CheckIn.progress.label("progress"),
            func.row_number()
            .over(partition_by=CheckIn.person_id, order_by=(CheckIn.submitted_at.desc(), CheckIn.id.desc()))
            .label("rank"),
        )
        .where(
            CheckIn.person_id.in_(ids),
            CheckIn.status.in_(DONE_CHECKIN),
            CheckIn.submitted_at.is_not(None),
            CheckIn.submitted_at < w.end,
        )
        .subquery()
    )
    latest = (
        await session.execute(
            select(ranked.c.person_id, ranked.c.cycle_id, ranked.c.progress).where(ranked.c.rank == 1)
        )
    ).all()
    if not latest:
        return
    cycles = {int(c) for _, c, _ in latest if c is not None}
    goals: dict[tuple[int, int], list[Goal]] = {}
    if cycles:
        for goal in await session.scalars(
            select(Goal)
            .where(Goal.person_id.in_(ids), Goal.cycle_id.in_(sorted(cycles)))
            .order_by(Goal.position, Goal.id)
        ):
            goals.setdefault((goal.cycle_id, goal.person_id), []).append(goal)
    for pid, cycle_id, progress in latest:
        fig = out[int(pid)]
        values: dict[str, Any] = dict(progress or {})
        mine = goals.get((int(cycle_id), int(pid)), []) if cycle_id is not None else []
        fig.goals = [GoalProgress(g.objective, g.weight, _percent(values.get(str(g.id)))) for g in mine]
        if not mine:
            fig.overall_progress = _percent(values.get(OVERALL))


def _percent(value: object) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
        return int(value)
    return None


async def _radar(
    session: AsyncSession, ids: list[int], w: MonthWindow, out: dict[int, MonthFigures], *, threshold: int
) -> None:
    rows = await session.execute(
        select(PeerFeedback.subject_id, func.max(PeerFeedback.cycle_id))
        .where(
            PeerFeedback.subject_id.in_(ids),
            PeerFeedback.role == "peer",
            PeerFeedback.released_at >= w.start,
            PeerFeedback.released_at < w.end,
        )
        .group_by(PeerFeedback.subject_id)
    )
    for pid, cycle_id in rows.all():
        agg = await fq.aggregate(session, int(cycle_id), int(pid), threshold=threshold, with_manager=False)
        if agg.peers is not None:
            peers = {d: agg.peers[d] for d in DIMENSIONS if d in agg.peers}
            out[int(pid)].radar = Radar(peers=peers, self_scores=agg.self_scores, answered=agg.answered)


async def _streaks(
    session: AsyncSession, people: Sequence[Person], w: MonthWindow, out: dict[int, MonthFigures]
) -> None:
    by_id = {p.id: p for p in people}
    since = w.end - timedelta(days=STREAK_DAYS)
    for ids in _chunks(sorted(by_id)):
        rows = await session.execute(
            select(CheckIn.person_id, CheckIn.status, CheckIn.period)
            .where(CheckIn.person_id.in_(ids), CheckIn.due_at >= since, CheckIn.due_at < w.end)
            .order_by(CheckIn.person_id, CheckIn.due_at.desc(), CheckIn.id.desc())
        )
        broken: set[int] = set()
        for pid, status, period in rows.all():
            person_id = int(pid)
            if person_id in broken:
                continue
            if status in DONE_CHECKIN:
                out[person_id].streak += 1
            elif status == "missed":
                day = _period_day(period)
                if day is not None and on_leave(by_id[person_id], day):
                    continue
                broken.add(person_id)


def _period_day(period: str) -> date | None:
    try:
        return date.fromisoformat(period[:10])
    except ValueError:
        return None


async def existing(session: AsyncSession, person_ids: Sequence[int], month: str) -> set[int]:
    """Which of ``person_ids`` already have a snapshot row for ``month`` (the natural key)."""
    found: set[int] = set()
    for ids in _chunks(sorted(set(person_ids))):
        found.update(
            int(p)
            for p in await session.scalars(
                select(Snapshot.person_id).where(Snapshot.month == month, Snapshot.person_id.in_(ids))
            )
        )
    return found


WAVE_FINISHED = "snapshot.wave.finished"
WAVE_ENTITY = "snapshot_wave"
"""A finished wave is one audit row: entity ``snapshot_wave``, ``entity_id`` the month as ``yyyymm`` (the
``(entity, entity_id)`` index finds a month's few rows), the zone in ``detail["tz"]``."""


def _month_number(month: str) -> int:
    return int(month.replace("-", ""))


async def zones_in_use(session: AsyncSession) -> list[str]:
    """The distinct stored zone names of active, unpaused people (a handful, whatever the head-count)."""
    stmt = select(Person.timezone).where(Person.active.is_(True), Person.paused.is_(False)).distinct()
    return list(await session.scalars(stmt))


async def people_in_zones(
    session: AsyncSession, names: Sequence[str], *, after: int, limit: int
) -> list[Person]:
    """The next ``limit`` active, unpaused people (by id, after ``after``) whose stored zone is one of
    ``names``."""
    stmt = (
        select(Person)
        .where(
            Person.active.is_(True),
            Person.paused.is_(False),
            Person.timezone.in_(list(names)),
            Person.id > after,
        )
        .order_by(Person.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def finished_waves(session: AsyncSession, months: set[str]) -> set[tuple[str, str]]:
    """(zone, month) of the waves of ``months`` marked finished."""
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == WAVE_ENTITY,
            AuditLog.entity_id.in_(sorted(_month_number(m) for m in months)),
            AuditLog.action == WAVE_FINISHED,
        )
    )
    return {
        (str(d["tz"]), str(d["month"])) for d in rows if isinstance(d, dict) and "tz" in d and "month" in d
    }


def mark_finished(session: AsyncSession, tz: str, month: str, now: datetime) -> None:
    """Record that every snapshot of ``month`` in zone ``tz`` has its row (in the caller's transaction)."""
    session.add(
        AuditLog(
            at=now,
            actor_id=None,
            action=WAVE_FINISHED,
            entity=WAVE_ENTITY,
            entity_id=_month_number(month),
            detail={"tz": tz, "month": month},
        )
    )


async def snapshot_of(session: AsyncSession, person_id: int, month: str | None = None) -> Snapshot | None:
    """``person_id``'s snapshot of ``month``, or their latest one."""
    stmt = select(Snapshot).where(Snapshot.person_id == person_id)
    if month is not None:
        stmt = stmt.where(Snapshot.month == month)
    return await session.scalar(stmt.order_by(Snapshot.month.desc()).limit(1))


async def old_images(
    session: AsyncSession, *, before_month: str, after_id: int, limit: int
) -> list[tuple[int, str]]:
    """(row id, media id) of the next ``limit`` snapshots of months before ``before_month`` (``2025-10``)
    that still name an image, by id after ``after_id`` (the retention sweep's cursor)."""
    rows = await session.execute(
        select(Snapshot.id, Snapshot.media_id)
        .where(Snapshot.month < before_month, Snapshot.media_id.is_not(None), Snapshot.id > after_id)
        .order_by(Snapshot.id)
        .limit(limit)
    )
    return [(int(i), str(m)) for i, m in rows.all()]


async def forget_images(session: AsyncSession, row_ids: Sequence[int]) -> None:
    """The rows keep their figures; their image is gone (``/snapshot`` draws one again if asked)."""
    for ids in _chunks(row_ids):
        await session.execute(update(Snapshot).where(Snapshot.id.in_(ids)).values(media_id=None))


async def images_in_use(session: AsyncSession, media_ids: set[str]) -> set[str]:
    """Which of ``media_ids`` a snapshot row or a photo still names: the store is content-addressed, so the
    same file may stand for more than one row (two people of one name and the same figures in a month)."""
    used: set[str | None] = set()
    ordered = sorted(media_ids)
    for start in range(0, len(ordered), CHUNK):
        wanted = ordered[start : start + CHUNK]
        used.update(await session.scalars(select(Snapshot.media_id).where(Snapshot.media_id.in_(wanted))))
        used.update(await session.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(wanted))))
    return {m for m in used if m is not None}
