"""The schema for the whole domain, as SQLAlchemy 2.0 typed ORM classes.

Natural unique keys are part of the design, not decoration: they are what makes retries, double taps,
two replicas and a scheduler that fires twice harmless (see DESIGN.md, "Delivery guarantees").
Relationships are avoided on purpose; queries live in ``storage.queries`` and join explicitly.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


def created_col() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Workspace(Base):
    """One messenger app installation (a WeCom corp app, a Feishu app, a DingTalk app, or the simulator)."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "app_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = created_col()


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("workspace_id", "platform_dept_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform_dept_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    # people.id, deliberately without a foreign key: departments and people reference each other.
    head_id: Mapped[int | None] = mapped_column(BigId, default=None)
    hrbp_id: Mapped[int | None] = mapped_column(BigId, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(Base):
    """Everyone the bot talks to. Roles, comma-separated: employee, manager, hrbp, hr_admin, leader."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("workspace_id", "platform_user_id"),
        Index("ix_people_manager", "manager_id"),
        Index("ix_people_department", "department_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform_user_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    hrbp_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    roles: Mapped[str] = mapped_column(String(200), default="employee")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    locale: Mapped[str] = mapped_column(String(10), default="zh-CN")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    leave_from: Mapped[date | None] = mapped_column(Date, default=None)
    leave_until: Mapped[date | None] = mapped_column(Date, default=None)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    cadence_weeks: Mapped[int | None] = mapped_column(Integer, default=None)
    checkin_weekday: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = created_col()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def has_role(self, role: str) -> bool:
        return role in self.role_set

    @property
    def role_set(self) -> set[str]:
        return {r.strip() for r in self.roles.split(",") if r.strip()}


class Cycle(Base):
    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft active closing closed cancelled
    scope: Mapped[list[Any]] = mapped_column(default=list)  # department ids; empty = whole company
    starts_on: Mapped[date | None] = mapped_column(Date, default=None)
    ends_on: Mapped[date | None] = mapped_column(Date, default=None)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()
    # 0005 (issue 20 #1): the close, also audited as ``cycle.closed``; status gains ``closing``.
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    close_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    """What became of the items still open at the close: ``carry_over`` or ``cancel``."""
    # 0011 (issue 17 item 3): who may see a person's goals: company (default), department or manager.
    goal_visibility: Mapped[str] = mapped_column(String(16), default="company")
    # 0015 (issue 22 #3): a kickoff still being written goes on after this person id; None once complete.
    launch_after: Mapped[int | None] = mapped_column(BigInteger, default=None)


class CycleParticipant(Base):
    __tablename__ = "cycle_participants"
    __table_args__ = (UniqueConstraint("cycle_id", "person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    goals_status: Mapped[str] = mapped_column(String(16), default="none")  # none/submitted/confirmed/returned
    goals_comment: Mapped[str | None] = mapped_column(Text, default=None)


class Goal(Base):
    """An objective in a cycle's goal tree (issue 17): a company, department or person objective.

    ``person_id`` is the owner (for a company objective the leader or HR admin who set it); ``parent_id`` is
    the objective it aligns to (none = unaligned, counted by the alignment rate). ``own_progress`` (0..1) is
    the weighted progress of its own key results, kept current whenever a key result changes, so rolling
    the tree up never reads key results. ``key_result`` is the free text of the pre-0011 single key result,
    kept for history; key results live in ``key_results``.
    """

    __tablename__ = "goals"
    __table_args__ = (
        Index("ix_goals_cycle_person", "cycle_id", "person_id"),
        # 0011: children by parent; with weight and progress, the roll-up's GROUP BY reads only the index
        Index("ix_goals_cycle_parent", "cycle_id", "parent_id", "weight", "own_progress"),
        Index("ix_goals_cycle_level", "cycle_id", "level", "department_id"),  # 0011: company/department lists
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("goals.id"), default=None)
    position: Mapped[int] = mapped_column(Integer, default=0)
    objective: Mapped[str] = mapped_column(Text)
    key_result: Mapped[str] = mapped_column(Text, default="")
    weight: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_col()
    # 0011 (issue 17): the goal tree.
    level: Mapped[str] = mapped_column(String(16), default="person")  # company, department, person
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    own_progress: Mapped[float] = mapped_column(Float, default=0.0)
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("goals.id"), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class KeyResult(Base):
    """A measurable key result of an objective (issue 17 item 1).

    ``kind`` says what the target is: ``number`` (from ``start_value`` to ``target_value`` in ``unit``; a
    target below the start is a decrease), ``date`` (done by ``target_date``) or ``deliverable`` (a named
    work product, done or not; milestones give partial progress). ``progress`` (0..1) is computed from the
    current value, never typed, and cached here; ``weight`` is the share within the objective (0 = equal).
    """

    __tablename__ = "key_results"
    __table_args__ = (Index("ix_key_results_goal", "goal_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="number")  # number, date, deliverable
    unit: Mapped[str | None] = mapped_column(String(32), default=None)
    start_value: Mapped[float] = mapped_column(Float, default=0.0)
    target_value: Mapped[float | None] = mapped_column(Float, default=None)
    target_date: Mapped[date | None] = mapped_column(Date, default=None)
    current_value: Mapped[float | None] = mapped_column(Float, default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    deadline: Mapped[date | None] = mapped_column(Date, default=None)
    milestones: Mapped[list[Any]] = mapped_column(default=list)  # [{"name", "due": ISO date|None, "done"}]
    weight: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("key_results.id"), default=None)
    # action_items.id, without a foreign key: action items reference key results already.
    from_action_item_id: Mapped[int | None] = mapped_column(BigId, default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class KeyResultValue(Base):
    """Every value a key result ever had, with its source, so a report can show the number on any date and
    an external system's push is told apart from a check-in answer."""

    __tablename__ = "kr_values"
    __table_args__ = (Index("ix_kr_values_kr_recorded", "key_result_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id", ondelete="CASCADE"))
    value: Mapped[float | None] = mapped_column(Float, default=None)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(16))  # checkin, owner, manager, import, api
    source_id: Mapped[int | None] = mapped_column(BigId, default=None)  # e.g. the check-in id
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class GoalVersion(Base):
    """One version of a person's goals in a cycle (issue 17 item 6): version 1 is what the manager
    confirmed; each monthly adjustment is a proposal that the manager approves (it then takes effect from
    ``effective_from``) or returns. ``content`` is the whole set of objectives and key results as proposed,
    so what was in force on any date can be shown without replaying edits."""

    __tablename__ = "goal_versions"
    __table_args__ = (
        UniqueConstraint("cycle_id", "person_id", "version"),
        Index("ix_goal_versions_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(16), default="proposed"
    )  # proposed, approved, returned, withdrawn
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    effective_from: Mapped[datetime | None] = mapped_column(default=None)


class GoalComment(Base):
    """A comment on a goal, or a challenge of its target (向上质疑, ``direction`` up or down) that the owner's
    manager answers (issue 17 item 4)."""

    __tablename__ = "goal_comments"
    __table_args__ = (Index("ix_goal_comments_goal", "goal_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(16), default="comment")  # comment, challenge
    direction: Mapped[str | None] = mapped_column(String(8), default=None)  # up, down (challenges)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open; answered challenge: kept, adjust
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()


class KeyResultRhythm(Base):
    """A recurring checkable action bound to a key result, "每周三 10:00 前上传客户拜访照片".

    The scheduler opens an evidence request for ``person_id`` on ``weekday`` (0 = Monday) in their
    zone, due by ``due_time`` (HH:MM); the request and its evidence carry the key result.
    """

    __tablename__ = "kr_rhythms"
    __table_args__ = (Index("ix_kr_rhythms_active_weekday", "active", "weekday"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    text: Mapped[str] = mapped_column(Text)
    weekday: Mapped[int] = mapped_column(Integer)
    due_time: Mapped[str] = mapped_column(String(5), default="10:00")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    created_at: Mapped[datetime] = created_col()


class CheckIn(Base):
    """One check-in per person per period (period = the ISO date of the scheduled day)."""

    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("person_id", "period"),
        Index("ix_checkins_status_due", "status", "due_at"),
        Index("ix_checkins_period", "period"),
        Index("ix_checkins_due_person_status", "due_at", "person_id", "status"),  # 0002: digest/report ranges
        Index("ix_checkins_answered_at", "answered_at"),  # 0010: feedback frequency
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"), default=None)
    period: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # open, submitted, acknowledged, followup, missed, skipped
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)  # goal id -> percent
    obstacles: Mapped[str | None] = mapped_column(Text, default=None)
    support: Mapped[str | None] = mapped_column(Text, default=None)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    manager_comment: Mapped[str | None] = mapped_column(Text, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()


class Review321(Base):
    """The monthly 3-2-1 review; period is ``YYYY-MM``."""

    __tablename__ = "reviews_321"
    __table_args__ = (UniqueConstraint("person_id", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    period: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, submitted, confirmed, missed
    solid_action: Mapped[str | None] = mapped_column(Text, default=None)
    change_brought: Mapped[str | None] = mapped_column(Text, default=None)
    blocker: Mapped[str | None] = mapped_column(Text, default=None)
    new_action: Mapped[str | None] = mapped_column(Text, default=None)
    new_action_deadline: Mapped[date | None] = mapped_column(Date, default=None)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    action_item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), default=None)
    created_at: Mapped[datetime] = created_col()


class ActionItem(Base):
    __tablename__ = "action_items"
    __table_args__ = (
        Index("ix_action_items_status_deadline", "status", "deadline"),
        Index("ix_action_items_owner", "owner_id"),
        Index("ix_action_items_deadline_owner", "deadline", "owner_id", "status"),  # 0002: digest/report
        Index("ix_action_items_created_owner", "created_at", "owner_id"),  # 0002: response time
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    acceptor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    source: Mapped[str] = mapped_column(String(16))  # review, checkin, evidence, manual
    source_id: Mapped[int | None] = mapped_column(BigId, default=None)
    deliverable: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, done, accepted, returned, closed
    evidence_required: Mapped[bool] = mapped_column(Boolean, default=False)
    action_type: Mapped[str | None] = mapped_column(String(64), default=None)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    key_result_id: Mapped[int | None] = mapped_column(ForeignKey("key_results.id"), default=None)  # 0011
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()


class EvidenceRequest(Base):
    __tablename__ = "evidence_requests"
    __table_args__ = (Index("ix_evidence_requests_person_status", "person_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    action_item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), default=None)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, fulfilled, expired
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(default=utcnow)
    key_result_id: Mapped[int | None] = mapped_column(ForeignKey("key_results.id"), default=None)  # 0011
    rhythm_id: Mapped[int | None] = mapped_column(ForeignKey("kr_rhythms.id"), default=None)  # 0011


class Evidence(Base):
    """A photo (bytes on disk under ``[media] dir``, addressed by sha256) plus who/when/which action."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_action", "action_item_id"), Index("ix_evidence_person", "person_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    action_item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), default=None)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_requests.id"), default=None)
    file_path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    platform_media_ref: Mapped[str] = mapped_column(String(500), default="")
    rating: Mapped[str | None] = mapped_column(String(16), default=None)  # meets, improve, support
    rated_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    rated_at: Mapped[datetime | None] = mapped_column(default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    key_result_id: Mapped[int | None] = mapped_column(ForeignKey("key_results.id"), default=None)  # 0011


class Recognition(Base):
    __tablename__ = "recognitions"
    __table_args__ = (  # 0002: kudos totals in the digest and per person
        Index("ix_recognitions_created_to", "created_at", "to_person_id"),
        Index("ix_recognitions_to", "to_person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    to_person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    reason: Mapped[str] = mapped_column(Text)
    points: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_col()


class ScheduledSend(Base):
    """The scheduler's idempotency ledger: one row per (flow, person, period), whatever fires twice."""

    __tablename__ = "scheduled_sends"
    __table_args__ = (
        UniqueConstraint("flow", "person_id", "period"),
        Index("ix_scheduled_sends_created_at", "created_at"),  # 0004 (#12): retention by age
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    period: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="sent")  # sent, missed, skipped, snoozed
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = created_col()


class ConversationState(Base):
    """ "Awaiting the next text/photo from this person for record X" — one row per person, with an expiry."""

    __tablename__ = "conversation_states"
    __table_args__ = (UniqueConstraint("person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[int] = mapped_column(BigId)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime] = mapped_column()


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as the domain change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        # 0014 (issue 22 #2): with the id, a claim walks the index in its ORDER BY and stops at its LIMIT
        Index("ix_outbox_status_next", "status", "next_attempt_at", "id"),
        Index("ix_outbox_sent_at", "sent_at"),  # 0004 (#12): compacting and pruning sent rows by age
        Index(
            "ix_outbox_card_key", "card_key"
        ),  # 0014 (issue 22 #2): supersede finds a queued card by its key
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    platform: Mapped[str] = mapped_column(String(16))
    op: Mapped[str] = mapped_column(String(16), default="send")  # send, update
    recipients: Mapped[list[Any]] = mapped_column(default=list)  # platform user ids
    card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    card_key: Mapped[str | None] = mapped_column(String(100), default=None)
    target_ref: Mapped[str | None] = mapped_column(String(500), default=None)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending sending sent dead unknown
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    attempt_started_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the earliest platform call that may have delivered this row began (issue 16 #10): a resend
    with the same idempotency key is only safe within the platform's dedupe window from then (outbox.py)."""
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_col()
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class CardMessage(Base):
    """Where a card landed on the platform, so it can be updated in place later."""

    __tablename__ = "card_messages"
    __table_args__ = (
        UniqueConstraint("card_key", "platform_user_id", "platform"),
        Index("ix_card_messages_created_at", "created_at"),  # 0004 (#12): retention by age
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    card_key: Mapped[str] = mapped_column(String(100))
    platform_user_id: Mapped[str] = mapped_column(String(128))
    message_ref: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_col()


class InboundEvent(Base):
    """Every platform event we processed, unique per (platform, event id): a retry finds its stored answer."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("platform", "event_id"),
        Index("ix_inbound_events_received_at", "received_at"),  # 0004 (#12): pruning past the replay window
        Index("ix_inbound_events_person_received", "person_id", "received_at"),  # 0010: a team's active days
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    answer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = created_col()


class SignatureClaim(Base):
    """A platform signature that does not cover the body (DingTalk robot: ``timestamp`` + ``sign``), with the
    first message id it came with (issue 16 #5, 0004). The same pair with another id is a replay; with the
    same id, a platform retry. A row is worthless once the signature is outside the replay window
    (``expires_at``) and is deleted then, so the table holds at most one window's worth of messages."""

    __tablename__ = "signature_claims"
    __table_args__ = (Index("ix_signature_claims_expires_at", "expires_at"),)

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 of the signed values, hex: the signature itself is not kept."""
    first_id: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_action_at", "action", "at"),  # 0002: progress-gap risks in the digest
        Index("ix_audit_at", "at"),  # 0004 (#12): archiving by age
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = created_col()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(BigId, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


# ---------------------------------------------------------------- Flows III: feedback, grades, engagement


class SelfAssessment(Base):
    """One per person and cycle: a 1-5 self score and one concrete example per goal, plus self scores on the
    peer-feedback dimensions (``answers = {"goals": {goal_id: {"score", "example"}}, "dims": {dim: n}}``)."""

    __tablename__ = "self_assessments"
    __table_args__ = (UniqueConstraint("cycle_id", "person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, submitted
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()


class PeerFeedback(Base):
    """A nomination and, later, its answer in one row: who (``rater_id``) gives feedback on whom.

    ``rater_id`` exists only to route the card, stop double answers and check the clicker; it is never shown
    to the subject, and the table is deliberately left out of ``EXPORTABLE_TABLES``. ``role`` is ``peer`` or
    ``manager`` (the manager's own dimension scores, which never count towards the anonymity threshold).
    """

    __tablename__ = "peer_feedback"
    __table_args__ = (
        UniqueConstraint("cycle_id", "subject_id", "rater_id"),
        Index("ix_peer_feedback_rater_status", "rater_id", "status"),
        Index("ix_peer_feedback_released_at", "released_at"),  # 0010: participation figures
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(String(16), default="peer")  # peer, manager
    nominated_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    """proposed (waiting for the manager), requested, answered, dropped (taken off the list)."""
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)  # dimension -> 1..5
    example: Mapped[str | None] = mapped_column(Text, default=None)
    requested_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_col()
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    """0004 (#2): when this answer joined the aggregate people are shown. Answers are released only in batches
    of at least the anonymity threshold, so no two shown versions differ by one rater
    (``handlers/feedback/peer_feedback.py``); until then an answer counts for nothing anyone can see."""
    vague_bounced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """0004 (#3): the vague guard already asked this rater once. Kept here, not as a per-rater audit row,
    because the audit log is exportable and must not say whose anonymous example was vague."""


class DeliverableRating(Base):
    """A star rating of a finished deliverable (``kind`` action/goal + ``ref_id``) by one rater."""

    __tablename__ = "deliverable_ratings"
    __table_args__ = (
        UniqueConstraint("kind", "ref_id", "rater_id"),
        Index("ix_deliverable_ratings_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # action, goal
    ref_id: Mapped[int] = mapped_column(BigId)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    role: Mapped[str] = mapped_column(String(16))  # acceptor, collaborator
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, submitted, expired
    completeness: Mapped[int | None] = mapped_column(Integer, default=None)
    timeliness: Mapped[int | None] = mapped_column(Integer, default=None)
    risk_disclosure: Mapped[int | None] = mapped_column(Integer, default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)


class Grade(Base):
    """The manager's proposed grade for one person in one cycle; HR releases them. Every change is in
    ``audit_log`` (``grade.proposed`` / ``grade.changed`` with who and why)."""

    __tablename__ = "grades"
    __table_args__ = (
        UniqueConstraint("cycle_id", "person_id"),
        Index("ix_grades_department", "department_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    """The department at proposal time: the calibration history must not move when people do."""
    grade: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed, locked, released
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    corrected_at: Mapped[datetime | None] = mapped_column(default=None)
    """HR's last correction after release (issue 20): the appeal window restarts from it."""


class TeamSetting(Base):
    """A manager's settings for their direct reports; None means "the configured default"."""

    __tablename__ = "team_settings"
    __table_args__ = (UniqueConstraint("manager_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    cadence_weeks: Mapped[int | None] = mapped_column(Integer, default=None)
    checkin_weekday: Mapped[int | None] = mapped_column(Integer, default=None)
    answer_window_hours: Mapped[int | None] = mapped_column(Integer, default=None)
    mention_nonresponders: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuietHours(Base):
    """A person's quiet hours, local wall-clock ``HH:MM``; a window may span midnight (22:00-08:00)."""

    __tablename__ = "quiet_hours"
    __table_args__ = (UniqueConstraint("person_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    starts: Mapped[str] = mapped_column(String(5))
    ends: Mapped[str] = mapped_column(String(5))


EXPORTABLE_TABLES: dict[str, type[Base]] = {
    cls.__tablename__: cls
    for cls in (
        Workspace,
        Department,
        Person,
        Cycle,
        CycleParticipant,
        Goal,
        CheckIn,
        Review321,
        ActionItem,
        EvidenceRequest,
        Evidence,
        Recognition,
        ScheduledSend,
        OutboxMessage,
        InboundEvent,
        AuditLog,
        SelfAssessment,
        DeliverableRating,
        Grade,
        TeamSetting,
        QuietHours,
    )
}


# ---------------------------------------------------------------- issue 20: grade appeals


class GradeAppeal(Base):
    """An employee contesting a released grade, and the HRBP's decision (uphold or change, with a reason).

    ``open_grade_id`` is the grade's id while the appeal is open and NULL once it is decided or withdrawn:
    a unique column that NULLs do not collide in, so "one open appeal per grade" holds under two taps and
    two replicas on SQLite and PostgreSQL alike. Every step is also in ``audit_log`` (``grade.appeal*``)."""

    __tablename__ = "grade_appeals"
    __table_args__ = (
        UniqueConstraint("open_grade_id"),
        Index("ix_grade_appeals_person", "person_id", "cycle_id"),
        Index("ix_grade_appeals_cycle", "cycle_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id", ondelete="CASCADE"))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    open_grade_id: Mapped[int | None] = mapped_column(BigId, default=None)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, upheld, changed, withdrawn
    grade_before: Mapped[str] = mapped_column(String(8))
    """The grade the person contested, as it was when they appealed."""
    grade_after: Mapped[str | None] = mapped_column(String(8), default=None)
    """The grade after the decision (the same as before when upheld); None while open or withdrawn."""
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = created_col()
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


EXPORTABLE_TABLES[GradeAppeal.__tablename__] = GradeAppeal


# ---------------------------------------------------------------- issue 20: results (HR's flags)


class ResultFlag(Base):
    """HR's promotion or high-potential mark on one person in one cycle, exported with the results.

    One row per (cycle, person, kind), so a second tap or a second replica cannot mark twice; taking a flag
    back deletes the row. Who set or took it back, and when, is also in ``audit_log`` (``result.flag_set`` /
    ``result.flag_unset``), which keeps the history the row alone does not."""

    __tablename__ = "result_flags"
    __table_args__ = (UniqueConstraint("cycle_id", "person_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(16))  # promotion, high_potential
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    set_at: Mapped[datetime] = created_col()


EXPORTABLE_TABLES[ResultFlag.__tablename__] = ResultFlag


# ---------------------------------------------------------------- issue 20: monthly growth snapshots


class Snapshot(Base):
    """One person's monthly growth snapshot: the previous month's figures as they were computed on the
    first workday (``figures``, JSON), and the image the card showed. (person, month) is the natural key:
    a second sweep, a second replica or a retry finds the row and sends nothing. ``status`` says whether the
    card went out (``sent``) or not (``skipped`` on leave, ``missed`` past the catch-up horizon); the figures
    are kept either way so ``/snapshot`` can show them."""

    __tablename__ = "snapshots"
    __table_args__ = (
        UniqueConstraint("person_id", "month"),
        Index("ix_snapshots_month", "month"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    """The month reported on, ``2026-09`` (sent on the first workday of October)."""
    status: Mapped[str] = mapped_column(String(16), default="sent")
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    media_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = created_col()


EXPORTABLE_TABLES[Snapshot.__tablename__] = Snapshot


# ---------------------------------------------------------------- issue 20: keys the service makes itself


class ServiceSecret(Base):
    """A random key the service made for itself on first use (e.g. ``snapshot.links``, which signs the PDF
    download links), kept here so every replica and every restart signs and checks with the same one
    without configuration. Never exported (not in ``EXPORTABLE_TABLES``); a configured secret overrides it."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_col()
