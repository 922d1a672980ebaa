"""Who a cycle is for, counted without holding everyone in memory.

A cycle's scope is a list of departments (each with everything below it), or the whole company when empty.
The preview and the start only need numbers (how many people, how many of them managers, how many already
take part in an overlapping cycle), so the database counts them: a company-wide kickoff of 100,000 people
used to read them all into a list first (about 50 MB at its peak, and seconds before the first card).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from storage.queries import people as pq


@dataclass(frozen=True)
class Headcount:
    people: int
    managers: int


async def scope_departments(session: AsyncSession, workspace_id: int, scope: list[int]) -> set[int] | None:
    """The departments in scope with everything below them; None for the whole company."""
    return await pq.department_subtree(session, workspace_id, scope) if scope else None


async def count_scope(session: AsyncSession, workspace_id: int, departments: set[int] | None) -> Headcount:
    """People in scope, and how many of them manage someone."""
    return Headcount(
        await pq.count_active(session, workspace_id, departments),
        await pq.count_managers(session, workspace_id, departments),
    )
