"""Versions of a person's goals (issue 17 item 6): what a version holds, writing version 1 when the manager
confirms, comparing two versions, and applying an approved one to the live rows.

A version's ``content`` is the whole set of the person's objectives as they were promised (``goal_entry``,
``kr_entry``)::

    {"goals": [{"id": 12, "objective": "…", "weight": 60, "parent_id": 3,
                "key_results": [{"id": 40, "title": "签约 20 家客户", "kind": "number", "unit": "家",
                                 "start": 0, "target": 20, "target_date": null, "deadline": null,
                                 "milestones": [], "weight": 0}, …]}, …]}

Targets only, never values: values move in check-ins and keep their own history (``kr_values``), so a
report reads the targets in force on a date from the version (``goal_versions.goals_in_force``) and the
value on that date from the history (``values.value_on``). A proposal's new key results carry
``"id": null`` until it is approved; applying it writes the new ids back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from bot.core.context import Context
from bot.core.status import GoalLevel, GoalVersionStatus
from cards.goal_adjust import GoalChange, KrChange
from handlers.goals.kr_lines import line_of
from handlers.goals.recompute import recompute_goals
from storage.models import Cycle, Goal, GoalVersion, KeyResult, Person
from storage.queries import goal_versions as gv
from storage.queries import goals as gq

Content = dict[str, Any]
KR_FIELDS: tuple[str, ...] = (
    "title",
    "kind",
    "unit",
    "start",
    "target",
    "target_date",
    "deadline",
    "milestones",
    "weight",
)
"""What a version fixes about a key result (and what a diff compares), besides its id."""


def kr_entry(kr: KeyResult) -> dict[str, Any]:
    """One key result as a version holds it (and as ``kr_lines.line_of`` writes it back as a line)."""
    return {
        "id": kr.id,
        "title": kr.title,
        "kind": kr.kind,
        "unit": kr.unit,
        "start": kr.start_value,
        "target": kr.target_value,
        "target_date": kr.target_date.isoformat() if kr.target_date else None,
        "deadline": kr.deadline.isoformat() if kr.deadline else None,
        "milestones": list(kr.milestones or []),
        "weight": kr.weight,
    }


def goal_entry(goal: Goal, krs: Sequence[KeyResult]) -> dict[str, Any]:
    return {
        "id": goal.id,
        "objective": goal.objective,
        "weight": goal.weight,
        "parent_id": goal.parent_id,
        "key_results": [kr_entry(kr) for kr in krs],
    }


async def live_content(ctx: Context, cycle_id: int, person_id: int) -> Content:
    """The person's goals as they stand now (what a new version starts from)."""
    goals = await gq.goals_at(ctx.session, cycle_id, level=GoalLevel.PERSON, person_id=person_id)
    krs = await gq.key_results_of(ctx.session, [g.id for g in goals])
    return {"goals": [goal_entry(g, krs[g.id]) for g in goals]}


async def record_confirmed_version(ctx: Context, cycle_id: int, person: Person) -> GoalVersion:
    """The manager confirmed ``person``'s goals: they become version 1 (``approved``, in force from now).

    Called by the goals flow in the same transaction as the confirmation. A person whose goals were
    confirmed once already (versions exist) gets the next number, so the history never loses a version."""
    before = await gv.latest(ctx.session, cycle_id, person.id)
    version = GoalVersion(
        cycle_id=cycle_id,
        person_id=person.id,
        version=(before.version + 1) if before is not None else 1,
        status=GoalVersionStatus.APPROVED,
        content=await live_content(ctx, cycle_id, person.id),
        proposed_by_id=person.id,
        proposed_at=ctx.now,
        decided_by_id=ctx.person.id,
        decided_at=ctx.now,
        effective_from=ctx.now,
    )
    ctx.session.add(version)
    await ctx.session.flush()
    ctx.audit(
        "goals.version",
        "goal_version",
        version.id,
        person_id=person.id,
        cycle_id=cycle_id,
        version=version.version,
        status=version.status,
    )
    return version


async def in_force_now(ctx: Context, cycle: Cycle, person: Person) -> GoalVersion:
    """The latest approved version; goals confirmed before versions existed get their version 1 now, in force
    from the cycle's start (the best the record knows of when they were confirmed)."""
    found = await gv.latest_approved(ctx.session, cycle.id, person.id)
    if found is not None:
        return found
    since = cycle.started_at or (
        datetime.combine(cycle.starts_on, time(0), tzinfo=UTC) if cycle.starts_on else ctx.now
    )
    version = GoalVersion(
        cycle_id=cycle.id,
        person_id=person.id,
        version=1,
        status=GoalVersionStatus.APPROVED,
        content=await live_content(ctx, cycle.id, person.id),
        proposed_by_id=person.id,
        proposed_at=since,
        decided_at=since,
        effective_from=since,
    )
    ctx.session.add(version)
    await ctx.session.flush()
    ctx.audit("goals.version", "goal_version", version.id, person_id=person.id, cycle_id=cycle.id, version=1)
    return version


def _as_date(value: Any) -> date | None:
    return date.fromisoformat(str(value)) if value else None


async def apply_content(ctx: Context, cycle_id: int, person_id: int, content: Content) -> Content:
    """Make the live rows say what ``content`` says; returns the content as applied (with the ids of the
    new key results).

    Goals keep their rows (weights change); a key result with an id keeps its row, so its value history and
    the actions and evidence bound to it stay; one without is created; one no longer listed is removed
    (``goals.delete_key_results``). Progress is recomputed from the current values against the new targets
    by the goals flow's own recompute, never written here."""
    goals = {
        g.id: g for g in await gq.goals_at(ctx.session, cycle_id, level=GoalLevel.PERSON, person_id=person_id)
    }
    live = await gq.key_results_of(ctx.session, goals)
    removed: list[int] = []
    for entry in content.get("goals", []):
        goal = goals.get(int(entry["id"]))
        if goal is None:
            continue  # a goal can only disappear with the whole cycle's goals; nothing to apply it to
        goal.weight = int(entry["weight"])
        goal.updated_at = ctx.now
        rows = {kr.id: kr for kr in live[goal.id]}
        for pos, item in enumerate(entry.get("key_results", [])):
            kr = rows.pop(int(item["id"]), None) if item.get("id") is not None else None
            if kr is None:
                kr = KeyResult(goal_id=goal.id, title=str(item["title"]))
                ctx.session.add(kr)
            kr.position = pos
            kr.title = str(item["title"])
            kr.kind = str(item["kind"])
            kr.unit = item.get("unit")
            kr.start_value = float(item.get("start") or 0.0)
            kr.target_value = None if item.get("target") is None else float(item["target"])
            kr.target_date = _as_date(item.get("target_date"))
            kr.deadline = _as_date(item.get("deadline"))
            kr.milestones = list(item.get("milestones") or [])
            kr.weight = int(item.get("weight") or 0)
            kr.updated_at = ctx.now
        removed += list(rows)
    await ctx.session.flush()
    await gq.delete_key_results(ctx.session, removed)
    await recompute_goals(ctx.session, goals)
    return await live_content(ctx, cycle_id, person_id)


# ---------------------------------------------------------------- comparing two versions


def _same_kr(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(f) == b.get(f) for f in KR_FIELDS)


def changes(before: Content, after: Content) -> list[GoalChange]:
    """Per goal of ``after``: its weight before and after, and each key result kept, changed, added or
    removed (matched by id), in the order the proposal lists them, removed ones last."""
    old_goals = {g["id"]: g for g in before.get("goals", [])}
    out: list[GoalChange] = []
    for n, goal in enumerate(after.get("goals", []), start=1):
        old = old_goals.get(goal["id"], {"weight": goal["weight"], "key_results": []})
        old_krs = {kr["id"]: kr for kr in old.get("key_results", [])}
        lines: list[KrChange] = []
        for kr in goal.get("key_results", []):
            was = old_krs.pop(kr.get("id"), None) if kr.get("id") is not None else None
            if was is None:
                lines.append(KrChange("added", "", line_of(kr)))
            elif _same_kr(was, kr):
                lines.append(KrChange("same", line_of(was), line_of(kr)))
            else:
                lines.append(KrChange("changed", line_of(was), line_of(kr)))
        lines += [KrChange("removed", line_of(kr), "") for kr in old_krs.values()]
        out.append(GoalChange(n, goal["objective"], int(old["weight"]), int(goal["weight"]), tuple(lines)))
    return out


def same_promises(before: Content, after: Content) -> bool:
    """Whether a proposal changes nothing a version fixes (weights, key results and their targets)."""
    return all(
        c.weight_before == c.weight_after and all(k.change == "same" for k in c.krs)
        for c in changes(before, after)
    )
