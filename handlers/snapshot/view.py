"""One person's snapshot as a view: the stored one (what the card showed), else last month's, computed now.

``/snapshot`` and the PDF link both read through here, so the chat and the PDF never disagree. A person with
no stored snapshot yet (they joined after the last wave, or the service was installed mid-month) still gets
last month's figures, computed on the spot and not stored: storing it would make the next wave skip them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import person_zone
from cards.snapshot import SnapshotView
from handlers.snapshot.wave import previous_month, view_of
from storage.models import Person, Snapshot
from storage.queries import snapshot as sq


@dataclass(frozen=True)
class Found:
    view: SnapshotView
    row: Snapshot | None


async def snapshot_view(
    session: AsyncSession, person: Person, settings: Settings, *, today: date, month: str | None = None
) -> Found:
    """``person``'s snapshot of ``month`` (default: their latest; none stored: the month before ``today``)."""
    tz = person_zone(person, settings)
    row = await sq.snapshot_of(session, person.id, month)
    if row is not None:
        figures = sq.MonthFigures.from_json(row.figures)
        return Found(view_of(person, figures, sq.MonthWindow.of(row.month, tz)), row)
    wanted = month or previous_month(today)
    window = sq.MonthWindow.of(wanted, tz)
    figures = (
        await sq.month_figures(session, [person], window, threshold=settings.feedback.anonymity_threshold)
    )[person.id]
    return Found(view_of(person, figures, window), None)
