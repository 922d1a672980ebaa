"""``/okr tree [department]`` and ``OkrTree``: the goal tree as a card and a picture (issue 17 item 3).

The tree under the company objectives (or one department's objectives, or one objective when drilled into)
is shown a few levels deep: the roots, their first few aligned goals (those with the most below them first),
and for one or two roots the level below that; everything else is folded into a grey "+37 人 · 111 个目标"
row and counted. Each objective shows its rolled-up progress, its colour against the time passed, how many
goals are aligned below it, and, to leaders (and a department's head), its coverage: the share of the
cycle's participants (of that department) who own at least one goal below it.

Company and department objectives are open to everyone in the workspace; a person's goal is listed only to
those who may see that person's goals (``bot.core.people.may_see_goals``), otherwise it is counted in the
folded row. The picture (``cards.okr_tree_image``) is drawn in a worker thread and stored like any chart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.core.context import Context, Reply
from bot.core.people import may_see_goal, may_see_goals, sees_goal_coverage
from bot.core.router import Router
from bot.core.status import GoalLevel
from cards.catalogue import Translator
from cards.goal_actions import OkrTree
from cards.okr import FoldedView, TreeNodeView, TreeView, folded_text, node_detail, tree_card
from cards.okr_tree_image import MAX_ROWS, TreePicture, TreeRow, render_png
from handlers.goals.kr_update import source_of
from handlers.goals.objective_view import (
    Pace,
    current_cycle,
    not_allowed_text,
    objective_views,
    pace_of,
    roll_up_for,
)
from handlers.goals.rollup import RollUp
from handlers.goals.values import FINAL_CYCLE
from storage.media import MediaStore
from storage.models import Cycle, Department, Goal, Person
from storage.queries import goal_tree as gq
from storage.queries.people import department_subtree, departments_by_names, people_by_ids

router = Router()

MAX_ROOTS = 6


@dataclass(frozen=True)
class Scope:
    """What the tree is of: its title, and whose coverage it shows: the participants of ``departments``
    (None: the whole cycle's); a person's goal has none."""

    title: str
    departments: set[int] | None = None
    department_id: int | None = None
    coverage: bool = True


def _levels(roots: int) -> tuple[int, int]:
    """Goals listed under each root, and under each of those (0: that level is folded), so the picture
    stays under ``MAX_ROWS`` rows: one or two roots go two levels deep, more roots one."""
    if roots <= 1:
        return 4, 3
    if roots == 2:
        return 4, 2
    return 3, 0


class _Visible:
    """Whose person-level goals the viewer may see, asked once per owner."""

    def __init__(self, ctx: Context, cycle: Cycle) -> None:
        self.ctx = ctx
        self.cycle = cycle
        self.known: dict[int, bool] = {ctx.person.id: True}

    async def check(self, rows: Sequence[gq.GoalRow]) -> None:
        owners = {r.person_id for r in rows if r.level == GoalLevel.PERSON} - self.known.keys()
        people = await people_by_ids(self.ctx.session, owners)
        for pid in owners:
            person = people.get(pid)
            self.known[pid] = person is not None and await may_see_goals(
                self.ctx.session, self.ctx.person, person, self.cycle
            )

    def __call__(self, row: gq.GoalRow) -> bool:
        return row.level != GoalLevel.PERSON or self.known.get(row.person_id, False)


async def _children(
    ctx: Context,
    cycle: Cycle,
    rollup: RollUp,
    parents: Sequence[gq.GoalRow],
    per_parent: int,
    visible: _Visible,
) -> dict[int, list[gq.GoalRow]]:
    """Up to ``per_parent`` visible goals aligned to each parent: those with most below them first, then
    in their owners' order."""
    big: dict[int, list[int]] = {}
    for p in parents:
        kids = sorted(rollup.children.get(p.id, []), key=lambda k: (-rollup.count_below(k), k))
        big[p.id] = kids[: per_parent * 2]
    rows = await gq.goal_rows(ctx.session, [k for ks in big.values() for k in ks])
    first = await gq.first_children(ctx.session, cycle.id, [p.id for p in parents], per_parent * 2)
    by_parent: dict[int, list[gq.GoalRow]] = {
        p.id: [rows[k] for k in big[p.id] if k in rows] for p in parents
    }
    for row in first:
        if row.parent_id is not None and row.parent_id in by_parent:
            by_parent[row.parent_id].append(row)
    await visible.check([r for rs in by_parent.values() for r in rs])
    out: dict[int, list[gq.GoalRow]] = {}
    for pid, candidates in by_parent.items():
        seen: set[int] = set()
        picked: list[gq.GoalRow] = []
        for row in candidates:
            if row.id in seen or not visible(row):
                continue
            seen.add(row.id)
            picked.append(row)
            if len(picked) == per_parent:
                break
        out[pid] = picked
    return out


def _node(row: gq.GoalRow, depth: int, rollup: RollUp, pace: Pace) -> TreeNodeView:
    progress = rollup.progress(row.id, row.own)
    return TreeNodeView(
        goal_id=row.id,
        depth=depth,
        title=row.objective,
        owner=row.owner_name,
        level=row.level,
        progress=progress,
        track=pace.track(progress),
        below=rollup.count_below(row.id),
    )


async def _coverage(
    ctx: Context, cycle: Cycle, roots: Sequence[gq.GoalRow], scope: Scope
) -> dict[int, tuple[int, int]]:
    if not scope.coverage or not await sees_goal_coverage(ctx.session, ctx.person, scope.department_id):
        return {}
    covered = await gq.subtree_owner_counts(ctx.session, cycle.id, [r.id for r in roots], scope.departments)
    total = await gq.participant_count(ctx.session, cycle.id, scope.departments)
    return {r.id: (covered.get(r.id, 0), total) for r in roots}


async def tree_view(
    ctx: Context, cycle: Cycle, roots: Sequence[gq.GoalRow], scope: Scope, *, focus: gq.GoalRow | None = None
) -> TreeView:
    """The rows of the tree under ``roots`` (already checked visible), their roll-up, and the picture."""
    roots = list(roots[:MAX_ROOTS])
    rollup = await roll_up_for(ctx.session, cycle.id, roots)
    pace = pace_of(ctx, cycle)
    visible = _Visible(ctx, cycle)
    first, second = _levels(len(roots))
    level1 = await _children(
        ctx, cycle, rollup, [r for r in roots if rollup.direct.get(r.id)], first, visible
    )
    middle = [c for cs in level1.values() for c in cs]
    level2: dict[int, list[gq.GoalRow]] = {}
    if second:
        level2 = await _children(
            ctx, cycle, rollup, [c for c in middle if rollup.direct.get(c.id)], second, visible
        )
    shown = [c.id for c in middle] + [c.id for cs in level2.values() for c in cs]
    folded = await gq.folded_counts(ctx.session, cycle.id, [*level1, *level2], shown)
    coverage = await _coverage(ctx, cycle, roots, scope)

    root_views: list[TreeNodeView] = []
    rows: list[TreeNodeView | FoldedView] = []
    for root in roots:
        node = _node(root, 0, rollup, pace)
        if root.id in coverage:
            node = replace(node, coverage=coverage[root.id])
        root_views.append(node)
        rows.append(node)
        for child in level1.get(root.id, []):
            rows.append(_node(child, 1, rollup, pace))
            for grandchild in level2.get(child.id, []):
                rows.append(_node(grandchild, 2, rollup, pace))
            rest = folded.get(child.id)
            if child.id in level2 and rest and rest[0]:
                rows.append(FoldedView(2, rest[0], rest[1]))
        rest = folded.get(root.id)
        if rest and rest[0]:
            rows.append(FoldedView(1, rest[0], rest[1]))
    media_id = None
    if len(rows) > len(roots) or focus is None:
        media_id = await _picture(ctx, scope.title, cycle, pace, rows)
    children = tuple(n for n in rows if isinstance(n, TreeNodeView) and n.depth == 1 and n.below)
    view = TreeView(
        title=scope.title,
        cycle_code=cycle.code,
        expected=pace.expected,
        roots=tuple(root_views),
        rows=tuple(rows),
        media_id=media_id,
        drill=tuple(root_views) if focus is None and len(root_views) > 1 else children,
    )
    if focus is None:
        return view
    objective = (await objective_views(ctx.session, ctx.t, [focus], rollup, pace))[0]
    return replace(
        view,
        rows=tuple(rows[1:]),
        focus=objective,
        focus_own=focus.person_id == ctx.person.id,
        parent_goal_id=await _visible_parent(ctx, cycle, focus),
    )


async def _visible_parent(ctx: Context, cycle: Cycle, goal: gq.GoalRow) -> int | None:
    if goal.parent_id is None:
        return None
    parent = await ctx.session.get(Goal, goal.parent_id)
    if parent is None or parent.cycle_id != cycle.id:
        return None
    return parent.id if await may_see_goal(ctx.session, ctx.person, parent, cycle) else None


async def _picture(
    ctx: Context, title: str, cycle: Cycle, pace: Pace, rows: Sequence[TreeNodeView | FoldedView]
) -> str:
    t = ctx.t
    picture = TreePicture(
        title=t("okr.tree_title", title=title, code=cycle.code),
        subtitle=t("okr.tree_subtitle", expected=round(pace.expected * 100)),
        rows=tuple(_picture_row(t, r) for r in rows[:MAX_ROWS]),
        legend=(t("okr.legend_on"), t("okr.legend_risk"), t("okr.legend_off")),
    )
    png = await asyncio.to_thread(render_png, picture)
    media = ctx.settings.media
    stored = await MediaStore(media.dir, max_bytes=max(media.max_image_bytes, len(png))).store_image(png)
    return stored.info.sha256


def _picture_row(t: Translator, row: TreeNodeView | FoldedView) -> TreeRow:
    if isinstance(row, FoldedView):
        return TreeRow(depth=row.depth, title=folded_text(t, row))
    return TreeRow(
        depth=row.depth,
        title=row.title,
        detail=node_detail(t, row),
        percent=round(max(0.0, min(1.0, row.progress)) * 100),
        track=row.track,
    )


# ------------------------------------------------------------------ entry points
async def tree_reply(ctx: Context, args: str) -> Reply:
    """``/okr tree``: the company objectives (without any, the viewer's department's); ``/okr tree 研发部``:
    that department's objectives."""
    cycle = await current_cycle(ctx.session, ctx.person)
    if cycle is None:
        raise ctx.refuse("okr.no_cycle")
    name = args.strip()
    if name:
        department = await _department(ctx, name)
        return await _department_tree(ctx, cycle, department)
    roots = await gq.objectives(ctx.session, cycle.id, GoalLevel.COMPANY)
    if not roots:
        if ctx.person.department_id is not None:
            mine = await ctx.session.get(Department, ctx.person.department_id)
            if mine is not None and await gq.objectives(ctx.session, cycle.id, GoalLevel.DEPARTMENT, mine.id):
                return await _department_tree(ctx, cycle, mine)
        raise ctx.refuse("okr.no_company", code=cycle.code)
    view = await tree_view(ctx, cycle, roots, Scope(ctx.t("okr.scope_company")))
    ctx.audit("okr.tree_viewed", "cycle", cycle.id)
    return Reply(card=tree_card(ctx.t, view))


async def _department(ctx: Context, name: str) -> Department:
    found, _ = await departments_by_names(ctx.session, ctx.workspace.id, [name])
    if not found:
        raise ctx.refuse("okr.no_such_department", name=name[:40])
    if len(found) > 1:
        raise ctx.refuse("okr.many_departments", n=len(found), name=name[:40])
    return found[0]


async def _department_tree(ctx: Context, cycle: Cycle, department: Department) -> Reply:
    roots = await gq.objectives(ctx.session, cycle.id, GoalLevel.DEPARTMENT, department.id)
    if not roots:
        raise ctx.refuse("okr.no_department_objectives", department=department.name, code=cycle.code)
    members = await department_subtree(ctx.session, ctx.workspace.id, [department.id])
    view = await tree_view(ctx, cycle, roots, Scope(department.name, members, department.id))
    ctx.audit("okr.tree_viewed", "department", department.id, cycle=cycle.code)
    return Reply(card=tree_card(ctx.t, view))


@router.action(OkrTree)
async def open_tree(ctx: Context, payload: OkrTree) -> Reply:
    """One objective: its key results, where it aligns, and the tree below it; to its owner and their manager
    also an "update" button per key result (``kr_update``: the values of objectives nobody checks in for,
    such as the company's, move there)."""
    goal = await ctx.session.get(Goal, payload.goal_id)
    cycle = await ctx.session.get(Cycle, goal.cycle_id) if goal is not None else None
    if goal is None or cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("okr.goal_gone")
    if not await may_see_goal(ctx.session, ctx.person, goal, cycle):
        owner = await ctx.session.get(Person, goal.person_id)
        reason = await not_allowed_text(ctx, cycle, owner) if owner is not None else ""
        raise ctx.refuse("okr.goal_not_visible", reason=reason)
    row = (await gq.goal_rows(ctx.session, [goal.id]))[goal.id]
    scope = Scope(row.objective)
    if goal.level == GoalLevel.DEPARTMENT and goal.department_id is not None:
        members = await department_subtree(ctx.session, ctx.workspace.id, [goal.department_id])
        scope = Scope(row.objective, members, goal.department_id)
    elif goal.level == GoalLevel.PERSON:
        scope = Scope(row.objective, coverage=False)
    view = await tree_view(ctx, cycle, [row], scope, focus=row)
    owner = await ctx.session.get(Person, goal.person_id)
    records = (
        cycle.status not in FINAL_CYCLE
        and owner is not None
        and await source_of(ctx.session, ctx.person, owner) is not None
    )
    return Reply(card=tree_card(ctx.t, replace(view, focus_records=records)))
