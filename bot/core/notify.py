"""Sending with manners: a prompt to a person waits for the end of their quiet hours.

One rule for every send that is not an answer to something the person just did: scheduled jobs (the
dispatcher holds everything a job wrote, ``hold_written``) and event-driven prompts (flows send through
``send_polite``). The row is written to the outbox as usual, due when the quiet hours end, so nothing is
dropped; answers to a click or a message are never held.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from sqlalchemy import select

from bot.core.context import Context
from cards.model import Card
from storage.models import OutboxMessage, Person, QuietHours
from storage.queries import engagement as eq


async def send_polite(
    ctx: Context, person: Person, card: Card, *, card_key: str | None = None, dedupe_key: str | None = None
) -> OutboxMessage:
    """Send a prompt that waits for the end of the recipient's quiet hours (if it is quiet now)."""
    row = ctx.outbox.send(person, card, card_key=card_key, dedupe_key=dedupe_key)
    await hold_for_quiet_hours(ctx, person, row)
    return row


async def hold_for_quiet_hours(ctx: Context, person: Person, row: OutboxMessage) -> None:
    """Make an outbox row written in this transaction due no earlier than the end of ``person``'s quiet
    hours (a row already due later keeps its time)."""
    until = await quiet_until(ctx, person)
    if until is not None and until > row.next_attempt_at:
        row.next_attempt_at = until


async def hold_written(ctx: Context) -> None:
    """Hold every one-person send written in this transaction (a scheduled job's prompts, reminders and
    escalations) for its recipient's quiet hours."""
    rows = [r for r in ctx.outbox.written if r.op == "send" and len(r.recipients) == 1]
    if not rows:
        return
    uids = {r.recipients[0] for r in rows}
    people = {
        p.platform_user_id: p
        for p in await ctx.session.scalars(
            select(Person).where(Person.workspace_id == ctx.workspace.id, Person.platform_user_id.in_(uids))
        )
    }
    for row in rows:
        person = people.get(row.recipients[0])
        if person is not None:
            await hold_for_quiet_hours(ctx, person, row)


async def quiet_until(ctx: Context, person: Person) -> datetime | None:
    """When ``person``'s quiet hours around now end, or None if it is not quiet for them now."""
    return quiet_end(await eq.quiet_hours_of(ctx.session, person.id), ctx.zone(person), ctx.now)


def quiet_end(quiet: QuietHours | None, zone: tzinfo, now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end (in ``now``'s zone), or None if ``now`` is not quiet.

    ``starts``/``ends`` are wall-clock times in ``zone``; a window may span midnight (22:00-07:30)."""
    if quiet is None:
        return None
    start, end = eq.parse_hhmm(quiet.starts), eq.parse_hhmm(quiet.ends)
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        inside = start <= clock < end
        end_day = today
    else:  # spans midnight
        inside = clock >= start or clock < end
        end_day = today + timedelta(days=1) if clock >= start else today
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)
