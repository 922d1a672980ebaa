"""The whole cycle's goal tree rolled up, without reading every goal into Python.

``progress.roll_up`` states the rule over (id, parent, weight, own progress) nodes. Run as it is on a cycle of
100,000 people it would fetch 300,000 rows and build as many objects; most of them are leaves (a person's
goal nobody aligns to), whose rolled-up progress is their own. So the database sums each objective's direct
children and returns the few goals that have children (``storage.queries.goal_tree.tree_sums``: Σ weight ×
own progress, Σ weight, count, and the parent's own row); here, bottom-up over those alone, a child that has
children of its own has its own progress in its parent's sum replaced by its rolled-up progress. The answer
is ``progress.roll_up``'s up to floating-point rounding (the tests compare the two on random forests, loops
included). A department's part of the tree is read whole and summed here (``subtree_roll_up``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.goals.progress import blend
from storage.queries import goal_tree as gq
from storage.queries.goal_tree import ChildSums, RollUpRow
from storage.queries.goal_tree import subtree as subtree_rows


@dataclass(frozen=True)
class RollUp:
    """Rolled-up progress of every goal that has aligned goals; any other goal's is its own."""

    rolled: dict[int, float] = field(default_factory=dict)
    below: dict[int, int] = field(default_factory=dict)
    """Goals in the subtree below each goal with children (aligned directly or further down)."""
    direct: dict[int, int] = field(default_factory=dict)
    """Goals aligned directly to each goal with children."""
    inner: dict[int, RollUpRow] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)
    """Goal with children → its children that have children themselves, in id order."""

    def progress(self, goal_id: int, own: float) -> float:
        return self.rolled.get(goal_id, own)

    def count_below(self, goal_id: int) -> int:
        return self.below.get(goal_id, 0)


def _weight(w: float) -> float:
    return w or 1.0


def roll_up_sums(sums: Iterable[ChildSums], inner: Iterable[RollUpRow]) -> RollUp:
    """The roll-up from the per-parent sums and the goals with children (see the module docstring).

    Walks the goals with children exactly as ``progress.roll_up`` walks every node (id order, depth first),
    so a loop in the parent links is broken at the same edge: a child still on the stack when its parent
    is finished is left out of the parent's mean, as there.
    """
    by_parent = {s.parent_id: s for s in sums}
    nodes = {g.id: g for g in inner}
    kids: dict[int, list[int]] = {}
    for g in nodes.values():
        if g.parent_id is not None and g.parent_id != g.id and g.parent_id in nodes:
            kids.setdefault(g.parent_id, []).append(g.id)
    rolled: dict[int, float] = {}
    below: dict[int, int] = {}
    direct: dict[int, int] = {}
    opened: set[int] = set()
    none = ChildSums(0, 0.0, 0.0, 0.0, 0)

    def finish(nid: int) -> None:
        node = nodes[nid]
        s = by_parent.get(nid, none)
        weighted, total, plain, count = s.weighted, s.weight, s.plain, s.n
        under = 0
        if node.parent_id == nid:  # a goal aligned to itself is not its own child
            weighted -= _weight(node.weight) * node.own
            total -= _weight(node.weight)
            plain -= node.own
            count -= 1
        for k in kids.get(nid, ()):
            child = nodes[k]
            w = child.weight or 1.0
            done = rolled.get(k)
            if done is not None:
                weighted += w * (done - child.own)
                plain += done - child.own
                under += below[k]
            else:  # still open: a loop, broken here
                weighted -= w * child.own
                total -= w
                plain -= child.own
                count -= 1
        mean: float | None = None
        if count > 0:
            mean = weighted / total if total > 0 else plain / count
        rolled[nid] = blend(node.own, node.has_own, mean)
        count = max(count, 0)
        direct[nid] = count
        below[nid] = count + under

    for root in nodes:
        if root in rolled or root in opened:
            continue
        if root not in kids:  # most goals with children have no grandchildren: no walk needed
            finish(root)
            continue
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            nid, expanded = stack.pop()
            if expanded:
                finish(nid)
                continue
            if nid in rolled or nid in opened:
                continue
            opened.add(nid)
            stack.append((nid, True))
            stack.extend((k, False) for k in kids.get(nid, ()) if k not in rolled and k not in opened)
    return RollUp(rolled, below, direct, nodes, kids)


async def cycle_roll_up(session: AsyncSession, cycle_id: int) -> RollUp:
    """Every objective of the cycle rolled up: two statements and a walk over the goals with children."""
    return roll_up_sums(*await gq.tree_sums(session, cycle_id))


def roll_up_rows(rows: Sequence[RollUpRow]) -> RollUp:
    """The roll-up of a part of the tree read whole (``storage.queries.goal_tree.subtree``): the sums the
    database makes for the whole cycle, made here."""
    acc: dict[int, list[float]] = {}
    for r in rows:
        if r.parent_id is None:
            continue
        w = _weight(r.weight)
        a = acc.setdefault(r.parent_id, [0.0, 0.0, 0.0, 0.0])
        a[0] += w * r.own
        a[1] += w
        a[2] += r.own
        a[3] += 1
    sums = [ChildSums(p, a[0], a[1], a[2], int(a[3])) for p, a in acc.items()]
    return roll_up_sums(sums, [r for r in rows if r.id in acc])


async def subtree_roll_up(session: AsyncSession, cycle_id: int, root_ids: Sequence[int]) -> RollUp:
    """The roots and everything below them rolled up (a department's or a team's objectives)."""
    return roll_up_rows(await subtree_rows(session, cycle_id, root_ids))
