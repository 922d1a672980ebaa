"""The photo request of a key-result rhythm (issue 17 item 7): "每周三 10:00 前上传客户拜访照片".

The goals flow stores the rhythm (``/rhythm``); the scheduler works out each rhythm day in the person's zone
(``scheduler/rhythms.py``: public holidays skipped, one ledger key per rhythm and day) and hands the day
here. This flow owns evidence requests, so it opens the request: it names the key result and the rhythm,
asks on behalf of whoever set the rhythm (the owner's manager rates the photo either way), and stays open
until the end of that local day, so a photo a little after the rhythm's time still counts and the rating
card shows when it came. The photo that answers carries the key result (``Evidence.key_result_id``).

Nothing is sent for a rhythm stopped since, a key result whose cycle is no longer active, or a day that is
already over (a catch-up after downtime).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.core.context import Context
from bot.core.schedule import Entry, Job, RhythmArgs, ScheduleEntry
from bot.core.status import CycleStatus
from handlers.evidence.evidence import REQUEST_DAY_ENDS, request_evidence
from storage.models import EvidenceRequest, KeyResultRhythm, Person
from storage.queries.kr_links import kr_owner


async def open_rhythm_request(ctx: Context, *, rhythm_id: int, day: date) -> EvidenceRequest | None:
    """Scheduler entry point (ctx.person = the key result's owner): open the day's request, or None when
    there is nothing to ask for."""
    rhythm = await ctx.session.get(KeyResultRhythm, rhythm_id)
    if rhythm is None or not rhythm.active or rhythm.person_id != ctx.person.id:
        return None
    owner = await kr_owner(ctx.session, rhythm.key_result_id)
    if owner is None or owner.cycle.status != CycleStatus.ACTIVE or owner.goal.person_id != ctx.person.id:
        return None
    closes = datetime.combine(day, REQUEST_DAY_ENDS, tzinfo=ctx.zone()).astimezone(UTC)
    if closes <= ctx.now:
        return None
    setter = await ctx.session.get(Person, rhythm.created_by_id) if rhythm.created_by_id else None
    asker = setter if setter is not None and setter.active else ctx.person
    return await request_evidence(
        ctx, person=ctx.person, item=None, requested_by=asker, rhythm=rhythm, closes_at=closes
    )


SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(
        Job.OPEN_RHYTHM_EVIDENCE,
        RhythmArgs,
        lambda ctx, a: open_rhythm_request(ctx, rhythm_id=a.rhythm_id, day=a.day),
    ),
)
