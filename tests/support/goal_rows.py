"""Goal-tree rows written directly for flow tests (issue 17): a confirmed person's objectives with measurable
key results and a value history, without going through the goals form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bot.app.service import Service
from storage.models import Cycle, Goal, KeyResult, KeyResultValue, Person

SET_AT = datetime(2026, 10, 8, 2, 0, tzinfo=UTC)


@dataclass
class Seeded:
    goals: list[Goal]
    krs: dict[int, list[KeyResult]] = field(default_factory=dict)
    """Goal id → its key results, in order."""


async def seed_goals(
    service: Service,
    cycle: Cycle,
    person: Person,
    goals: list[tuple[str, int, list[dict[str, Any]]]],
    *,
    level: str = "person",
    department_id: int | None = None,
) -> Seeded:
    """``goals``: (objective, weight, key results as ``KeyResult`` keyword arguments); a key result with a
    ``current_value`` also gets that value as a check-in row of its history, recorded on ``SET_AT``."""
    out = Seeded([])
    async with service.factory() as s, s.begin():
        for position, (objective, weight, krs) in enumerate(goals):
            goal = Goal(
                cycle_id=cycle.id,
                person_id=person.id,
                position=position,
                objective=objective,
                weight=weight,
                level=level,
                department_id=department_id,
            )
            s.add(goal)
            await s.flush()
            rows = []
            for i, kw in enumerate(krs):
                kr = KeyResult(goal_id=goal.id, position=i, **kw)
                s.add(kr)
                await s.flush()
                if kr.current_value is not None and kr.target_value:
                    kr.progress = (kr.current_value - kr.start_value) / (kr.target_value - kr.start_value)
                    s.add(
                        KeyResultValue(
                            key_result_id=kr.id,
                            value=kr.current_value,
                            progress=kr.progress,
                            source="checkin",
                            recorded_by_id=person.id,
                            recorded_at=SET_AT,
                        )
                    )
                rows.append(kr)
            if rows:
                goal.own_progress = sum(k.progress for k in rows) / len(rows)
            out.goals.append(goal)
            out.krs[goal.id] = rows
    return out


def number_kr(title: str, target: float, *, current: float | None = None, unit: str = "家") -> dict[str, Any]:
    return {"title": title, "kind": "number", "unit": unit, "start_value": 0.0, "target_value": target,
            "current_value": current}  # fmt: skip


def deliverable_kr(title: str) -> dict[str, Any]:
    return {"title": title, "kind": "deliverable"}


def date_kr(title: str, day: date) -> dict[str, Any]:
    return {"title": title, "kind": "date", "target_date": day}
