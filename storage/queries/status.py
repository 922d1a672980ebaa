"""Compare-and-set status transitions: the first valid click wins, a late or duplicate one changes nothing."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Update, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base

M = TypeVar("M", bound=Base)

_BUILT: dict[Hashable, Update] = {}
"""Statements by (model, column, allowed states, columns set): most clicks end in a transition, and building
the statement cost as much as running it (issue 22). A call with ``extra`` conditions or SQL expressions
among the values is built each time."""


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

    One round trip: the row comes back from the UPDATE itself (``RETURNING``: PostgreSQL, SQLite ≥ 3.35),
    refreshing the copy the session may already hold.
    """
    states = tuple(allowed)
    conditions = tuple(extra)
    if conditions or any(_is_sql(v) for v in values.values()):
        stmt = _build(model, row_id, column, states, values, conditions)
        return (await session.scalars(stmt)).one_or_none()
    key = (model, column, states, tuple(sorted(values)))
    built = _BUILT.get(key)
    if built is None:
        names = {name: bindparam(f"new_{name}", type_=getattr(model, name).type) for name in values}
        built = _BUILT[key] = _build(model, bindparam("row_id"), column, states, names, ())
    params = {f"new_{name}": value for name, value in values.items()}
    return (await session.scalars(built, {"row_id": row_id, **params})).one_or_none()


def _build(
    model: type[M],
    row_id: Any,
    column: str,
    states: tuple[str | None, ...],
    values: dict[str, Any],
    extra: tuple[Any, ...],
) -> Update:
    col = getattr(model, column)
    cond = col.in_([s for s in states if s is not None])
    if None in states:
        cond = cond | col.is_(None)
    return (
        update(model)
        .where(model.id == row_id, cond, *extra)  # type: ignore[attr-defined]
        .values(**values)
        .returning(model)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


def _is_sql(value: Any) -> bool:
    """A SQL expression (``Model.attempts + 1``) rather than a value: it belongs in the statement itself."""
    return isinstance(value, ColumnElement) or hasattr(value, "__clause_element__")
