"""Compare-and-set status transitions: the first valid click wins, a late or duplicate one changes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base

M = TypeVar("M", bound=Base)


async def transition(
    session: AsyncSession,
    model: type[M],
    row_id: int,
    *,
    column: str = "status",
    allowed: Iterable[str | None],
    values: dict[str, Any],
    extra: Iterable[Any] = (),
) -> M | None:
    """``UPDATE model SET values WHERE id = row_id AND column IN allowed`` and return the fresh row.

    Returns None when no row matched (already handled by someone else, or never existed), so the caller can
    refuse without having changed anything. ``None`` in ``allowed`` matches SQL NULL.
    """
    col = getattr(model, column)
    allowed = list(allowed)
    states = [a for a in allowed if a is not None]
    cond = col.in_(states)
    if None in allowed:
        cond = cond | col.is_(None)
    stmt = (
        update(model)
        .where(model.id == row_id, cond, *extra)  # type: ignore[attr-defined]
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], await session.execute(stmt))
    if result.rowcount != 1:
        return None
    return await session.get(model, row_id, populate_existing=True)
