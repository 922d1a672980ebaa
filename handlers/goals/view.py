"""``/okr`` (``/目标树``): my goals in my current cycle, a colleague's with ``/okr @name``, the tree with
``/okr tree [department]`` (``handlers.goals.tree``), and, for HR admins, ``/okr visibility
company|department|manager``: who may see personal goals in the current cycle (audited).

A colleague's goals are shown when ``bot.core.people.may_see_goals`` allows it; otherwise the refusal says
what the cycle's visibility is, who may see them, and what to do instead. Their company and department
objectives (a leader's, a department head's) are open to everyone and shown either way.
"""

from __future__ import annotations

from bot.core.context import Context, Reply
from bot.core.people import find_by_mention, is_hr_admin, may_see_goals
from bot.core.router import Router
from bot.core.status import GoalLevel, GoalVisibility
from cards.goal_actions import OkrView
from cards.okr import PersonGoalsView, person_goals_card
from handlers.goals.adjust import may_adjust_now
from handlers.goals.objective_view import (
    current_cycle,
    not_allowed_text,
    objective_views,
    pace_of,
    roll_up_for,
)
from handlers.goals.progress import weighted
from handlers.goals.tree import tree_reply
from storage.models import Cycle, Person
from storage.queries import goal_tree as gq

router = Router()

TREE_WORDS = frozenset({"tree", "树", "目标树"})
VISIBILITY_WORDS = frozenset({"visibility", "可见范围", "可见"})
VISIBILITY_VALUES = {
    "company": GoalVisibility.COMPANY,
    "公司": GoalVisibility.COMPANY,
    "全公司": GoalVisibility.COMPANY,
    "department": GoalVisibility.DEPARTMENT,
    "部门": GoalVisibility.DEPARTMENT,
    "同部门": GoalVisibility.DEPARTMENT,
    "manager": GoalVisibility.MANAGER,
    "经理": GoalVisibility.MANAGER,
    "上级": GoalVisibility.MANAGER,
}


@router.command("okr", "目标树")
async def okr_command(ctx: Context, args: str) -> Reply:
    words = args.split()
    first = words[0].lower() if words else ""
    if first in TREE_WORDS:
        return await tree_reply(ctx, " ".join(words[1:]))
    if first in VISIBILITY_WORDS:
        return await set_visibility(ctx, words[1:])
    person = ctx.person
    if words:
        matches = await find_by_mention(ctx.session, ctx.workspace.id, args.strip())
        if len(matches) != 1:
            raise ctx.refuse("okr.no_such_person", name=args.strip().lstrip("@＠")[:40])
        person = matches[0]
    cycle = await current_cycle(ctx.session, person)
    if cycle is None:
        raise ctx.refuse("okr.no_cycle")
    return await goals_reply(ctx, cycle, person)


@router.action(OkrView)
async def open_goals(ctx: Context, payload: OkrView) -> Reply:
    cycle = await ctx.session.get(Cycle, payload.cycle_id)
    person = await ctx.session.get(Person, payload.person_id)
    if (
        cycle is None
        or person is None
        or cycle.workspace_id != ctx.workspace.id
        or person.workspace_id != ctx.workspace.id
    ):
        raise ctx.refuse("common.invalid_action")
    return await goals_reply(ctx, cycle, person)


async def goals_reply(ctx: Context, cycle: Cycle, person: Person) -> Reply:
    """``person``'s goals in ``cycle`` as the viewer may see them, or a refusal saying why not."""
    own = person.id == ctx.person.id
    goals = await gq.person_goals(ctx.session, cycle.id, person.id)
    hidden = 0
    if not own and not await may_see_goals(ctx.session, ctx.person, person, cycle):
        shown = [g for g in goals if g.level in (GoalLevel.COMPANY, GoalLevel.DEPARTMENT)]
        hidden = len(goals) - len(shown)
        if not shown:
            reason = await not_allowed_text(ctx, cycle, person)
            raise ctx.refuse("okr.goals_not_visible", name=person.name, reason=reason)
        goals = shown
    pace = pace_of(ctx, cycle)
    rollup = await roll_up_for(ctx.session, cycle.id, goals)
    objectives = await objective_views(ctx.session, ctx.t, goals, rollup, pace)
    person_level = [o for o in objectives if o.level == GoalLevel.PERSON]
    overall = weighted((o.progress, float(o.weight)) for o in person_level) if person_level else None
    view = PersonGoalsView(
        cycle_code=cycle.code,
        person_name=person.name,
        own=own,
        expected=pace.expected,
        objectives=tuple(objectives),
        overall=overall,
        overall_track=pace.track(overall) if overall is not None else None,
        hidden=hidden,
        hidden_reason=await not_allowed_text(ctx, cycle, person) if hidden else "",
        adjust_cycle_id=cycle.id if own and await may_adjust_now(ctx, cycle) else None,
    )
    if not own:
        ctx.audit("okr.viewed", "person", person.id, cycle=cycle.code, hidden=hidden)
    return Reply(card=person_goals_card(ctx.t, view))


async def set_visibility(ctx: Context, words: list[str]) -> Reply:
    """``/okr visibility department``: HR admins set who may see personal goals in the current cycle."""
    cycle = await current_cycle(ctx.session, ctx.person)
    if cycle is None:
        raise ctx.refuse("okr.no_cycle")
    label = ctx.t(f"okr.visibility.{cycle.goal_visibility}")
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("okr.visibility_only_hr", code=cycle.code, label=label)
    wanted = VISIBILITY_VALUES.get(words[0].lower()) if len(words) == 1 else None
    if wanted is None:
        raise ctx.refuse("okr.visibility_usage", code=cycle.code, label=label)
    new_label = ctx.t(f"okr.visibility.{wanted}")
    if cycle.goal_visibility == wanted:
        return Reply(toast=ctx.t("okr.visibility_same", code=cycle.code, label=new_label), toast_kind="info")
    before = cycle.goal_visibility
    cycle.goal_visibility = wanted
    ctx.audit("cycle.goal_visibility", "cycle", cycle.id, before=before, after=str(wanted))
    return Reply(toast=ctx.t("okr.visibility_set", code=cycle.code, label=new_label))
