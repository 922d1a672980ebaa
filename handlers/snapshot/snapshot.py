"""``/snapshot`` (``/成长``) and the schedule entry of the monthly growth snapshot.

The wave itself (who, when, once) is ``handlers.snapshot.wave``; this module is what a person asks for:
their latest snapshot as a card with its image and a signed link to the PDF (``handlers.snapshot.links``),
or, with ``/snapshot @name``, the snapshot of someone they may oversee (``bot.core.people.may_oversee``: the
manager or their delegate, the manager above, the HRBP, leaders and HR admins), refused with the reason
otherwise.
"""

from __future__ import annotations

import asyncio

from bot.core.context import Context, Reply
from bot.core.people import find_by_mention, may_oversee
from bot.core.router import Router
from bot.core.schedule import Host, ScheduleEntry, Sweep
from cards.snapshot import picture, snapshot_card
from cards.snapshot_chart import render_jpeg
from handlers.snapshot import links
from handlers.snapshot.view import snapshot_view
from handlers.snapshot.wave import WaveReport, run_wave, store_rendered
from storage.media import MediaStore
from storage.models import Person

router = Router()


async def sweep_snapshots(host: Host) -> WaveReport:
    """Every tick on the leader: send whatever wave has fallen due (usually nothing, for one query)."""
    return await run_wave(host)


SCHEDULE: tuple[ScheduleEntry, ...] = (Sweep("sweep_snapshots", sweep_snapshots),)


async def _target(ctx: Context, args: str) -> Person:
    token = args.strip()
    if not token:
        return ctx.person
    matches = await find_by_mention(ctx.session, ctx.workspace.id, token)
    if len(matches) != 1:
        raise ctx.refuse("snapshot.no_such_person", name=token)
    person = matches[0]
    if person.id != ctx.person.id and not await may_oversee(ctx.session, ctx.person, person):
        raise ctx.refuse("snapshot.not_allowed", name=person.name)
    return person


@router.command("snapshot", "成长")
async def snapshot_command(ctx: Context, args: str) -> Reply:
    person = await _target(ctx, args)
    found = await snapshot_view(ctx.session, person, ctx.settings, today=ctx.today(person))
    media = ctx.settings.media
    store = MediaStore(media.dir, max_bytes=media.max_image_bytes)
    media_id = found.row.media_id if found.row is not None else None
    if media_id is None or not store.exists(media_id):
        image = await asyncio.to_thread(render_jpeg, picture(ctx.t, found.view))
        media_id = await asyncio.to_thread(store_rendered, store, image)
    link = links.new_link(
        ctx.settings, subject_id=person.id, month=found.view.month, viewer_id=ctx.person.id, now=ctx.now
    )
    key = await links.signing_key(ctx.session, ctx.settings, ctx.now)
    card = snapshot_card(
        ctx.t,
        found.view,
        media_id=media_id,
        pdf_url=links.url_for(ctx.settings, links.make_token(key, link)),
        pdf_hours=ctx.settings.snapshot.link_hours,
        own=person.id == ctx.person.id,
    )
    ctx.audit("snapshot.viewed", "person", person.id, month=found.view.month)
    return Reply(card=card)
