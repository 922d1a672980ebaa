"""Once-only steps recorded in ``audit_log``: "reminded T-3 for item 7 (deadline 2026-12-01)" exists or not.

The scheduler keeps its own natural-key ledger (``scheduled_sends``); flow functions check this one too, so a
manual re-run, a second replica or a direct call from a test still does each step exactly once. The key sits
in ``detail["key"]`` and is looked up among the few audit rows of one entity (indexed by entity, entity_id).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


async def done_before(session: AsyncSession, *, action: str, entity: str, entity_id: int, key: str) -> bool:
    rows = await session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == entity, AuditLog.entity_id == entity_id, AuditLog.action == action
        )
    )
    return any(isinstance(d, dict) and d.get("key") == key for d in rows)
