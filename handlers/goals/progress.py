"""The goal-tree arithmetic (issue 17 item 1), in one place: progress is computed, never typed.

* A key result's progress comes from its current value against its target: ``number`` runs from
  ``start_value`` to ``target_value`` (a target below the start is a decrease, "流失率从 5% 降到 3%"),
  clamped to 0..1; ``date`` and ``deliverable`` are 1 when done, otherwise the share of milestones done.
* An objective's own progress is the weighted mean of its key results (weight 0 everywhere = equal shares).
* Rolled up, an objective with aligned goals counts its own key results and its aligned goals equally
  (children weighted by their weight); without aligned goals it is its own progress. Both numbers are shown.
* On track / at risk / off track compares progress with the share of the cycle that has passed.

Pure functions over plain numbers, so the same rules serve a card, the roll-up of 300,000 objectives, the
report and the API, and are tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any


class KrKind(StrEnum):
    NUMBER = "number"
    DATE = "date"
    DELIVERABLE = "deliverable"


class Track(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


def clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def milestone_share(milestones: Sequence[Mapping[str, Any]]) -> float:
    if not milestones:
        return 0.0
    return sum(1 for m in milestones if m.get("done")) / len(milestones)


def kr_progress(
    kind: str,
    *,
    start: float = 0.0,
    target: float | None = None,
    current: float | None = None,
    done: bool = False,
    milestones: Sequence[Mapping[str, Any]] = (),
) -> float:
    """0..1 for one key result."""
    if kind == KrKind.NUMBER:
        if target is None or current is None or target == start:
            return 1.0 if (target is not None and current is not None and current == target) else 0.0
        return clamp((current - start) / (target - start))
    if done:
        return 1.0
    return milestone_share(milestones)


def weighted(pairs: Iterable[tuple[float, float]]) -> float:
    """Weighted mean of (progress, weight) pairs; all weights 0 (or none given) means equal shares."""
    items = list(pairs)
    if not items:
        return 0.0
    total = sum(w for _, w in items)
    if total <= 0:
        return sum(p for p, _ in items) / len(items)
    return sum(p * w for p, w in items) / total


def goal_progress(krs: Iterable[tuple[float, int]]) -> float:
    """An objective's own progress from its key results' (progress, weight)."""
    return weighted((p, float(w)) for p, w in krs)


def blend(own: float, has_own: bool, children: float | None) -> float:
    """Rolled-up progress of one objective from its own progress and the weighted mean of its children."""
    if children is None:
        return own
    if not has_own:
        return children
    return (own + children) / 2


@dataclass(frozen=True, slots=True)
class Node:
    id: int
    parent_id: int | None
    weight: float
    own: float
    has_own: bool = True


def roll_up(nodes: Iterable[Node]) -> dict[int, float]:
    """Rolled-up progress of every node of a forest, bottom-up, in O(n).

    A parent missing from ``nodes`` (aligned across cycles, or deleted) makes its child a root. Cycles in
    the parent links (which the handlers refuse to create) are broken rather than looped on.
    """
    by_id = {n.id: n for n in nodes}
    children: dict[int, list[int]] = {}
    for n in by_id.values():
        if n.parent_id is not None and n.parent_id in by_id and n.parent_id != n.id:
            children.setdefault(n.parent_id, []).append(n.id)
    result: dict[int, float] = {}
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    for root in by_id:
        if state.get(root):
            continue
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            nid, expanded = stack.pop()
            if expanded:
                kids = [k for k in children.get(nid, ()) if k in result]
                node = by_id[nid]
                mean = weighted((result[k], by_id[k].weight or 1.0) for k in kids) if kids else None
                result[nid] = blend(node.own, node.has_own, mean)
                state[nid] = 2
                continue
            if state.get(nid):
                continue
            state[nid] = 1
            stack.append((nid, True))
            stack.extend((k, False) for k in children.get(nid, ()) if not state.get(k))
    return result


def expected_share(starts_on: date | None, ends_on: date | None, today: date) -> float:
    """The share of the cycle that has passed (what "on plan" means today)."""
    if starts_on is None or ends_on is None or ends_on <= starts_on:
        return 0.0
    return clamp((today - starts_on).days / (ends_on - starts_on).days)


def track(
    progress: float, expected: float, *, at_risk_gap: float = 0.10, off_track_gap: float = 0.25
) -> Track:
    gap = expected - progress
    if gap <= at_risk_gap:
        return Track.ON_TRACK
    if gap <= off_track_gap:
        return Track.AT_RISK
    return Track.OFF_TRACK
