"""The one person a command-line user id names (``perfloop person export|erase``, ``perfloop results flag``).

A platform user id is unique within a workspace only; ``--platform`` narrows the search when the same id
exists in several workspaces."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, Workspace


class PersonLookupError(ValueError):
    """No person, or more than one, with that user id; the message is the one line to print."""


async def find_person(session: AsyncSession, user_id: str, platform: str | None) -> Person:
    """The one person with this platform user id (``platform`` narrows it), or ``PersonLookupError``."""
    query = (
        select(Person)
        .join(Workspace, Workspace.id == Person.workspace_id)
        .where(Person.platform_user_id == user_id)
    )
    if platform:
        query = query.where(Workspace.platform == platform)
    found = list(await session.scalars(query))
    if not found:
        raise PersonLookupError(f"no person with user id {user_id!r}")
    if len(found) > 1:
        raise PersonLookupError(f"user id {user_id!r} exists in several workspaces; pass --platform")
    return found[0]
