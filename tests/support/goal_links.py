"""Seeding for the goal-link tests (issue 17 items 7 and 9): cycles, objectives and key results written
directly, so rhythms, links, carry-over and the goal figures can be tested without the goals form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bot.app.service import Service
from storage.models import Cycle, CycleParticipant, Goal, KeyResult, Person


@dataclass(frozen=True)
class Kr:
    title: str
    kind: str = "number"
    start: float = 0.0
    target: float | None = 10.0
    current: float | None = None
    progress: float = 0.0
    unit: str | None = None
    milestones: tuple[dict[str, Any], ...] = ()
    deadline: date | None = None


async def add_cycle(
    service: Service,
    org_workspace_id: int,
    people: Sequence[Person],
    *,
    code: str = "2026-Q4",
    status: str = "active",
    starts_on: date = date(2026, 10, 1),
    ends_on: date = date(2026, 12, 31),
    closed_at: datetime | None = None,
    goals_status: str = "none",
) -> Cycle:
    async with service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=org_workspace_id,
            code=code,
            status=status,
            starts_on=starts_on,
            ends_on=ends_on,
            started_at=datetime.combine(starts_on, datetime.min.time(), tzinfo=UTC),
            closed_at=closed_at,
        )
        s.add(cycle)
        await s.flush()
        s.add_all(
            CycleParticipant(cycle_id=cycle.id, person_id=p.id, goals_status=goals_status) for p in people
        )
    return cycle


async def add_goal(
    service: Service,
    cycle: Cycle,
    owner: Person,
    objective: str,
    krs: Sequence[Kr] = (),
    *,
    weight: int = 100,
    parent_id: int | None = None,
    level: str = "person",
    position: int = 0,
    department_id: int | None = None,
) -> tuple[Goal, list[KeyResult]]:
    async with service.factory() as s, s.begin():
        goal = Goal(
            cycle_id=cycle.id,
            person_id=owner.id,
            objective=objective,
            weight=weight,
            parent_id=parent_id,
            level=level,
            position=position,
            department_id=department_id,
        )
        s.add(goal)
        await s.flush()
        rows = [
            KeyResult(
                goal_id=goal.id,
                position=i,
                title=k.title,
                kind=k.kind,
                unit=k.unit,
                start_value=k.start,
                target_value=k.target,
                current_value=k.current,
                progress=k.progress,
                milestones=[dict(m) for m in k.milestones],
                deadline=k.deadline,
            )
            for i, k in enumerate(krs)
        ]
        s.add_all(rows)
        await s.flush()
    return goal, rows
