"""One action item as both halves of this flow see it: action_items.py (the item's life: create, remind,
done, accept, return) and escalation.py (the overdue ladder and the manager's decisions).

Kept apart so neither half reaches into the other's internals: how a button's item id is loaded (and
checked against the clicker's workspace), the arguments every action-item card takes, and the owner card
with the key that reminders, nudges and escalations update in place. Which statuses count as open is
``bot.core.status.OPEN_ACTION_ITEM``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.core.context import Context
from cards.action_items import owner_card, resolved_card, superseded_card
from cards.catalogue import Translator
from cards.model import Card, Colour
from storage.models import ActionItem, AuditLog, Person

ESCALATED = "action_item.escalated"
"""The audit action of each escalation step (its detail names the level and the recipient)."""


def owner_card_key(item_id: int) -> str:
    return f"action-item:{item_id}"


def escalation_card_key(item_id: int, level: int) -> str:
    return f"action-escalation:{item_id}:{level}"


async def load_item(ctx: Context, item_id: int) -> tuple[ActionItem, Person]:
    """The item and its owner, in the clicker's workspace; anything else is a stale or forged button."""
    item = await ctx.session.get(ActionItem, item_id)
    owner = await ctx.session.get(Person, item.owner_id) if item is not None else None
    if item is None or owner is None or owner.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    return item, owner


async def describe(ctx: Context, item: ActionItem) -> dict[str, Any]:
    """The keyword arguments every action-item card takes (names resolved once)."""
    owner = await ctx.session.get(Person, item.owner_id)
    acceptor = await ctx.session.get(Person, item.acceptor_id) if item.acceptor_id else None
    return {
        "item_id": item.id,
        "deliverable": item.deliverable,
        "deadline": item.deadline,
        "owner": owner.name if owner else "?",
        "acceptor": acceptor.name if acceptor else None,
        "status": item.status,
    }


async def build_owner_card(
    ctx: Context,
    item: ActionItem,
    t: Translator,
    *,
    title_key: str = "action_items.new_title",
    intro: str | None = None,
    colour: Colour = "blue",
) -> Card:
    return owner_card(
        t,
        **await describe(ctx, item),
        evidence_required=item.evidence_required,
        title_key=title_key,
        intro=intro,
        colour=colour,
    )


async def send_owner_card(
    ctx: Context, owner: Person, item: ActionItem, card: Card, *, dedupe_key: str | None = None
) -> None:
    """Send the owner a new card about ``item``. The card before it (same key) goes to its final state first:
    only the newest card about an item has live buttons (issue 15 #10)."""
    t = ctx.translator(owner)
    await ctx.outbox.supersede(
        owner, owner_card_key(item.id), superseded_card(t, **await describe(ctx, item))
    )
    ctx.outbox.send(owner, card, card_key=owner_card_key(item.id), dedupe_key=dedupe_key)


async def settle_cards(
    ctx: Context, item: ActionItem, *, what_key: str, owner: Person | None = None, **params: Any
) -> None:
    """The item left the state its cards were about (done, closed, extended, reassigned): put the escalation
    cards its manager and HRBP got, and ``owner``'s card when given, into the final state, each in the
    reader's language, saying ``what_key`` happened. The clicked card is also replaced by the reply, which
    the dispatcher sends after these updates, so it ends as the reply card."""
    rows = await ctx.session.scalars(
        select(AuditLog.detail).where(
            AuditLog.entity == "action_item", AuditLog.entity_id == item.id, AuditLog.action == ESCALATED
        )
    )
    steps = {
        (int(d["level"]), int(d["recipient_id"]))
        for d in rows
        if isinstance(d, dict) and d.get("recipient_id") and int(d.get("level", 0)) >= 2
    }
    described = await describe(ctx, item)
    targets: list[tuple[Person, str]] = []
    for level, person_id in sorted(steps):
        person = await ctx.session.get(Person, person_id)
        if person is not None:
            targets.append((person, escalation_card_key(item.id, level)))
    if owner is not None:
        targets.append((owner, owner_card_key(item.id)))
    for person, key in targets:
        t = ctx.translator(person)
        await ctx.outbox.supersede(person, key, resolved_card(t, **described, what=t(what_key, **params)))
