"""An action item bound to a key result (issue 17 item 7), so a manager sees the proof behind a number.

``/action`` answers, when the owner has key results in a running cycle, with the new item and one select:
which of the owner's key results it serves, or none. Whoever created the item, the owner, or someone who
oversees the owner may answer (and answer again to change it); the photos of a linked item then count as
proof of that key result (``storage.queries.kr_links.proof_for_kr``). Items from a 3-2-1 review, a check-in
follow-up or a "needs support" rating stay unlinked: nothing in them says which key result they serve.
"""

from __future__ import annotations

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import may_oversee
from bot.core.router import Router
from bot.core.status import ActionItemStatus, CycleStatus
from cards.goal_actions import ActionKeyResultLink
from cards.kr_link import kr_link_card, kr_link_form, kr_linked_card
from cards.kr_select import NO_KEY_RESULT, KrOption
from cards.model import Card, Form
from handlers.action_items.item import load_item
from storage.models import ActionItem, Person
from storage.queries.kr_links import kr_choices

router = Router()

RUNNING = (CycleStatus.ACTIVE,)
"""Cycles whose key results an item may be linked to."""


async def owner_key_results(ctx: Context, owner: Person) -> list[KrOption]:
    choices = await kr_choices(ctx.session, owner.id, cycle_statuses=RUNNING)
    return [KrOption(c.key_result_id, c.objective, c.title, c.progress) for c in choices]


async def link_offer(ctx: Context, item: ActionItem, owner: Person, created: str) -> Card | None:
    """The "which key result does it serve?" card for a new item, or None when the owner has none."""
    options = await owner_key_results(ctx, owner)
    if not options:
        return None
    return kr_link_card(
        ctx.t,
        item_id=item.id,
        deliverable=item.deliverable,
        deadline=item.deadline,
        owner=owner.name,
        options=options,
        created=created,
    )


async def _allowed(ctx: Context, item: ActionItem, owner: Person) -> None:
    if ctx.person.id in (owner.id, item.created_by_id):
        return
    if await may_oversee(ctx.session, ctx.person, owner):
        return
    raise ctx.refuse("common.not_allowed_overseer", name=owner.name)


async def _link_form(ctx: Context, payload: ActionKeyResultLink) -> Form:
    item, owner = await load_item(ctx, payload.item_id)
    await _allowed(ctx, item, owner)
    options = await owner_key_results(ctx, owner)
    if not options:
        raise ctx.refuse("kr_link.no_key_results", name=owner.name)
    return kr_link_form(ctx.t, item_id=item.id, options=options)


@router.action(ActionKeyResultLink, form=_link_form)
async def link_key_result(ctx: Context, payload: ActionKeyResultLink) -> Reply:
    """Bind the item to the chosen key result of its owner (or to none)."""
    item, owner = await load_item(ctx, payload.item_id)
    await _allowed(ctx, item, owner)
    if item.status == ActionItemStatus.CLOSED:
        raise ctx.refuse("common.already_done")
    raw = text(form_of(ctx), "key_result")
    options = {str(o.key_result_id): o for o in await owner_key_results(ctx, owner)}
    if raw != NO_KEY_RESULT and raw not in options:
        raise ctx.refuse("kr_link.not_a_key_result", name=owner.name)
    chosen = options.get(raw)
    item.key_result_id = chosen.key_result_id if chosen else None
    await ctx.session.flush()
    ctx.audit("action_item.key_result", "action_item", item.id, key_result_id=item.key_result_id)
    card = kr_linked_card(
        ctx.t,
        item_id=item.id,
        deliverable=item.deliverable,
        deadline=item.deadline,
        owner=owner.name,
        key_result=chosen.title if chosen else None,
    )
    toast = ctx.t("kr_link.linked_toast") if chosen else ctx.t("kr_link.unlinked_toast")
    return Reply(toast=toast, card=card)
