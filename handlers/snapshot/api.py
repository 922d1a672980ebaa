"""What the app may call in the snapshot flow.

- ``pdf_for_link``: the HTTP route ``GET /snapshot/{token}`` (``bot/app/http.py``) turns a signed link into
  the PDF bytes, or None (404) when the link is forged, expired or no longer allowed;
- ``run_wave``: the benchmark (``bench/snapshots.py``) runs one wave as the scheduler's sweep would.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.config import Settings
from bot.core.localtime import person_date
from bot.core.people import may_oversee
from cards.catalogue import Translator
from cards.snapshot import picture
from cards.snapshot_chart import render_pdf
from handlers.snapshot.links import read_token, signing_key
from handlers.snapshot.view import snapshot_view
from handlers.snapshot.wave import Renderer, run_wave
from storage.models import AuditLog, Person

__all__ = ["Renderer", "pdf_for_link", "run_wave"]


async def pdf_for_link(
    factory: async_sessionmaker[AsyncSession], settings: Settings, token: str, now: datetime
) -> bytes | None:
    """The PDF a link stands for, in the language of whoever asked for the link; the download is audited."""
    async with factory() as session, session.begin():
        link = read_token(await signing_key(session, settings, now), token, now)
        if link is None:
            return None
        subject = await session.get(Person, link.subject_id)
        viewer = await session.get(Person, link.viewer_id)
        if subject is None or viewer is None or not viewer.active:
            return None
        if viewer.id != subject.id and not await may_oversee(session, viewer, subject):
            return None
        found = await snapshot_view(
            session, subject, settings, today=person_date(subject, now, settings), month=link.month
        )
        session.add(
            AuditLog(
                at=now,
                actor_id=viewer.id,
                action="snapshot.pdf",
                entity="person",
                entity_id=subject.id,
                detail={"month": link.month},
            )
        )
    return await asyncio.to_thread(render_pdf, picture(Translator(viewer.locale), found.view))
