"""Cycles, their participants and goals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    ActionItem,
    CardMessage,
    CheckIn,
    Cycle,
    CycleParticipant,
    DeliverableRating,
    Goal,
    Grade,
    GradeAppeal,
    OutboxMessage,
    Person,
)
from storage.queries.goals import PERSON
from storage.queries.people import Member, active_in


async def cycle_by_code(session: AsyncSession, workspace_id: int, code: str) -> Cycle | None:
    return await session.scalar(select(Cycle).where(Cycle.workspace_id == workspace_id, Cycle.code == code))


async def cycles_in(session: AsyncSession, workspace_id: int, statuses: Iterable[str]) -> list[Cycle]:
    """This workspace's cycles in these statuses, newest first."""
    return list(
        await session.scalars(
            select(Cycle)
            .where(Cycle.workspace_id == workspace_id, Cycle.status.in_(list(statuses)))
            .order_by(Cycle.starts_on.desc(), Cycle.id.desc())
        )
    )


async def active_cycles(
    session: AsyncSession, workspace_id: int, *, exclude_id: int | None = None
) -> list[Cycle]:
    return [c for c in await cycles_in(session, workspace_id, ["active"]) if c.id != exclude_id]


async def latest_active_cycle(
    session: AsyncSession, workspace_id: int, statuses: Iterable[str] = ("active",)
) -> Cycle | None:
    """The most recently started active cycle: what "this cycle" means when nobody names one. A caller
    for whom a *closing* cycle still counts (grading, which is how a cycle is wrapped up) passes
    ``bot.core.status.ANSWERABLE_CYCLE`` as ``statuses``."""
    return await session.scalar(
        select(Cycle)
        .where(Cycle.workspace_id == workspace_id, Cycle.status.in_(list(statuses)))
        .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        .limit(1)
    )


async def participant_counts(session: AsyncSession, cycle_ids: Iterable[int]) -> dict[int, int]:
    ids = list(cycle_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(CycleParticipant.cycle_id, func.count())
        .where(CycleParticipant.cycle_id.in_(ids))
        .group_by(CycleParticipant.cycle_id)
    )
    return {cycle_id: int(n) for cycle_id, n in rows.all()}


_PARTICIPANT = select(CycleParticipant).where(
    CycleParticipant.cycle_id == bindparam("cycle_id"), CycleParticipant.person_id == bindparam("person_id")
)
"""Built once: on the click path (issue 22) building a statement costs as much as running it."""


async def participant(session: AsyncSession, cycle_id: int, person_id: int) -> CycleParticipant | None:
    return await session.scalar(_PARTICIPANT, {"cycle_id": cycle_id, "person_id": person_id})


async def current_participation(
    session: AsyncSession, person_id: int, statuses: Iterable[str] = ("active",)
) -> tuple[Cycle, CycleParticipant] | None:
    """The most recently started active cycle this person takes part in (``statuses``: see
    ``latest_active_cycle``)."""
    row = (
        await session.execute(
            select(Cycle, CycleParticipant)
            .join(CycleParticipant, CycleParticipant.cycle_id == Cycle.id)
            .where(CycleParticipant.person_id == person_id, Cycle.status.in_(list(statuses)))
            .order_by(Cycle.started_at.desc(), Cycle.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return row[0], row[1]


async def goals_of(session: AsyncSession, cycle_id: int, person_id: int) -> list[Goal]:
    """A person's own goals in a cycle (not the company or department objectives they may have set)."""
    return list(
        await session.scalars(
            select(Goal)
            .where(Goal.cycle_id == cycle_id, Goal.person_id == person_id, Goal.level == PERSON)
            .order_by(Goal.position, Goal.id)
        )
    )


async def previous_goals(session: AsyncSession, person_id: int, cycle: Cycle) -> list[Goal]:
    """This person's goals from the latest other cycle that has any (what "copy last cycle" copies)."""
    latest = await session.scalar(
        select(Goal.cycle_id)
        .join(Cycle, Cycle.id == Goal.cycle_id)
        .where(
            Goal.person_id == person_id,
            Goal.level == PERSON,
            Goal.cycle_id != cycle.id,
            Cycle.workspace_id == cycle.workspace_id,
        )
        .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        .limit(1)
    )
    if latest is None:
        return []
    return await goals_of(session, latest, person_id)


async def team_participants(
    session: AsyncSession, cycle_id: int, manager_id: int
) -> list[tuple[Person, CycleParticipant]]:
    rows = await session.execute(
        select(Person, CycleParticipant)
        .join(CycleParticipant, CycleParticipant.person_id == Person.id)
        .where(
            CycleParticipant.cycle_id == cycle_id, Person.manager_id == manager_id, Person.active.is_(True)
        )
        .order_by(Person.id)
    )
    return [(p, cp) for p, cp in rows.all()]


async def participant_ids(session: AsyncSession, cycle_id: int) -> set[int]:
    return set(
        await session.scalars(select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == cycle_id))
    )


# ---------------------------------------------------------------- a kickoff written in chunks (issue 22 #3)
async def participants_among(session: AsyncSession, cycle_id: int, person_ids: list[int]) -> set[int]:
    """Which of ``person_ids`` (one chunk, well under the bind-parameter limit) already take part."""
    if not person_ids:
        return set()
    return set(
        await session.scalars(
            select(CycleParticipant.person_id).where(
                CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id.in_(person_ids)
            )
        )
    )


async def shared_participants(
    session: AsyncSession, cycle_id: int, workspace_id: int, department_ids: set[int] | None
) -> int:
    """How many active people of the workspace (in ``department_ids``, when given) take part in the cycle."""
    n = await session.scalar(
        select(func.count())
        .select_from(CycleParticipant)
        .join(Person, Person.id == CycleParticipant.person_id)
        .where(CycleParticipant.cycle_id == cycle_id, *active_in(workspace_id, department_ids))
    )
    return int(n or 0)


async def drop_participants_outside(
    session: AsyncSession, cycle_id: int, workspace_id: int, department_ids: set[int] | None
) -> None:
    """Remove the cycle's participants who are not (or no longer) active people in ``department_ids``."""
    inside = select(Person.id).where(*active_in(workspace_id, department_ids))
    await session.execute(
        delete(CycleParticipant).where(
            CycleParticipant.cycle_id == cycle_id, CycleParticipant.person_id.not_in(inside)
        )
    )


async def launching_cycles(session: AsyncSession) -> list[int]:
    """Cycles whose kickoff is still being written (``Cycle.launch_after`` set), oldest first."""
    return list(
        await session.scalars(select(Cycle.id).where(Cycle.launch_after.is_not(None)).order_by(Cycle.id))
    )


async def move_launch(session: AsyncSession, cycle_id: int, was: int, to: int | None) -> bool:
    """Compare-and-set of the launch position: False when another writer moved it first. On PostgreSQL
    the second writer waits for the first one's commit and then finds nothing to move."""
    done = await session.execute(
        update(Cycle)
        .where(Cycle.id == cycle_id, Cycle.launch_after == was)
        .values(launch_after=to)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0))


# ---------------------------------------------------------------- closing a cycle (issue 20 #1)
# What the close preview counts and the close settles. Statuses come in as parameters: storage sits below
# ``bot.core.status`` and cannot import it.


def _members(cycle_id: int) -> Any:
    return select(CycleParticipant.person_id).where(CycleParticipant.cycle_id == cycle_id).scalar_subquery()


async def cycles_by_status(session: AsyncSession, workspace_id: int, statuses: Iterable[str]) -> list[Cycle]:
    """This workspace's cycles in these statuses, most recently started first."""
    return list(
        await session.scalars(
            select(Cycle)
            .where(Cycle.workspace_id == workspace_id, Cycle.status.in_(list(statuses)))
            .order_by(Cycle.started_at.desc(), Cycle.id.desc())
        )
    )


async def active_participants(session: AsyncSession, cycle_id: int) -> list[Member]:
    """The participants still with the company, by id, as broadcast rows: who gets the closing card."""
    rows = await session.execute(
        select(Person.id, Person.platform_user_id, Person.locale, Person.roles)
        .join(CycleParticipant, CycleParticipant.person_id == Person.id)
        .where(CycleParticipant.cycle_id == cycle_id, Person.active.is_(True))
        .order_by(Person.id)
    )
    return [Member(*row) for row in rows.all()]


async def ungraded_count(session: AsyncSession, cycle_id: int) -> int:
    """Active participants with no grade at all for the cycle (not even proposed)."""
    graded = select(Grade.person_id).where(Grade.cycle_id == cycle_id)
    return int(
        await session.scalar(
            select(func.count())
            .select_from(CycleParticipant)
            .join(Person, Person.id == CycleParticipant.person_id)
            .where(
                CycleParticipant.cycle_id == cycle_id,
                Person.active.is_(True),
                CycleParticipant.person_id.not_in(graded),
            )
        )
        or 0
    )


async def grade_count(session: AsyncSession, cycle_id: int, statuses: Iterable[str]) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Grade)
            .where(Grade.cycle_id == cycle_id, Grade.status.in_(list(statuses)))
        )
        or 0
    )


async def cycle_checkins(
    session: AsyncSession, cycle_id: int, statuses: Iterable[str]
) -> list[tuple[int, int]]:
    """(check-in id, person id) of this cycle's check-ins in these statuses."""
    rows = await session.execute(
        select(CheckIn.id, CheckIn.person_id)
        .where(CheckIn.cycle_id == cycle_id, CheckIn.status.in_(list(statuses)))
        .order_by(CheckIn.id)
    )
    return [(int(i), int(p)) for i, p in rows.all()]


async def participants_action_items(
    session: AsyncSession, cycle_id: int, statuses: Iterable[str]
) -> list[int]:
    """Ids of the participants' action items in these statuses. An action item belongs to no cycle: the
    open ones of the cycle's people are what the cycle leaves open (carried over, they count again at the
    next cycle's close)."""
    return [
        int(i)
        for i in await session.scalars(
            select(ActionItem.id)
            .where(ActionItem.owner_id.in_(_members(cycle_id)), ActionItem.status.in_(list(statuses)))
            .order_by(ActionItem.id)
        )
    ]


async def participants_ratings(
    session: AsyncSession, cycle_id: int, statuses: Iterable[str], *, goal_kind: str
) -> list[tuple[int, str, int]]:
    """(rating id, kind, ref id) of ratings in these statuses of the participants' deliverables: their
    action items, and their goals of *this* cycle (a goal of another cycle is that cycle's business)."""
    this_cycles_goals = select(Goal.id).where(Goal.cycle_id == cycle_id)
    rows = await session.execute(
        select(DeliverableRating.id, DeliverableRating.kind, DeliverableRating.ref_id)
        .where(
            DeliverableRating.owner_id.in_(_members(cycle_id)),
            DeliverableRating.status.in_(list(statuses)),
            (DeliverableRating.kind != goal_kind) | DeliverableRating.ref_id.in_(this_cycles_goals),
        )
        .order_by(DeliverableRating.id)
    )
    return [(int(i), str(k), int(r)) for i, k, r in rows.all()]


async def appeal_count(session: AsyncSession, cycle_id: int, statuses: Iterable[str]) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(GradeAppeal)
            .where(GradeAppeal.cycle_id == cycle_id, GradeAppeal.status.in_(list(statuses)))
        )
        or 0
    )


async def other_active_cycle_of(
    session: AsyncSession, person_ids: Iterable[int], cycle_id: int, statuses: Iterable[str]
) -> dict[int, int]:
    """person id → the most recently started other cycle in ``statuses`` they take part in: where a
    carried-over check-in goes."""
    ids = sorted(set(person_ids))
    out: dict[int, int] = {}
    for start in range(0, len(ids), 5000):
        rows = await session.execute(
            select(CycleParticipant.person_id, Cycle.id)
            .join(Cycle, Cycle.id == CycleParticipant.cycle_id)
            .where(
                CycleParticipant.person_id.in_(ids[start : start + 5000]),
                Cycle.id != cycle_id,
                Cycle.status.in_(list(statuses)),
            )
            .order_by(Cycle.started_at.asc(), Cycle.id.asc())
        )
        out.update({int(p): int(c) for p, c in rows.all()})  # later rows (newer cycles) win
    return out


async def delivered_refs(session: AsyncSession, platform: str, card_key: str) -> dict[str, str]:
    """platform user id → message ref of every delivered copy of a card: what can be updated in place."""
    rows = await session.execute(
        select(CardMessage.platform_user_id, CardMessage.message_ref).where(
            CardMessage.card_key == card_key, CardMessage.platform == platform
        )
    )
    return {str(u): str(r) for u, r in rows.all()}


async def queued_recipients(
    session: AsyncSession, workspace_id: int, card_key: str, statuses: Iterable[str]
) -> set[str]:
    """Recipients of copies of a card not delivered yet (rows in ``statuses``)."""
    rows = await session.scalars(
        select(OutboxMessage.recipients).where(
            OutboxMessage.workspace_id == workspace_id,
            OutboxMessage.card_key == card_key,
            OutboxMessage.op == "send",
            OutboxMessage.status.in_(list(statuses)),
        )
    )
    return {str(uid) for recipients in rows for uid in recipients}


async def settle_rows(
    session: AsyncSession, model: Any, ids: list[int], *, allowed: Iterable[str], values: dict[str, Any]
) -> list[int]:
    """Compare-and-set many rows at once (``status IN allowed``), returning the ids actually changed: a row
    someone answered a moment ago is left alone, and its id is not in the answer."""
    states = list(allowed)
    changed: list[int] = []
    for start in range(0, len(ids), 5000):
        rows = await session.execute(
            update(model)
            .where(model.id.in_(ids[start : start + 5000]), model.status.in_(states))
            .values(**values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
        changed += [int(i) for i in rows.scalars()]
    return sorted(changed)
