"""One action item as both halves of this flow see it: action_items.py (the item's life: create, remind,
done, accept, return) and escalation.py (the overdue ladder and the manager's decisions).

Kept apart so neither half reaches into the other's internals: how a button's item id is loaded (and
checked against the clicker's workspace), the arguments every action-item card takes, and the owner card
with the key that reminders, nudges and escalations update in place. Which statuses count as open is
``bot.core.status.OPEN_ACTION_ITEM``.
"""

from __future__ import annotations

from typing import Any

from bot.core.context import Context
from cards.action_items import owner_card
from cards.catalogue import Translator
from cards.model import Card, Colour
from storage.models import ActionItem, Person


def owner_card_key(item_id: int) -> str:
    return f"action-item:{item_id}"


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
