"""Sending with manners: a prompt to a person waits for the end of their quiet hours.

Flows send through ``send_polite`` when the message is a prompt the person did not just ask for; the row is
written to the outbox as usual, due when the quiet hours end, so nothing is dropped.
"""

from __future__ import annotations

from bot.core.context import Context
from cards.model import Card
from storage.models import OutboxMessage, Person
from storage.queries import engagement as eq


async def send_polite(
    ctx: Context, person: Person, card: Card, *, card_key: str | None = None, dedupe_key: str | None = None
) -> OutboxMessage:
    """Send a prompt that waits for the end of the recipient's quiet hours (if it is quiet now)."""
    row = ctx.outbox.send(person, card, card_key=card_key, dedupe_key=dedupe_key)
    await hold_for_quiet_hours(ctx, person, row)
    return row


async def hold_for_quiet_hours(ctx: Context, person: Person, row: OutboxMessage) -> None:
    """Make an outbox row written in this transaction due only when ``person``'s quiet hours end."""
    until = await eq.quiet_until(ctx.session, person, ctx.now)
    if until is not None:
        row.next_attempt_at = until
