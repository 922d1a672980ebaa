"""Writing a started cycle's participants and kickoff cards a chunk at a time (issue 22 #3).

A company-wide kickoff used to be one transaction: 100,000 participants and as many outbox rows, committed
after several seconds, and not one card sent before that commit. Now the confirmation commits the first chunk
with the cycle's move to *active* (``begin_launch`` + ``launch_step``), its cards leave at once, and the rest
follow a chunk per transaction (the app's ``LaunchWriter`` calls ``launch_step`` until it says done).

``Cycle.launch_after`` holds the position: the id of the last person written (people in scope are taken in
id order), 0 before the first chunk, None once everyone has been written. Each chunk moves it by
compare-and-set in the same transaction as its participants and outbox rows, so a chunk is written whole or
not at all, exactly once: a process that dies in between leaves the position where the last commit put it
and the next one to look (the same process restarted, or another replica) goes on from there; two writers
racing for one chunk get one winner.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.core.config import Settings
from bot.core.context import Outbox
from bot.core.status import CycleStatus
from cards.catalogue import Translator
from cards.kickoff import kickoff_card
from cards.model import Card
from handlers.kickoff.scope import scope_departments
from storage.models import Cycle, CycleParticipant
from storage.queries import cycles as cq
from storage.queries import people as pq

FIRST_CHUNK = 200
"""People in the chunk committed with the confirmation (at most ``[cycles] kickoff_chunk``): small, so that a
confirming click stays well inside the platform's answer deadline and its cards leave at once; the writer
goes on in full chunks while they are being sent."""


@dataclass(frozen=True)
class LaunchStep:
    """What one chunk wrote. ``done``: nobody is left (or the launch was stopped); ``raced``: another
    writer moved the position first and this transaction wrote nothing."""

    people: int = 0
    rows: int = 0
    done: bool = True
    raced: bool = False


async def begin_launch(session: AsyncSession, cycle: Cycle) -> int:
    """In the transaction that made ``cycle`` active: drop the participants of an earlier start who are no
    longer in scope (a cancelled cycle started again with a narrower scope), and mark the launch to start
    from the first person. Returns how many people are in scope."""
    departments = await scope_departments(session, cycle.workspace_id, list(cycle.scope))
    await cq.drop_participants_outside(session, cycle.id, cycle.workspace_id, departments)
    cycle.launch_after = 0
    await session.flush()
    return await pq.count_active(session, cycle.workspace_id, departments)


async def launch_step(
    session: AsyncSession, outbox: Outbox, settings: Settings, cycle: Cycle, *, limit: int
) -> LaunchStep:
    """Write the next ``limit`` people of ``cycle``'s launch: their participation (unless they already take
    part) and their kickoff card (staff and managers get different cards, each broadcast once per locale in
    the platform's batches), in the caller's transaction, and move the launch on.

    A cycle no longer active (cancelled before everyone was written) stops its launch: nobody more is told
    about a cycle that is not running."""
    was = cycle.launch_after
    if was is None:
        return LaunchStep()
    if cycle.status != CycleStatus.ACTIVE:
        await cq.move_launch(session, cycle.id, was, None)
        set_committed_value(cycle, "launch_after", None)
        return LaunchStep()
    departments = await scope_departments(session, cycle.workspace_id, list(cycle.scope))
    people = await pq.active_members(session, cycle.workspace_id, departments, after=was, limit=limit)
    to = people[-1].id if len(people) == limit else None
    if not await cq.move_launch(session, cycle.id, was, to):
        return LaunchStep(done=False, raced=True)
    set_committed_value(cycle, "launch_after", to)
    known = await cq.participants_among(session, cycle.id, [p.id for p in people])
    joining = [{"cycle_id": cycle.id, "person_id": p.id} for p in people if p.id not in known]
    if joining:
        await session.execute(insert(CycleParticipant), joining)
    managers = await pq.manager_ids_among(session, people)
    rows = 0
    for is_manager in (False, True):
        group = [p for p in people if (p.id in managers) == is_manager]
        if not group:
            continue

        def build(t: Translator, is_manager: bool = is_manager) -> Card:
            return kickoff_card(
                t,
                cycle_id=cycle.id,
                code=cycle.code,
                starts_on=cycle.starts_on,
                ends_on=cycle.ends_on,
                schedule=settings.schedule,
                max_goals=settings.cycles.max_goals,
                manager=is_manager,
            )

        rows += await outbox.broadcast(group, build, card_key=f"kickoff:{cycle.id}")
    return LaunchStep(people=len(people), rows=rows, done=to is None)


async def launching_cycles(session: AsyncSession) -> list[int]:
    """Cycles whose launch is not finished, for whoever writes the rest."""
    return await cq.launching_cycles(session)
