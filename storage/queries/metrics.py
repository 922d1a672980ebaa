"""The health metrics the digest and ``perfloop report`` show, computed by SQL aggregation.

Every figure is a ``COUNT``/``SUM``/``AVG`` over an indexed range (check-ins by ``due_at``, action items by
``deadline``/``created_at``), joined to ``people`` for the scope, so the cost grows with the rows in the
window, never with the whole history, and nothing is loaded row by row into Python. The same statements
run on SQLite and PostgreSQL; the two places where the dialects differ (seconds between two timestamps,
the local calendar day of a timestamp) are isolated in ``_seconds_between`` and ``_local_day``.

Definitions (the note in the digest card repeats them in words):
- check-in completion: check-ins due in the window, not skipped, that were submitted (answered or not);
- evidence completeness: action items that require evidence with a deadline in the window, not closed,
  that have at least one photo;
- response time: action items created in the window → their first recorded response by the owner;
- commitment fulfilment: action items with a deadline in the window, not closed, done on or before the
  deadline (local day);
- kudos: points received in the window.

The method's participation figures (issue 20 #8; ``participation``, ``participation_by``, ``daily_active``):
- self-assessment submission: self-assessments requested (opened) in the window that were submitted;
- 3-2-1 actions done within 72 h: action items created from a confirmed 3-2-1 review in the window, not
  closed, marked done within 72 hours of the review's confirmation;
- cross-department peer feedback: released peer answers in the window where rater and subject sit in
  different departments (counts only, and only over at least the anonymity threshold of answers);
- daily-active rate: people with a message or click on a workday, averaged over the window's workdays whose
  inbound events are still kept;
- feedback frequency: released peer answers, kudos and check-in replies received, per person and week.

The goal tree's figures of one cycle (issue 17; ``goal_figures``, ``goal_figures_by``):
- alignment rate (对齐率): person-level goals with a parent objective;
- carry-over share (行动转化度): of the previous cycle's unfinished key results and the action items open at
  its end, the ones carried into this cycle (the carry's audit rows, ``storage.queries.carry.CARRIED``).
``docs/metrics.md`` holds the full definitions of every figure, with numerator, denominator and window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    ActionItem,
    AuditLog,
    CheckIn,
    CycleParticipant,
    Evidence,
    EvidenceRequest,
    Goal,
    InboundEvent,
    KeyResult,
    PeerFeedback,
    Person,
    Recognition,
    Review321,
    SelfAssessment,
)
from storage.queries.carry import CARRIED, open_at

DONE_CHECKIN = ("submitted", "acknowledged", "followup")
PROGRESS_GAP_ACTION = "progress.gap"
"""The audit action ``handlers.escalation.check_progress_gap`` records; the risks list reads it back."""

T = TypeVar("T")
Level = Literal["person", "department", "company"]


@dataclass(frozen=True)
class Levels:
    """Several groupings from one scan: the same statement ``GROUP BY GROUPING SETS`` (PostgreSQL), keys
    ``(level, id)`` (``("company", 0)``). A report needs every figure per person, per department and for
    the company; three scans of a year of check-ins became one. SQLite has no grouping sets: there each
    level is its own statement, with the same keys."""

    levels: tuple[Level, ...]


Group = Literal["person", "department"] | Levels | None
LEVEL_OF = {0: "person", 2: "department", 3: "company"}
"""``GROUPING(person, department)`` of a row: which level of a ``Levels`` grouping it is."""


@dataclass(frozen=True)
class Scope:
    """Whose records count: a workspace, optionally narrowed to a manager's direct reports or a department."""

    workspace_id: int
    manager_id: int | None = None
    department_id: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [Person.workspace_id == self.workspace_id]
        if self.manager_id is not None:
            conds.append(Person.manager_id == self.manager_id)
        if self.department_id is not None:
            conds.append(Person.department_id == self.department_id)
        return conds

    def company(self) -> Scope:
        return Scope(self.workspace_id)


@dataclass(frozen=True)
class Window:
    """``[first_day, end_day)`` in one time zone; ``start``/``end`` are the same bounds as UTC instants."""

    first_day: date
    end_day: date
    tz: tzinfo

    @classmethod
    def ending(cls, end_day: date, days: int, tz: tzinfo) -> Window:
        return cls(end_day - timedelta(days=days), end_day, tz)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.end_day, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def previous(self) -> Window:
        return Window(self.first_day - timedelta(days=self.days), self.first_day, self.tz)


@dataclass
class Metrics:
    checkins_due: int = 0
    checkins_done: int = 0
    evidence_required: int = 0
    evidence_with: int = 0
    responses: int = 0
    response_seconds: float | None = None
    """Average seconds from trigger to first response over ``responses`` items (None when there are none)."""
    actions_due: int = 0
    actions_on_time: int = 0
    kudos_points: int = 0

    @property
    def checkin_rate(self) -> float | None:
        return _ratio(self.checkins_done, self.checkins_due)

    @property
    def evidence_rate(self) -> float | None:
        return _ratio(self.evidence_with, self.evidence_required)

    @property
    def fulfilment_rate(self) -> float | None:
        return _ratio(self.actions_on_time, self.actions_due)

    @property
    def response_hours(self) -> float | None:
        return None if self.response_seconds is None else self.response_seconds / 3600

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkins_due": self.checkins_due,
            "checkins_done": self.checkins_done,
            "checkin_rate": _round(self.checkin_rate),
            "evidence_required": self.evidence_required,
            "evidence_with": self.evidence_with,
            "evidence_rate": _round(self.evidence_rate),
            "responses": self.responses,
            "response_hours": _round(self.response_hours, 2),
            "actions_due": self.actions_due,
            "actions_on_time": self.actions_on_time,
            "fulfilment_rate": _round(self.fulfilment_rate),
            "kudos_points": self.kudos_points,
        }


@dataclass(frozen=True)
class OverdueItem:
    item_id: int
    deliverable: str
    deadline: date
    owner_id: int
    owner_name: str
    escalation_level: int


@dataclass(frozen=True)
class RiskPerson:
    person_id: int
    name: str
    count: int


@dataclass(frozen=True)
class TrendDay:
    day: date
    checkin_rate: float | None
    fulfilment_rate: float | None


@dataclass(frozen=True)
class PreviousDigest:
    day: date
    overdue: int | None


@dataclass
class Expired:
    total: int = 0
    people: list[RiskPerson] = field(default_factory=list)


@dataclass
class Risks:
    missed_twice: list[RiskPerson] = field(default_factory=list)
    falling_progress: list[RiskPerson] = field(default_factory=list)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------ dialect corners


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _utc_offset_hours(tz: tzinfo, at: datetime) -> float:
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    return offset.total_seconds() / 3600


def _local_day(dialect: str, column: Any, window: Window) -> ColumnElement[Any]:
    """The calendar day of a UTC timestamp in the window's time zone.

    PostgreSQL converts with the zone name (exact across DST); SQLite has no zone database, so it shifts by
    the offset in force at the window's end — exact for zones without DST, such as Asia/Shanghai.
    """
    if dialect == "postgresql" and isinstance(window.tz, ZoneInfo):
        return func.date(func.timezone(window.tz.key, column))
    if dialect == "postgresql":
        hours = _utc_offset_hours(window.tz, window.end)
        return func.date(func.timezone("UTC", column) + timedelta(hours=hours))
    hours = _utc_offset_hours(window.tz, window.end)
    return func.date(column, f"{hours:+.4f} hours")


def _on_time(dialect: str, window: Window) -> ColumnElement[bool]:
    """Done on or before the deadline's local day (SQLite stores dates as ISO text, compared as text)."""
    deadline = ActionItem.deadline if dialect == "postgresql" else func.date(ActionItem.deadline)
    return and_(ActionItem.done_at.is_not(None), _local_day(dialect, ActionItem.done_at, window) <= deadline)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# ------------------------------------------------------------------ which rows a figure counts
# One definition each, shared with ``storage.queries.insights``: the people behind a figure are its rows.


def checkins_due_in(window: Window) -> tuple[ColumnElement[bool], ...]:
    """Check-ins due in the window, not skipped: what check-in completion is a share of."""
    return (CheckIn.due_at >= window.start, CheckIn.due_at < window.end, CheckIn.status != "skipped")


def items_due_in(window: Window) -> tuple[ColumnElement[bool], ...]:
    """Action items with a deadline in the window, not closed: what fulfilment and evidence count."""
    return (
        ActionItem.deadline >= window.first_day,
        ActionItem.deadline < window.end_day,
        ActionItem.status != "closed",
    )


def responses_in(window: Window) -> tuple[ColumnElement[bool], ...]:
    """Action items created in the window that have a first response: what the response time averages."""
    return (
        ActionItem.created_at >= window.start,
        ActionItem.created_at < window.end,
        ActionItem.first_response_at.is_not(None),
    )


def response_seconds(session: AsyncSession) -> ColumnElement[Any]:
    """Seconds from an action item's creation to its first response."""
    return _seconds_between(_dialect(session), ActionItem.created_at, ActionItem.first_response_at)


def progress_gaps_in(window: Window) -> tuple[ColumnElement[bool], ...]:
    """The escalation flow's "progress behind plan" audit rows written in the window (one per warning)."""
    return (
        AuditLog.entity == "person",
        AuditLog.action == PROGRESS_GAP_ACTION,
        AuditLog.at >= window.start,
        AuditLog.at < window.end,
    )


# ------------------------------------------------------------------ the figures


def _grouped(stmt: Any, group: Group, person_col: Any) -> tuple[Any, Any]:
    if isinstance(group, Levels):
        return _by_levels(stmt, group, person_col), None
    if group == "person":
        key = person_col
    elif group == "department":
        key = Person.department_id
    else:
        return stmt.add_columns(literal(0).label("k")), None
    return stmt.add_columns(key.label("k")).group_by(key), key


def _by_levels(stmt: Any, group: Levels, person_col: Any) -> Any:
    """``GROUP BY GROUPING SETS`` for the levels asked for; ``lv`` tells a row's level, ``k`` its id."""
    sets = {
        "person": tuple_(person_col, Person.department_id),
        "department": tuple_(Person.department_id),
        "company": tuple_(),
    }
    lv: ColumnElement[Any]
    if "person" in group.levels:
        lv = func.grouping(person_col, Person.department_id)
        k = case((lv == 0, person_col), (lv == 2, Person.department_id), else_=literal(0))
    else:  # only grouped columns may be named: the same numbers without the person's bit
        lv = func.grouping(Person.department_id) + 2
        k = case((lv == 2, Person.department_id), else_=literal(0))
    return stmt.add_columns(k.label("k"), lv.label("lv")).group_by(
        func.grouping_sets(*(sets[level] for level in group.levels))
    )


async def _rows(session: AsyncSession, stmt: Any) -> Sequence[Any]:
    """An aggregate's rows through the session's connection: plain rows, without the ORM's per-row loading
    (a report's per-person statements return 100,000 rows each)."""
    conn = await session.connection()
    return (await conn.execute(stmt)).all()


def _key(row: Any, group: Group) -> Any:
    """A row's group key: its id, or ``(level, id)`` under a ``Levels`` grouping."""
    return (LEVEL_OF[row.lv], row.k) if isinstance(group, Levels) else row.k


async def _levelled(
    session: AsyncSession, group: Group, fn: Callable[[Group], Awaitable[dict[Any, T]]]
) -> dict[Any, T]:
    """``fn`` under ``group``; where the database has no grouping sets (SQLite), one level at a time, each
    re-keyed ``(level, id)``."""
    if not isinstance(group, Levels) or _dialect(session) == "postgresql":
        return await fn(group)
    out: dict[Any, T] = {}
    for level in group.levels:
        plain: Group = None if level == "company" else level
        out.update(((level, key), value) for key, value in (await fn(plain)).items())
    return out


def _level_of(key: Any, group: Group) -> Level:
    if isinstance(group, Levels):
        return key[0]  # type: ignore[no-any-return]
    return "company" if group is None else group


async def _checkins(session: AsyncSession, scope: Scope, window: Window, group: Group) -> dict[Any, Metrics]:
    done = func.sum(case((CheckIn.status.in_(DONE_CHECKIN), 1), else_=0))
    stmt = (
        select(func.count().label("due"), done.label("done"))
        .select_from(CheckIn)
        .join(Person, Person.id == CheckIn.person_id)
        .where(*scope.where(), *checkins_due_in(window))
    )
    stmt, _ = _grouped(stmt, group, CheckIn.person_id)
    out: dict[Any, Metrics] = {}
    for row in await _rows(session, stmt):
        out[_key(row, group)] = Metrics(checkins_due=int(row.due or 0), checkins_done=int(row.done or 0))
    return out


async def _items_by_deadline(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, Metrics]:
    dialect = _dialect(session)
    has_photo = exists().where(Evidence.action_item_id == ActionItem.id)
    on_time = _on_time(dialect, window)
    stmt = (
        select(
            func.count().label("due"),
            func.sum(case((on_time, 1), else_=0)).label("on_time"),
            func.sum(case((ActionItem.evidence_required.is_(True), 1), else_=0)).label("required"),
            func.sum(case((and_(ActionItem.evidence_required.is_(True), has_photo), 1), else_=0)).label(
                "with_photo"
            ),
        )
        .select_from(ActionItem)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), *items_due_in(window))
    )
    stmt, _ = _grouped(stmt, group, ActionItem.owner_id)
    out: dict[Any, Metrics] = {}
    for row in await _rows(session, stmt):
        out[_key(row, group)] = Metrics(
            actions_due=int(row.due or 0),
            actions_on_time=int(row.on_time or 0),
            evidence_required=int(row.required or 0),
            evidence_with=int(row.with_photo or 0),
        )
    return out


async def _responses(session: AsyncSession, scope: Scope, window: Window, group: Group) -> dict[Any, Metrics]:
    stmt = (
        select(func.count().label("n"), func.avg(response_seconds(session)).label("avg"))
        .select_from(ActionItem)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), *responses_in(window))
    )
    stmt, _ = _grouped(stmt, group, ActionItem.owner_id)
    out: dict[Any, Metrics] = {}
    for row in await _rows(session, stmt):
        n = int(row.n or 0)
        out[_key(row, group)] = Metrics(
            responses=n, response_seconds=float(row.avg) if n and row.avg is not None else None
        )
    return out


async def _kudos(session: AsyncSession, scope: Scope, window: Window, group: Group) -> dict[Any, Metrics]:
    stmt = (
        select(func.coalesce(func.sum(Recognition.points), 0).label("points"))
        .select_from(Recognition)
        .join(Person, Person.id == Recognition.to_person_id)
        .where(*scope.where(), Recognition.created_at >= window.start, Recognition.created_at < window.end)
    )
    stmt, _ = _grouped(stmt, group, Recognition.to_person_id)
    return {
        _key(row, group): Metrics(kudos_points=int(row.points or 0)) for row in await _rows(session, stmt)
    }


def _merge(parts: Sequence[dict[Any, Metrics]]) -> dict[Any, Metrics]:
    """Combine the per-statement partial figures (each sets only its own fields) key by key."""
    out: dict[Any, Metrics] = {}
    for part in parts:
        for key, partial in part.items():
            base = out.get(key)
            if base is None:
                out[key] = partial
                continue
            # Each statement sets its own fields and leaves the others at their defaults (0, None).
            base.__dict__.update({name: v for name, v in partial.__dict__.items() if v not in (0, None)})
    return out


async def metrics(session: AsyncSession, scope: Scope, window: Window) -> Metrics:
    """All figures for one scope and window (five aggregate statements)."""
    grouped = await metrics_by(session, scope, window, None)
    return grouped.get(0, Metrics())


async def metrics_by(session: AsyncSession, scope: Scope, window: Window, group: Group) -> dict[Any, Metrics]:
    """The same figures grouped per person id or per department id (None key = no department), or per
    ``Levels`` (keys ``(level, id)``)."""
    return await _levelled(session, group, lambda g: _metrics_by(session, scope, window, g))


async def _metrics_by(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, Metrics]:
    parts = [
        await _checkins(session, scope, window, group),
        await _items_by_deadline(session, scope, window, group),
        await _responses(session, scope, window, group),
        await _kudos(session, scope, window, group),
    ]
    return _merge(parts)


async def overdue(
    session: AsyncSession, scope: Scope, today: date, *, open_statuses: Collection[str], limit: int = 5
) -> tuple[int, list[OverdueItem]]:
    """How many open items are past their deadline, and the ``limit`` most overdue.

    What counts as open is the action-item flow's rule (``bot.core.status.OPEN_ACTION_ITEM``), passed in:
    the same set the reminders and the escalation ladder use."""
    base = (
        select(ActionItem.id)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), ActionItem.status.in_(open_statuses), ActionItem.deadline < today)
    )
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        select(
            ActionItem.id,
            ActionItem.deliverable,
            ActionItem.deadline,
            ActionItem.owner_id,
            Person.name,
            ActionItem.escalation_level,
        )
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), ActionItem.status.in_(open_statuses), ActionItem.deadline < today)
        .order_by(ActionItem.deadline, ActionItem.id)
        .limit(limit)
    )
    items = [OverdueItem(r[0], r[1], _as_date(r[2]), r[3], r[4], r[5]) for r in rows]
    return int(total), items


async def risks(session: AsyncSession, scope: Scope, window: Window, *, limit: int = 5) -> Risks:
    """People with two or more missed check-ins in the window, and people whose progress fell behind plan."""
    missed = func.count().label("n")
    rows = await session.execute(
        select(Person.id, Person.name, missed)
        .select_from(CheckIn)
        .join(Person, Person.id == CheckIn.person_id)
        .where(
            *scope.where(),
            CheckIn.status == "missed",
            CheckIn.due_at >= window.start,
            CheckIn.due_at < window.end,
        )
        .group_by(Person.id, Person.name)
        .having(func.count() >= 2)
        .order_by(missed.desc(), Person.id)
        .limit(limit)
    )
    out = Risks(missed_twice=[RiskPerson(r[0], r[1], int(r[2])) for r in rows])
    gaps = func.count().label("n")
    rows = await session.execute(
        select(Person.id, Person.name, gaps)
        .select_from(AuditLog)
        .join(Person, Person.id == AuditLog.entity_id)
        .where(*scope.where(), *progress_gaps_in(window))
        .group_by(Person.id, Person.name)
        .order_by(gaps.desc(), Person.id)
        .limit(limit)
    )
    out.falling_progress = [RiskPerson(r[0], r[1], int(r[2])) for r in rows]
    return out


async def top_kudos(
    session: AsyncSession, scope: Scope, window: Window, *, limit: int = 3
) -> list[RiskPerson]:
    points = func.sum(Recognition.points).label("p")
    rows = await session.execute(
        select(Person.id, Person.name, points)
        .select_from(Recognition)
        .join(Person, Person.id == Recognition.to_person_id)
        .where(*scope.where(), Recognition.created_at >= window.start, Recognition.created_at < window.end)
        .group_by(Person.id, Person.name)
        .order_by(points.desc(), Person.id)
        .limit(limit)
    )
    return [RiskPerson(r[0], r[1], int(r[2])) for r in rows]


async def trend(session: AsyncSession, scope: Scope, window: Window) -> list[TrendDay]:
    """Per local day of the window: check-in completion (by due day) and fulfilment (by deadline day)."""
    dialect = _dialect(session)
    day = _local_day(dialect, CheckIn.due_at, window).label("d")
    done = func.sum(case((CheckIn.status.in_(DONE_CHECKIN), 1), else_=0))
    checkin_rows = await session.execute(
        select(day, func.count(), done)
        .select_from(CheckIn)
        .join(Person, Person.id == CheckIn.person_id)
        .where(*scope.where(), *checkins_due_in(window))
        .group_by(day)
    )
    by_day_checkin = {_as_date(r[0]): _ratio(int(r[2] or 0), int(r[1])) for r in checkin_rows}
    on_time = _on_time(dialect, window)
    item_rows = await session.execute(
        select(ActionItem.deadline, func.count(), func.sum(case((on_time, 1), else_=0)))
        .select_from(ActionItem)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), *items_due_in(window))
        .group_by(ActionItem.deadline)
    )
    by_day_items = {_as_date(r[0]): _ratio(int(r[2] or 0), int(r[1])) for r in item_rows}
    return [
        TrendDay(d, by_day_checkin.get(d), by_day_items.get(d))
        for d in (window.first_day + timedelta(days=i) for i in range(window.days))
    ]


async def previous_digest(
    session: AsyncSession, person_id: int, *, action: str, before: date
) -> PreviousDigest | None:
    """The last digest ``person_id`` got before ``before`` (from the digest flow's own audit rows, keyed
    ``digest:<day>``), with the overdue count it showed; None for a first digest."""
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == "person", AuditLog.entity_id == person_id, AuditLog.action == action
        )
    )
    best: PreviousDigest | None = None
    for detail in rows:
        key = detail.get("key") if isinstance(detail, dict) else None
        if not isinstance(key, str) or not key.startswith("digest:"):
            continue
        try:
            day = date.fromisoformat(key.removeprefix("digest:"))
        except ValueError:
            continue
        if day < before and (best is None or day > best.day):
            overdue = detail.get("overdue")
            best = PreviousDigest(day, overdue if isinstance(overdue, int) else None)
    return best


async def expired_evidence(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    *,
    expired_status: str,
    open_status: str,
    limit: int = 5,
) -> Expired:
    """Photo-evidence requests in scope that expired unanswered in the window (by ``expires_at``), and the
    people they were for, most first. A request still ``open`` whose ``expires_at`` already passed counts
    too: the sweep that marks it expired may not have run yet, but nobody can answer it any more."""
    lapsed = and_(
        EvidenceRequest.expires_at >= window.start,
        EvidenceRequest.expires_at < window.end,
        EvidenceRequest.status.in_((expired_status, open_status)),
    )
    total = await session.scalar(
        select(func.count())
        .select_from(EvidenceRequest)
        .join(Person, Person.id == EvidenceRequest.person_id)
        .where(*scope.where(), lapsed)
    )
    n = func.count().label("n")
    rows = await session.execute(
        select(Person.id, Person.name, n)
        .select_from(EvidenceRequest)
        .join(Person, Person.id == EvidenceRequest.person_id)
        .where(*scope.where(), lapsed)
        .group_by(Person.id, Person.name)
        .order_by(n.desc(), Person.id)
        .limit(limit)
    )
    return Expired(int(total or 0), [RiskPerson(r[0], r[1], int(r[2])) for r in rows])


# ------------------------------------------------------------------ participation (issue 20 #8)

ACTIVE_EVENT_KINDS = ("text", "image", "card_action")
"""Inbound event kinds a person does themselves: a message (text or photo) or a click on a card
(``bot.core.events``; a test pins them). Member changes come from the platform, not from the person."""
REVIEW_SOURCE = "review"
"""``ActionItem.source`` of the item a manager opens by confirming a 3-2-1 review."""
CLOSED_ACTION = "closed"
"""An action item taken off the books by its overseer: neither delivered nor owed, so counted nowhere."""
PEER_ROLE = "peer"
"""``PeerFeedback.role`` of a peer's answer (the manager's own scores are not peer feedback)."""
REVIEW_ACTION_HOURS = 72


@dataclass
class DailyActive:
    """Active person-days over ``people`` × ``workdays`` (see ``daily_active``)."""

    people: int = 0
    """Active people in scope now (not looked up, 0, when no workday of the window counts)."""
    workdays: int = 0
    """Workdays of the window whose inbound events are still kept (the rest may have been purged)."""
    active_days: int = 0
    """(person, workday) pairs with at least one message or click."""

    @property
    def rate(self) -> float | None:
        return _ratio(self.active_days, self.people * self.workdays)


@dataclass
class Participation:
    """How far the method is practised in a scope and window (definitions in ``docs/metrics.md``).

    A count that is ``None`` is withheld, not zero: cross-department figures are never given per person and
    need at least the anonymity threshold of answers, so that no figure narrows down who answered."""

    self_requested: int = 0
    self_submitted: int = 0
    review_actions: int = 0
    review_actions_72h: int = 0
    peer_answers: int | None = 0
    """Released peer answers whose rater and subject both belong to a department."""
    peer_cross: int | None = 0
    people: int = 0
    workdays: int = 0
    active_days: int = 0
    feedback: int = 0
    """Feedback received: released peer answers, kudos and check-in replies."""
    weeks: float = 0.0

    @property
    def self_assessment_rate(self) -> float | None:
        return _ratio(self.self_submitted, self.self_requested)

    @property
    def review_72h_rate(self) -> float | None:
        return _ratio(self.review_actions_72h, self.review_actions)

    @property
    def cross_department_rate(self) -> float | None:
        if self.peer_answers is None or self.peer_cross is None:
            return None
        return _ratio(self.peer_cross, self.peer_answers)

    @property
    def daily_active_rate(self) -> float | None:
        return DailyActive(self.people, self.workdays, self.active_days).rate

    @property
    def feedback_per_person_week(self) -> float | None:
        if not self.people or not self.weeks:
            return None
        return self.feedback / self.people / self.weeks

    def as_dict(self) -> dict[str, Any]:
        return {
            "self_assessments_requested": self.self_requested,
            "self_assessments_submitted": self.self_submitted,
            "self_assessment_rate": _round(self.self_assessment_rate),
            "review_actions": self.review_actions,
            "review_actions_done_72h": self.review_actions_72h,
            "review_actions_72h_rate": _round(self.review_72h_rate),
            "peer_answers": self.peer_answers,
            "peer_answers_cross_department": self.peer_cross,
            "cross_department_rate": _round(self.cross_department_rate),
            "people": self.people,
            "workdays": self.workdays,
            "active_person_days": self.active_days,
            "daily_active_rate": _round(self.daily_active_rate),
            "feedback_received": self.feedback,
            "feedback_per_person_week": _round(self.feedback_per_person_week, 2),
        }


def counted_workdays(
    window: Window, *, workdays: Collection[date] | None = None, kept_since: datetime | None = None
) -> list[date]:
    """The window's workdays whose inbound events are all still kept.

    ``workdays`` is the caller's calendar (the scheduler's Chinese calendar; None: Monday to Friday), since
    storage cannot ask the scheduler. ``kept_since`` is the retention cut-off (``[retention]
    inbound_events_days`` before now): a day that starts before it may have lost events, and counting it
    would read a purge as inactivity, so only the days from the first local midnight at or after it count."""
    first = window.first_day
    if kept_since is not None:
        local = kept_since.astimezone(window.tz)
        kept_first = local.date() if local.time() == time(0) else local.date() + timedelta(days=1)
        first = max(first, kept_first)
    days = (first + timedelta(days=i) for i in range(max((window.end_day - first).days, 0)))
    return [d for d in days if (d in workdays if workdays is not None else d.weekday() < 5)]


def _day_values(dialect: str, days: Sequence[date]) -> list[Any]:
    """``_local_day`` is a date on PostgreSQL and ISO text on SQLite."""
    return list(days) if dialect == "postgresql" else [d.isoformat() for d in days]


async def _people(session: AsyncSession, scope: Scope, group: Group) -> dict[Any, int]:
    stmt = select(func.count().label("n")).select_from(Person).where(*scope.where(), Person.active.is_(True))
    stmt, _ = _grouped(stmt, group, Person.id)
    return {_key(row, group): int(row.n or 0) for row in await _rows(session, stmt)}


async def _active_days(
    session: AsyncSession, scope: Scope, window: Window, group: Group, days: Sequence[date]
) -> dict[Any, int]:
    """Distinct (person, local workday) pairs with a message or click, per group, over the counted days
    only (the inbound-event index on ``received_at``).

    Counted as ``COUNT(DISTINCT …)`` per day (per person: distinct days), summed here over at most a few
    rows per group. A ``SELECT DISTINCT`` of all pairs would be the same number, but PostgreSQL 15 plans it
    as a parallel hash aggregate that, misjudging how many pairs there are, spills for minutes at 100,000
    people. The people in scope are an ``IN`` set, so a team's count can start from its few people."""
    if not days:
        return {}
    if isinstance(group, Levels):  # a statement of its own per level (the grouping differs per level)
        out_levels: dict[Any, int] = {}
        for level in group.levels:
            plain: Group = None if level == "company" else level
            found = await _active_days(session, scope, window, plain, days)
            out_levels.update(((level, key), n) for key, n in found.items())
        return out_levels
    dialect = _dialect(session)
    day = _local_day(dialect, InboundEvent.received_at, window)
    start = datetime.combine(days[0], time(0), tzinfo=window.tz).astimezone(UTC)
    where = (
        InboundEvent.kind.in_(ACTIVE_EVENT_KINDS),
        InboundEvent.received_at >= start,
        InboundEvent.received_at < window.end,
        day.in_(_day_values(dialect, days)),
    )
    in_scope = InboundEvent.person_id.in_(select(Person.id).where(*scope.where(), Person.active.is_(True)))
    if group == "person":
        stmt = (
            select(InboundEvent.person_id, func.count(day.distinct()))
            .where(in_scope, *where)
            .group_by(InboundEvent.person_id)
        )
        return {r[0]: int(r[1]) for r in await _rows(session, stmt)}
    if group == "department":
        stmt = (
            select(Person.department_id, func.count(InboundEvent.person_id.distinct()))
            .select_from(InboundEvent)
            .join(Person, Person.id == InboundEvent.person_id)
            .where(*scope.where(), Person.active.is_(True), *where)
            .group_by(Person.department_id, day)
        )
    else:
        per_day = func.count(InboundEvent.person_id.distinct())
        stmt = select(literal(0), per_day).where(in_scope, *where).group_by(day)
    out: dict[Any, int] = {}
    for key, n in await _rows(session, stmt):
        out[key] = out.get(key, 0) + int(n)
    return out


async def _self_assessments(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, tuple[int, int]]:
    submitted = func.sum(case((SelfAssessment.submitted_at.is_not(None), 1), else_=0))
    stmt = (
        select(func.count().label("n"), submitted.label("done"))
        .select_from(SelfAssessment)
        .join(Person, Person.id == SelfAssessment.person_id)
        .where(
            *scope.where(),
            SelfAssessment.created_at >= window.start,
            SelfAssessment.created_at < window.end,
        )
    )
    stmt, _ = _grouped(stmt, group, SelfAssessment.person_id)
    return {_key(row, group): (int(row.n or 0), int(row.done or 0)) for row in await _rows(session, stmt)}


async def _review_actions(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, tuple[int, int]]:
    """Items opened by confirming a review are created in the confirming transaction, so their
    ``created_at`` (indexed) is the confirmation time and carries the window."""
    seconds = _seconds_between(_dialect(session), Review321.confirmed_at, ActionItem.done_at)
    within = and_(ActionItem.done_at.is_not(None), seconds <= REVIEW_ACTION_HOURS * 3600)
    stmt = (
        select(func.count().label("n"), func.sum(case((within, 1), else_=0)).label("done"))
        .select_from(ActionItem)
        .join(Review321, Review321.id == ActionItem.source_id)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(
            *scope.where(),
            ActionItem.created_at >= window.start,
            ActionItem.created_at < window.end,
            ActionItem.source == REVIEW_SOURCE,
            ActionItem.status != CLOSED_ACTION,
            Review321.confirmed_at.is_not(None),
        )
    )
    stmt, _ = _grouped(stmt, group, ActionItem.owner_id)
    return {_key(row, group): (int(row.n or 0), int(row.done or 0)) for row in await _rows(session, stmt)}


async def _cross_department(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, tuple[int, int]]:
    """Released peer answers about people in scope whose rater's department is known, and how many of
    those came from another department. Released answers only: they change in batches of at least the
    anonymity threshold, like everything else shown about peer feedback (``storage.queries.feedback``)."""
    rater = aliased(Person)
    cross = case((rater.department_id != Person.department_id, 1), else_=0)
    stmt = (
        select(func.count().label("n"), func.sum(cross).label("cross"))
        .select_from(PeerFeedback)
        .join(Person, Person.id == PeerFeedback.subject_id)
        .join(rater, rater.id == PeerFeedback.rater_id)
        .where(
            *scope.where(),
            PeerFeedback.role == PEER_ROLE,
            PeerFeedback.released_at >= window.start,
            PeerFeedback.released_at < window.end,
            Person.department_id.is_not(None),
            rater.department_id.is_not(None),
        )
    )
    stmt, _ = _grouped(stmt, group, PeerFeedback.subject_id)
    return {_key(row, group): (int(row.n or 0), int(row.cross or 0)) for row in await _rows(session, stmt)}


async def _feedback_received(
    session: AsyncSession, scope: Scope, window: Window, group: Group
) -> dict[Any, int]:
    """Released peer answers about, kudos to, and check-in replies to active people in scope (three
    statements), so the figure divides by the people it counts for."""
    sources: list[tuple[Any, Any, Any, Sequence[ColumnElement[bool]]]] = [
        (PeerFeedback, PeerFeedback.subject_id, PeerFeedback.released_at, (PeerFeedback.role == PEER_ROLE,)),
        (Recognition, Recognition.to_person_id, Recognition.created_at, ()),
        (CheckIn, CheckIn.person_id, CheckIn.answered_at, ()),
    ]
    out: dict[Any, int] = {}
    for model, person_col, at, extra in sources:
        stmt = (
            select(func.count().label("n"))
            .select_from(model)
            .join(Person, Person.id == person_col)
            .where(*scope.where(), Person.active.is_(True), at >= window.start, at < window.end, *extra)
        )
        stmt, _ = _grouped(stmt, group, person_col)
        for row in await _rows(session, stmt):
            out[_key(row, group)] = out.get(_key(row, group), 0) + int(row.n or 0)
    return out


async def daily_active(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    *,
    workdays: Collection[date] | None = None,
    kept_since: datetime | None = None,
) -> DailyActive:
    """The daily-active figures alone (two statements, none for a window whose events are all purged):
    what the digest shows every day."""
    days = counted_workdays(window, workdays=workdays, kept_since=kept_since)
    if not days:
        return DailyActive()
    people = await _people(session, scope, None)
    active = await _active_days(session, scope, window, None, days)
    return DailyActive(people.get(0, 0), len(days), active.get(0, 0))


async def participation(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    *,
    workdays: Collection[date] | None = None,
    kept_since: datetime | None = None,
    min_answers: int = 3,
) -> Participation:
    """All participation figures for one scope and window (eight aggregate statements)."""
    grouped = await participation_by(
        session, scope, window, None, workdays=workdays, kept_since=kept_since, min_answers=min_answers
    )
    return grouped[0]


async def participation_by(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    group: Group,
    *,
    workdays: Collection[date] | None = None,
    kept_since: datetime | None = None,
    min_answers: int = 3,
) -> dict[Any, Participation]:
    """The participation figures per person id or department id (None key = no department); ``group``
    None gives one entry under key 0, ``Levels`` entries under ``(level, id)``. ``min_answers`` is
    ``[feedback] anonymity_threshold``: fewer released answers than that in a group withhold its
    cross-department figures, and a person never gets them."""
    return await _levelled(
        session,
        group,
        lambda g: _participation_by(
            session, scope, window, g, workdays=workdays, kept_since=kept_since, min_answers=min_answers
        ),
    )


def _without_person(group: Group) -> Group | Literal[False]:
    """The grouping for cross-department figures, which are never given per person (False: none at all)."""
    if isinstance(group, Levels):
        rest = tuple(level for level in group.levels if level != "person")
        return Levels(rest) if rest else False
    return False if group == "person" else group


async def _participation_by(
    session: AsyncSession,
    scope: Scope,
    window: Window,
    group: Group,
    *,
    workdays: Collection[date] | None,
    kept_since: datetime | None,
    min_answers: int,
) -> dict[Any, Participation]:
    days = counted_workdays(window, workdays=workdays, kept_since=kept_since)
    people = await _people(session, scope, group)
    selfs = await _self_assessments(session, scope, window, group)
    reviews = await _review_actions(session, scope, window, group)
    cross_group = _without_person(group)
    cross = {} if cross_group is False else await _cross_department(session, scope, window, cross_group)
    active = await _active_days(session, scope, window, group, days)
    feedback = await _feedback_received(session, scope, window, group)
    keys: set[Any] = _company_keys(group)
    for part in (people, selfs, reviews, cross, active, feedback):
        keys.update(part)
    out: dict[Any, Participation] = {}
    for key in keys:
        answers, crossed = cross.get(key, (0, 0))
        withheld = _level_of(key, group) == "person" or 0 < answers < min_answers
        out[key] = Participation(
            self_requested=selfs.get(key, (0, 0))[0],
            self_submitted=selfs.get(key, (0, 0))[1],
            review_actions=reviews.get(key, (0, 0))[0],
            review_actions_72h=reviews.get(key, (0, 0))[1],
            peer_answers=None if withheld else answers,
            peer_cross=None if withheld else crossed,
            people=people.get(key, 0),
            workdays=len(days),
            active_days=active.get(key, 0),
            feedback=feedback.get(key, 0),
            weeks=window.days / 7,
        )
    return out


def _company_keys(group: Group) -> set[Any]:
    """The keys a result always has: the company's, which exists even when nothing counted."""
    if group is None:
        return {0}
    if isinstance(group, Levels) and "company" in group.levels:
        return {("company", 0)}
    return set()


# ------------------------------------------------------------------ the goal tree (issue 17)


@dataclass(frozen=True)
class CarryBase:
    """The cycle a carry-over share looks back at (the one before the cycle in question) and when it ended
    (``storage.queries.carry.ended_at``: its close, or now while it is closing)."""

    cycle_id: int
    ended_at: datetime


@dataclass
class GoalFigures:
    """Alignment and carry-over of one cycle in a scope (definitions in ``docs/metrics.md``)."""

    goals: int = 0
    """Person-level goals of the cycle owned by people in scope."""
    aligned: int = 0
    """Of those, the goals with a parent objective."""
    carry_base: int | None = None
    """Open action items plus unfinished key results at the previous cycle's end; None: no previous cycle."""
    carried: int = 0
    """Of those, the ones carried into this cycle's goals."""

    @property
    def alignment_rate(self) -> float | None:
        return _ratio(self.aligned, self.goals)

    @property
    def carry_over_share(self) -> float | None:
        return None if self.carry_base is None else _ratio(self.carried, self.carry_base)

    def as_dict(self) -> dict[str, Any]:
        return {
            "goals": self.goals,
            "goals_aligned": self.aligned,
            "alignment_rate": _round(self.alignment_rate),
            "carry_over_base": self.carry_base,
            "carried_over": self.carried,
            "carry_over_share": _round(self.carry_over_share),
        }


async def _alignment(
    session: AsyncSession, scope: Scope, cycle_id: int, group: Group, level: str
) -> dict[Any, tuple[int, int]]:
    aligned = func.sum(case((Goal.parent_id.is_not(None), 1), else_=0))
    stmt = (
        select(func.count().label("n"), aligned.label("aligned"))
        .select_from(Goal)
        .join(Person, Person.id == Goal.person_id)
        .where(*scope.where(), Goal.cycle_id == cycle_id, Goal.level == level)
    )
    stmt, _ = _grouped(stmt, group, Goal.person_id)
    return {_key(row, group): (int(row.n or 0), int(row.aligned or 0)) for row in await _rows(session, stmt)}


async def _carry_base(
    session: AsyncSession, scope: Scope, previous: CarryBase, group: Group, level: str
) -> dict[Any, int]:
    """Unfinished key results of the previous cycle's person goals, and the action items of its participants
    open at its end, per group (two statements)."""
    out: dict[Any, int] = {}
    krs = (
        select(func.count().label("n"))
        .select_from(KeyResult)
        .join(Goal, Goal.id == KeyResult.goal_id)
        .join(Person, Person.id == Goal.person_id)
        .where(
            *scope.where(), Goal.cycle_id == previous.cycle_id, Goal.level == level, KeyResult.progress < 1.0
        )
    )
    members = select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == previous.cycle_id)
    items = (
        select(func.count().label("n"))
        .select_from(ActionItem)
        .join(Person, Person.id == ActionItem.owner_id)
        .where(*scope.where(), ActionItem.owner_id.in_(members), open_at(previous.ended_at))
    )
    for stmt, person_col in ((krs, Goal.person_id), (items, ActionItem.owner_id)):
        grouped, _ = _grouped(stmt, group, person_col)
        for row in await _rows(session, grouped):
            out[_key(row, group)] = out.get(_key(row, group), 0) + int(row.n or 0)
    return out


async def _carried(
    session: AsyncSession, scope: Scope, cycle_id: int, previous: CarryBase, group: Group
) -> dict[Any, int]:
    """Items carried from the previous cycle into this one: the carry's audit rows (one per click, on the
    participant), whose detail lists what it carried."""
    rows = await session.execute(
        select(Person.id, Person.department_id, AuditLog.detail)
        .select_from(AuditLog)
        .join(CycleParticipant, CycleParticipant.id == AuditLog.entity_id)
        .join(Person, Person.id == CycleParticipant.person_id)
        .where(
            *scope.where(),
            AuditLog.action == CARRIED,
            AuditLog.entity == "cycle_participant",
            CycleParticipant.cycle_id == cycle_id,
        )
    )
    out: dict[Any, int] = {}
    for person_id, department_id, detail in rows:
        if not isinstance(detail, dict) or detail.get("from_cycle_id") != previous.cycle_id:
            continue
        n = sum(
            len(v) for v in (detail.get("key_results"), detail.get("action_items")) if isinstance(v, list)
        )
        for key in _keys_of(group, person_id, department_id):
            out[key] = out.get(key, 0) + n
    return out


def _keys_of(group: Group, person_id: int, department_id: int | None) -> list[Any]:
    """The keys one person's row counts under in ``group`` (grouping done here, not in SQL)."""
    plain = {"person": person_id, "department": department_id, "company": 0}
    if isinstance(group, Levels):
        return [(level, plain[level]) for level in group.levels]
    return [plain["company" if group is None else group]]


async def goal_figures(
    session: AsyncSession, scope: Scope, cycle_id: int, *, level: str, previous: CarryBase | None
) -> GoalFigures:
    """Alignment rate and carry-over share of one cycle in one scope (at most four statements)."""
    return (await goal_figures_by(session, scope, cycle_id, None, level=level, previous=previous))[0]


async def goal_figures_by(
    session: AsyncSession,
    scope: Scope,
    cycle_id: int,
    group: Group,
    *,
    level: str,
    previous: CarryBase | None,
) -> dict[Any, GoalFigures]:
    """The goal figures per person id or department id (None key = no department); ``group`` None gives one
    entry under key 0. ``level`` is the person level's word (``bot.core.status.GoalLevel.PERSON``);
    ``previous`` the cycle the carry-over share looks back at (None: there is none, and no share)."""
    return await _levelled(
        session,
        group,
        lambda g: _goal_figures_by(session, scope, cycle_id, g, level=level, previous=previous),
    )


async def _goal_figures_by(
    session: AsyncSession,
    scope: Scope,
    cycle_id: int,
    group: Group,
    *,
    level: str,
    previous: CarryBase | None,
) -> dict[Any, GoalFigures]:
    aligned = await _alignment(session, scope, cycle_id, group, level)
    base = await _carry_base(session, scope, previous, group, level) if previous is not None else {}
    carried = await _carried(session, scope, cycle_id, previous, group) if previous is not None else {}
    keys: set[Any] = _company_keys(group)
    keys.update(aligned, base, carried)
    return {
        key: GoalFigures(
            goals=aligned.get(key, (0, 0))[0],
            aligned=aligned.get(key, (0, 0))[1],
            carry_base=None if previous is None else base.get(key, 0),
            carried=carried.get(key, 0),
        )
        for key in keys
    }
