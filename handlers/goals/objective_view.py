"""What the goal-tree views share (``/okr``, ``/okr tree``, one objective's card): which cycle "my goals"
are in, how far along the cycle is and what colour a progress is, the roll-up a set of objectives needs, and
an objective as a card shows it (its key results, where it aligns, what is aligned below it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.status import ANSWERABLE_CYCLE, GoalLevel, GoalVisibility
from cards.catalogue import Translator
from cards.kr_values import KrFacts, KrReading
from cards.okr import KrLine, ObjectiveView
from handlers.goals.progress import Track, expected_share, track
from handlers.goals.rollup import RollUp, cycle_roll_up, subtree_roll_up
from storage.models import Cycle, Department, Person
from storage.queries import cycles as cq
from storage.queries import goal_tree as gq
from storage.queries.goal_comments import comment_counts

HIDING = (GoalVisibility.DEPARTMENT, GoalVisibility.MANAGER)
"""The visibilities under which a colleague's goals can be out of sight."""


async def current_cycle(session: AsyncSession, person: Person) -> Cycle | None:
    """The cycle ``person``'s goals are in now: the latest active (or closing) cycle they take part in, else
    the workspace's latest (a leader who sets company objectives need not be a participant)."""
    found = await cq.current_participation(session, person.id, ANSWERABLE_CYCLE)
    if found is not None:
        return found[0]
    return await cq.latest_active_cycle(session, person.workspace_id, ANSWERABLE_CYCLE)


@dataclass(frozen=True)
class Pace:
    """The share of the cycle that has passed today, and the ``[goals]`` gaps that colour a progress."""

    expected: float
    at_risk_gap: float
    off_track_gap: float

    def track(self, progress: float) -> Track:
        return track(progress, self.expected, at_risk_gap=self.at_risk_gap, off_track_gap=self.off_track_gap)


def pace_of(ctx: Context, cycle: Cycle) -> Pace:
    goals = ctx.settings.goals
    return Pace(
        expected_share(cycle.starts_on, cycle.ends_on, ctx.today()), goals.at_risk_gap, goals.off_track_gap
    )


async def roll_up_for(session: AsyncSession, cycle_id: int, roots: Sequence[gq.GoalRow]) -> RollUp:
    """The roll-up that covers ``roots``: the whole cycle's when a company objective is among them (its
    subtree is nearly everyone), otherwise only the part of the tree below them."""
    if any(r.level == GoalLevel.COMPANY for r in roots):
        return await cycle_roll_up(session, cycle_id)
    return await subtree_roll_up(session, cycle_id, [r.id for r in roots])


async def parent_labels(
    session: AsyncSession, t: Translator, parent_ids: Iterable[int | None]
) -> dict[int, str]:
    """ "研发部目标 1（王经理）" for each parent objective."""
    rows = await gq.goal_rows(session, [p for p in parent_ids if p is not None])
    return {gid: t("okr.parent", title=r.objective, owner=r.owner_name) for gid, r in rows.items()}


def kr_line(kr: gq.KeyResultRow) -> KrLine:
    facts = KrFacts(
        id=kr.id,
        title=kr.title,
        kind=kr.kind,
        unit=kr.unit,
        target=kr.target,
        target_date=kr.target_date,
        milestones=tuple(name for name, _ in kr.milestones),
    )
    reading = KrReading(
        value=kr.current,
        done=kr.done,
        milestones_done=sum(1 for _, done in kr.milestones if done) or None,
        progress=kr.progress,
    )
    return KrLine(facts, reading)


async def objective_views(
    session: AsyncSession, t: Translator, goals: Sequence[gq.GoalRow], rollup: RollUp, pace: Pace
) -> list[ObjectiveView]:
    """``goals`` as cards show them: rolled-up progress and its colour, key results, parent, comments."""
    ids = [g.id for g in goals]
    krs = await gq.key_results_of(session, ids)
    parents = await parent_labels(session, t, [g.parent_id for g in goals])
    comments = await comment_counts(session, ids)
    out = []
    for g in goals:
        progress = rollup.progress(g.id, g.own)
        out.append(
            ObjectiveView(
                goal_id=g.id,
                title=g.objective,
                level=g.level,
                weight=g.weight,
                progress=progress,
                own=g.own,
                track=pace.track(progress),
                krs=tuple(kr_line(k) for k in krs.get(g.id, [])),
                parent=parents.get(g.parent_id) if g.parent_id is not None else None,
                aligned=rollup.count_below(g.id),
                comments=comments[g.id].total if g.id in comments else 0,
            )
        )
    return out


async def not_allowed_text(ctx: Context, cycle: Cycle, owner: Person) -> str:
    """Why the viewer may not see ``owner``'s goals, who may, and what to do instead."""
    department = "—"
    if owner.department_id is not None:
        dept = await ctx.session.get(Department, owner.department_id)
        department = dept.name if dept is not None else department
    visibility = cycle.goal_visibility if cycle.goal_visibility in HIDING else GoalVisibility.MANAGER
    return ctx.t(f"okr.not_allowed.{visibility}", code=cycle.code, name=owner.name, department=department)
