"""What other flows may ask the digest flow: whether a person reads a daily digest at all.

The evidence flow promises to tell the requester when a photo request expires unanswered. The digest
reports expiries to whoever reads one (leaders; managers with ``[digest] managers_too``); a requester who
reads none is told directly instead, so nobody hears twice and nobody never hears.
"""

from __future__ import annotations

from bot.core.context import Context
from handlers.digest.digest import digest_scope
from storage.models import Person


async def reads_digest(ctx: Context, person: Person) -> bool:
    """True when ``person`` gets a daily digest (and therefore hears of expiries in it)."""
    return await digest_scope(ctx, person) is not None


__all__ = ["reads_digest"]
