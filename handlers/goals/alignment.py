"""Where an objective may align (issue 17 item 2), and which parent to suggest.

A person's goal aligns to one of a short list: their line manager's own goals in the same cycle and the
objectives of their department and of the departments above it, newest first, at most ``MAX_CANDIDATES``
(a phone shows a short list; the newest are the ones being written now). A department objective aligns to
one of the company's objectives of the cycle. Anything else (another cycle's or another workspace's
objective, one not on the list, or one that would close a loop) is refused at submit, even if a forged or
stale form names it.

The suggestion is the candidate whose objective and key results read most like the goal's (``suggest.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.people import line_manager
from bot.core.status import GoalLevel
from cards.catalogue import Translator
from cards.goals import NO_PARENT, ParentChoice
from handlers.goals.suggest import suggest
from storage.models import Goal, Person
from storage.queries import goals as gq
from storage.queries.people import people_by_ids

MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Candidate:
    goal_id: int
    label: str
    """Whose objective it is and what it says: "王经理：上线新计费系统", "研发部：…"."""
    text: str
    """The objective and its key results: what the suggestion compares."""


class ParentInvalid(ValueError):
    """A chosen parent that may not be used; ``key`` is the form's message."""

    def __init__(self, key: str, parent: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.parent = parent


async def _texts(session: AsyncSession, goals: Sequence[Goal]) -> dict[int, str]:
    krs = await gq.key_results_of(session, [g.id for g in goals])
    return {g.id: "；".join([g.objective, *(k.title for k in krs.get(g.id, []))]) for g in goals}


async def for_person(session: AsyncSession, cycle_id: int, person: Person) -> list[Candidate]:
    """The person's short list: the manager's goals and their departments' objectives, newest first."""
    manager = await line_manager(session, person)
    departments = {d.id: d for d in await gq.department_chain(session, person.department_id)}
    goals = await gq.alignment_candidates(
        session,
        cycle_id,
        manager_id=manager.id if manager is not None else None,
        department_ids=list(departments),
        department_level=GoalLevel.DEPARTMENT,
        limit=MAX_CANDIDATES,
    )
    goals = [g for g in goals if g.person_id != person.id or g.level != GoalLevel.PERSON]
    owners = await people_by_ids(session, [g.person_id for g in goals])
    texts = await _texts(session, goals)
    out = []
    for g in goals:
        if g.level == GoalLevel.DEPARTMENT and g.department_id in departments:
            whose = departments[g.department_id].name
        else:
            whose = owners[g.person_id].name if g.person_id in owners else "—"
        out.append(Candidate(g.id, f"{whose}：{g.objective}", texts[g.id]))
    return out


async def for_department(session: AsyncSession, t: Translator, cycle_id: int) -> list[Candidate]:
    """A department objective's list: the company's objectives in the cycle (a company has few)."""
    goals = await gq.goals_at(session, cycle_id, level=GoalLevel.COMPANY)
    texts = await _texts(session, goals)
    company = t("objectives.company")
    return [Candidate(g.id, f"{company}：{g.objective}", texts[g.id]) for g in goals[:50]]


def choices(candidates: Sequence[Candidate]) -> list[ParentChoice]:
    return [ParentChoice(value=str(c.goal_id), label=c.label) for c in candidates]


def suggestion(text: str, candidates: Sequence[Candidate]) -> int | None:
    return suggest(text, [(c.goal_id, c.text) for c in candidates]) if text.strip() else None


async def loops(session: AsyncSession, parent_id: int, own_ids: Iterable[int]) -> bool:
    """Whether aligning one of ``own_ids`` to ``parent_id`` closes a loop (the parent sits under one)."""
    mine = set(own_ids)
    return bool(mine) and bool(mine & set(await gq.parent_chain(session, parent_id)))


async def resolve(
    session: AsyncSession,
    value: str,
    *,
    candidates: Sequence[Candidate],
    text: str,
    keep: int | None,
    own_ids: Iterable[int],
) -> tuple[int | None, bool]:
    """(the parent to store, whether it is the bot's suggestion) for a select's value.

    ``""`` (nothing chosen: an untouched select, a skipped chat question) keeps the goal's current parent
    while it is still on the list, else takes the suggestion; ``NO_PARENT`` is unaligned. Raises
    ``ParentInvalid`` for an id not on the list or one that would close a loop."""
    own = list(own_ids)
    ids = {c.goal_id: c for c in candidates}
    value = value.strip()
    if value == NO_PARENT:
        return None, False
    if value == "":
        if keep is not None and keep in ids and not await loops(session, keep, own):
            return keep, False
        found = suggestion(text, candidates)
        if found is not None and not await loops(session, found, own):
            return found, True
        return None, False
    if not value.isdigit() or int(value) not in ids:
        raise ParentInvalid("goals.parent_unknown")
    parent = int(value)
    if await loops(session, parent, own):
        raise ParentInvalid("goals.parent_loop", ids[parent].label)
    return parent, False


async def labels(session: AsyncSession, t: Translator, parent_ids: Iterable[int | None]) -> dict[int, str]:
    """How a summary names the objectives goals align to: the department's, the company's or the owner's."""
    ids = sorted({i for i in parent_ids if i is not None})
    if not ids:
        return {}
    parents = await gq.goals_by_ids(session, ids)
    owners = await people_by_ids(session, [g.person_id for g in parents])
    names = await gq.department_names(session, [g.department_id for g in parents])
    out: dict[int, str] = {}
    for g in parents:
        if g.level == GoalLevel.COMPANY:
            whose = t("objectives.company")
        elif g.level == GoalLevel.DEPARTMENT and g.department_id in names:
            whose = names[g.department_id]
        else:
            whose = owners[g.person_id].name if g.person_id in owners else "—"
        out[g.id] = f"{whose}：{g.objective}"
    return out
