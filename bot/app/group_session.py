"""The session a group of clicks shares (``bot/app/dispatcher.py``): the senders looked up for all of them at
once, and the rule by which a handler still reads its own deferred rows (``bot.core.context.Deferred``).

The dispatcher empties the session after each click, so every click starts from what the transaction holds,
as it would alone, without paying for a session of its own (a new session costs about as much as a query).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from bot.core.context import Deferred
from bot.core.events import Event
from storage.models import AuditLog, OutboxMessage, Person, Workspace

SenderKey = tuple[str, str, str]
"""(platform, app id, platform user id)."""
WorkspaceOf = Callable[[AsyncSession, str, str], Awaitable[Workspace]]

_READS_DEFERRED = (AuditLog, OutboxMessage)
_SENDERS = select(Person).where(
    Person.workspace_id == bindparam("workspace_id"),
    Person.platform_user_id.in_(bindparam("user_ids", expanding=True)),
    Person.active.is_(True),
)


class GroupSession(Session):
    """Before a statement that may read the audit log or the outbox (or a plain Core statement, which could
    read anything), the current click's deferred rows (``session.info["deferred"]``) are put into the
    session, so autoflush writes them first and the handler reads its own writes."""


@event.listens_for(GroupSession, "do_orm_execute")
def _release_deferred(state: ORMExecuteState) -> None:
    deferred = state.session.info.get("deferred")
    if isinstance(deferred, Deferred) and deferred.rows:
        mappers = state.all_mappers
        if not mappers or any(m.class_ in _READS_DEFERRED for m in mappers):
            deferred.release()


async def senders(
    session: AsyncSession, events: list[Event], workspace_of: WorkspaceOf
) -> dict[SenderKey, Person | None]:
    """Every sender of the group in one SELECT per workspace: (platform, app id, user id) → the active
    person, None for an unknown one. Detached, to be added back to the session for their own click."""
    by_workspace: dict[tuple[str, str], set[str]] = {}
    for e in events:
        by_workspace.setdefault((e.platform, e.workspace), set()).add(e.sender_id)
    found: dict[SenderKey, Person | None] = {}
    for (platform, app_id), user_ids in by_workspace.items():
        workspace = await workspace_of(session, platform, app_id)
        found.update(((platform, app_id, uid), None) for uid in user_ids)
        people = await session.scalars(_SENDERS, {"workspace_id": workspace.id, "user_ids": sorted(user_ids)})
        found.update(((platform, app_id, p.platform_user_id), p) for p in people)
    session.expunge_all()
    return found
