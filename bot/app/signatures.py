"""The memory of seen signatures adapters may use (``adapters.base.SignatureMemory``), kept in the database.

DingTalk robot signatures cover only the timestamp (issue 16 #5): the adapter refuses a pair that already
came with another message id. Choice: a table of its own (``signature_claims``) rather than rows in
``inbound_events``: a claim must be made before the event is dispatched and must hold even when the
dispatcher's transaction rolls back, and its lifetime is the replay window, not the dedupe window. One short
transaction per claim, committed before the dispatcher runs; the database's unique key makes two replicas
agree on one first id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.clock import Clock
from storage.queries.signatures import claim_signature


class DatabaseSignatures:
    def __init__(self, factory: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.factory = factory
        self.clock = clock

    async def claim(self, platform: str, key: str, first_id: str, expires_at: datetime) -> str:
        async with self.factory() as session, session.begin():
            return await claim_signature(
                session,
                platform=platform,
                key=key,
                first_id=first_id,
                expires_at=expires_at,
                now=self.clock.now(),
            )
