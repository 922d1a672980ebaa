"""Reading back the audit log where a past event decides what happens now."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


async def has_entry(session: AsyncSession, *, action: str, entity: str, entity_id: int) -> bool:
    found = await session.scalar(
        select(AuditLog.id)
        .where(AuditLog.action == action, AuditLog.entity == entity, AuditLog.entity_id == entity_id)
        .limit(1)
    )
    return found is not None
