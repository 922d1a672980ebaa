"""The reminder wave: every action-item reminder due at one moment (``[schedule] reminder_time``, 09:30, in
one zone: 100,000 items due the same Friday), sent a chunk at a time — the scheduler's batch entry for
``Job.REMIND_ACTION_ITEM``.

Per item the outcome is exactly ``action_items.remind_action_item``'s (a test compares the two): nothing
for an item no longer open, an inactive owner, a day past the deadline or a reminder already sent for this
owner and deadline; otherwise the owner's earlier card retired (``supersede``), the reminder card queued
(held for quiet hours) and the ``action_item.reminded`` audit row written. The items, their owners and
acceptors and the reminders already sent are read for the whole chunk in a few queries.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.batch import Batch
from bot.core.schedule import BatchEntry, Job, Owed, ReminderArgs, ScheduleEntry
from bot.core.status import OPEN_ACTION_ITEM
from cards.action_items import owner_card, superseded_card
from cards.model import Card
from handlers.action_items.action_items import REMINDER_KINDS
from handlers.action_items.item import owner_card_key
from storage.models import ActionItem, AuditLog, Person
from storage.queries.scheduled import IN_CHUNK, PersonRow, people_by_id

REMINDED = "action_item.reminded"


async def remind_action_items(
    batch: Batch, owed: Sequence[Owed[ReminderArgs]]
) -> Collection[Owed[ReminderArgs]]:
    """Send a chunk's reminders; returns the items that had nothing to send."""
    for o in owed:
        if o.args.kind not in REMINDER_KINDS:
            raise ValueError(f"unknown reminder kind {o.args.kind!r}")
    session = batch.session
    items = await _open_items(session, [o.args.item_id for o in owed])
    named = {i["owner_id"] for i in items.values()} | {
        i["acceptor_id"] for i in items.values() if i["acceptor_id"]
    }
    people = await people_by_id(session, named)
    active = await _active(session, named)
    done = await _reminded(session, list(items))
    nothing: list[Owed[ReminderArgs]] = []
    finals: list[tuple[PersonRow, str, Card]] = []
    cards: list[tuple[Owed[ReminderArgs], PersonRow, dict[str, Any], Card, str]] = []
    for o in owed:
        item = items.get(o.args.item_id)
        owner = people.get(item["owner_id"]) if item is not None else None
        if item is None or owner is None or owner.id not in active:
            nothing.append(o)
            continue
        today = batch.today(owner)
        deadline = item["deadline"]
        key = f"remind:{o.args.kind}:{deadline.isoformat()}:{owner.id}"
        if today > deadline or key in done.get(item["id"], ()):
            nothing.append(o)
            continue
        t = batch.t(owner)
        acceptor = people.get(item["acceptor_id"]) if item["acceptor_id"] else None
        described = {
            "item_id": item["id"],
            "deliverable": item["deliverable"],
            "deadline": deadline,
            "owner": owner.name,
            "acceptor": acceptor.name if acceptor else None,
            "status": item["status"],
        }
        kind = o.args.kind
        days = (deadline - today).days
        intro = (
            t("action_items.reminder_due") if kind == "due" else t("action_items.reminder_before", days=days)
        )
        card = owner_card(
            t,
            **described,
            evidence_required=item["evidence_required"],
            title_key=f"action_items.reminder_title_{kind}",
            intro=intro,
            colour="orange" if kind == "due" else "blue",
        )
        finals.append((owner, owner_card_key(item["id"]), superseded_card(t, **described)))
        cards.append((o, owner, item, card, key))
    await batch.supersede(finals)  # the card before it goes to its final state first (send_owner_card)
    for o, owner, item, card, key in cards:
        deadline = item["deadline"].isoformat()
        batch.send(
            owner,
            card,
            card_key=owner_card_key(item["id"]),
            dedupe_key=f"action-remind:{item['id']}:{o.args.kind}:{deadline}:{owner.id}",
        )
        batch.audit(REMINDED, "action_item", item["id"], actor_id=o.person.id, key=key, kind=o.args.kind)
    return nothing


async def _open_items(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_CHUNK):
        rows = await session.execute(
            select(
                ActionItem.id,
                ActionItem.owner_id,
                ActionItem.acceptor_id,
                ActionItem.deliverable,
                ActionItem.deadline,
                ActionItem.status,
                ActionItem.evidence_required,
            ).where(
                ActionItem.id.in_(ordered[start : start + IN_CHUNK]), ActionItem.status.in_(OPEN_ACTION_ITEM)
            )
        )
        out.update((r.id, dict(r._mapping)) for r in rows.all())
    return out


async def _active(session: AsyncSession, ids: Collection[int]) -> set[int]:
    out: set[int] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), IN_CHUNK):
        out.update(
            await session.scalars(
                select(Person.id).where(
                    Person.id.in_(ordered[start : start + IN_CHUNK]), Person.active.is_(True)
                )
            )
        )
    return out


async def _reminded(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, set[str]]:
    """The once-keys already recorded per item (``storage.queries.once.done_before`` for many).

    Asked by item alone (the audit log's entity index, a few rows per item) and the action checked here:
    with the action in the statement, a plan from the action index read every reminder of the wave so far
    for each chunk, once the wave had added more than the statistics knew of."""
    out: dict[int, set[str]] = {}
    ordered = sorted(item_ids)
    for start in range(0, len(ordered), IN_CHUNK):
        rows = await session.execute(
            select(AuditLog.entity_id, AuditLog.action, AuditLog.detail).where(
                AuditLog.entity == "action_item", AuditLog.entity_id.in_(ordered[start : start + IN_CHUNK])
            )
        )
        for entity_id, action, detail in rows.all():
            if action == REMINDED and isinstance(detail, dict) and detail.get("key"):
                out.setdefault(int(entity_id), set()).add(str(detail["key"]))
    return out


SCHEDULE: tuple[ScheduleEntry, ...] = (BatchEntry(Job.REMIND_ACTION_ITEM, ReminderArgs, remind_action_items),)
