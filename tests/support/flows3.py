"""Helpers shared by the Flows III tests: an active cycle with goals, and small look-ups."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from bot.app.service import Service
from storage.models import AuditLog, Base, Cycle, CycleParticipant, Goal, Person

T = TypeVar("T")


async def make_cycle(
    service: Service,
    people: list[Person],
    *,
    code: str = "2026-Q4",
    ends_on: date = date(2026, 12, 31),
    goals: bool = True,
    status: str = "active",
) -> Cycle:
    async with service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=people[0].workspace_id,
            code=code,
            status=status,
            starts_on=date(2026, 10, 1),
            ends_on=ends_on,
            started_at=datetime(2026, 10, 1, tzinfo=UTC),
        )
        s.add(cycle)
        await s.flush()
        for p in people:
            s.add(CycleParticipant(cycle_id=cycle.id, person_id=p.id, goals_status="confirmed"))
            if goals:
                s.add(
                    Goal(
                        cycle_id=cycle.id, person_id=p.id, position=0, objective=f"{p.name} 目标一", weight=60
                    )
                )
                s.add(
                    Goal(
                        cycle_id=cycle.id, person_id=p.id, position=1, objective=f"{p.name} 目标二", weight=40
                    )
                )
    return cycle


async def goals_of(service: Service, cycle: Cycle, person: Person) -> list[Goal]:
    async with service.factory() as s:
        return list(
            await s.scalars(
                select(Goal)
                .where(Goal.cycle_id == cycle.id, Goal.person_id == person.id)
                .order_by(Goal.position)
            )
        )


async def rows(service: Service, model: type[T], *where: Any) -> list[T]:
    async with service.factory() as s:
        return list(await s.scalars(select(model).where(*where).order_by(model.id)))  # type: ignore[attr-defined]


async def count(service: Service, model: type[Base], *where: Any) -> int:
    async with service.factory() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def audit(service: Service, action: str) -> list[AuditLog]:
    return await rows(service, AuditLog, AuditLog.action == action)


def dims(value: int) -> dict[str, str]:
    from storage.feedback_scales import DIMENSIONS

    return {f"dim_{d}": str(value) for d in DIMENSIONS}
