"""One scheduled job done for many people in one transaction: what a ``BatchEntry`` writes through.

A wave (100,000 check-ins due at 16:00 in one zone) handed over one person per transaction costs about 15
round trips and a dozen ORM objects each: half an hour and a few hundred MB. A batch is a chunk of people,
already claimed in the scheduler's ledger inside this same transaction; the flow reads what it needs for
all of them in a few queries and writes through this object, which keeps plain rows and inserts them in
bulk at ``flush``. The rules a per-person ``Context`` applies hold here too:

- every card is one outbox row per person, written in the transaction, so it commits or vanishes with the
  records and the ledger keys (``bot.core.context.Outbox``);
- a scheduled prompt waits for the end of its recipient's quiet hours (``bot.core.notify``: the same
  ``quiet_end``, one query for the chunk);
- ``supersede`` puts an earlier card under the same key into its final state by the three cases of
  ``Outbox.supersede`` (still queued: rewritten; delivered: updated in place; being sent: rewritten and an
  update once it has settled);
- audit rows carry the person the job was for as the actor, as ``ctx.audit`` does in a scheduled job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.context import SUPERSEDE_SETTLE
from bot.core.localtime import person_zone
from bot.core.notify import quiet_end
from cards.catalogue import Translator
from cards.model import Card
from storage.models import AuditLog, CardMessage, OutboxMessage, QuietHours
from storage.queries.scheduled import IN_CHUNK, PersonRow

OUTBOX = cast(Table, OutboxMessage.__table__)
AUDIT = cast(Table, AuditLog.__table__)
"""The tables themselves: a batch's rows go in as plain rows, without the mapped classes' bookkeeping."""


@dataclass
class _Send:
    person: PersonRow
    row: dict[str, Any]
    hold: bool


@dataclass
class Batch:
    """The writer a ``BatchEntry`` gets: one transaction, many people (see the module docstring)."""

    session: AsyncSession
    settings: Settings
    now: datetime
    platforms: Mapping[int, str]
    """Each workspace's platform, by workspace id (outbox rows carry both)."""
    _sends: list[_Send] = field(default_factory=list)
    _audit: list[dict[str, Any]] = field(default_factory=list)
    _translators: dict[str, Translator] = field(default_factory=dict)

    # ------------------------------------------------------------------ reading a person
    def t(self, person: PersonRow) -> Translator:
        """The person's language (one translator per locale for the whole batch)."""
        t = self._translators.get(person.locale)
        if t is None:
            t = self._translators[person.locale] = Translator(person.locale)
        return t

    def zone(self, person: PersonRow) -> ZoneInfo:
        return person_zone(person, self.settings)

    def today(self, person: PersonRow) -> date:
        """The calendar day it is now where ``person`` lives (``ctx.today``)."""
        return self.now.astimezone(self.zone(person)).date()

    # ------------------------------------------------------------------ writing
    def send(self, person: PersonRow, card: Card, *, card_key: str | None, dedupe_key: str | None) -> None:
        """A prompt to one person, held for their quiet hours (``notify.hold_written``)."""
        self._add(person, _dump(card), op="send", card_key=card_key, dedupe_key=dedupe_key, hold=True)

    def audit(self, action: str, entity: str, entity_id: int | None, *, actor_id: int, **detail: Any) -> None:
        self._audit.append(
            {
                "at": self.now,
                "actor_id": actor_id,
                "action": action,
                "entity": entity,
                "entity_id": entity_id,
                "detail": detail,
            }
        )

    def _add(
        self,
        person: PersonRow,
        card: dict[str, Any],
        *,
        op: str,
        card_key: str | None,
        dedupe_key: str | None,
        hold: bool,
    ) -> dict[str, Any]:
        """One outbox row (``Outbox._add``), kept as a plain dict until ``flush``."""
        row: dict[str, Any] = {
            "workspace_id": person.workspace_id,
            "platform": self.platforms[person.workspace_id],
            "op": op,
            "recipients": [person.platform_user_id],
            "card": card,
            "card_key": card_key,
            "target_ref": None,
            "dedupe_key": dedupe_key,
            "next_attempt_at": self.now,
        }
        self._sends.append(_Send(person, row, hold))
        return row

    async def supersede(self, finals: Sequence[tuple[PersonRow, str, Card]]) -> set[tuple[int, str]]:
        """``Outbox.supersede`` for many (person, card key, final card) at once, by its three cases; returns
        the (person id, card key) pairs that had a card to supersede."""
        if not finals:
            return set()
        found: set[tuple[int, str]] = set()
        dumped = {(p.id, key): _dump(card) for p, key, card in finals}
        by_key: dict[tuple[int, str], list[tuple[PersonRow, str]]] = {}
        for person, key, _ in finals:
            by_key.setdefault((person.workspace_id, key), []).append((person, key))
        follow_at: dict[tuple[int, str], datetime] = {}
        keys = sorted({key for _, key, _ in finals})
        for start in range(0, len(keys), IN_CHUNK):
            # By key alone first (the card-key index, whatever the statistics say about pending rows: with
            # a wave's own cards queued, a plan starting from the status index read the whole queue per
            # chunk), then the queued ones among them, locked: a worker's claim skips locked rows, so none
            # can take the row between this read and the commit.
            candidates = await self.session.execute(
                select(OutboxMessage.id, OutboxMessage.op, OutboxMessage.status).where(
                    OutboxMessage.card_key.in_(keys[start : start + IN_CHUNK])
                )
            )
            ids = [
                i for i, op, status in candidates.all() if op == "send" and status in ("pending", "sending")
            ]
            if not ids:
                continue
            queued = await self.session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.workspace_id,
                    OutboxMessage.card_key,
                    OutboxMessage.recipients,
                    OutboxMessage.status,
                    OutboxMessage.next_attempt_at,
                )
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status.in_(("pending", "sending")))
                .order_by(OutboxMessage.id)
                .with_for_update()
            )
            for row_id, ws_id, key, recipients, status, next_at in queued.all():
                for person, _ in by_key.get((ws_id, key), []):
                    uid = person.platform_user_id
                    if uid not in recipients:
                        continue
                    found.add((person.id, key))
                    if list(recipients) == [uid]:
                        await self.session.execute(
                            update(OutboxMessage)
                            .where(OutboxMessage.id == row_id)
                            .values(card=dumped[(person.id, key)])
                            .execution_options(synchronize_session=False)
                        )
                    if status == "sending" or len(recipients) > 1:
                        after = max(next_at, self.now) + SUPERSEDE_SETTLE
                        earlier = follow_at.get((person.id, key))
                        follow_at[(person.id, key)] = after if earlier is None else max(earlier, after)
        people = {p.id: p for p, _, _ in finals}
        uids = sorted({p.platform_user_id for p, _, _ in finals})
        for start in range(0, len(keys), IN_CHUNK // 2):
            part = keys[start : start + IN_CHUNK // 2]
            refs = await self.session.execute(
                select(
                    CardMessage.card_key,
                    CardMessage.platform_user_id,
                    CardMessage.platform,
                    CardMessage.message_ref,
                )
                .where(CardMessage.card_key.in_(part), CardMessage.platform_user_id.in_(uids))
                .order_by(CardMessage.id)
            )
            wanted = {
                (key, p.platform_user_id, self.platforms[p.workspace_id]): p
                for p, key, _ in finals
                if key in part
            }
            for key, uid, platform, ref in refs.all():
                owner = wanted.get((key, uid, platform))
                if owner is None:
                    continue
                found.add((owner.id, key))
                row = self._add(
                    owner, dumped[(owner.id, key)], op="update", card_key=None, dedupe_key=None, hold=False
                )
                row["target_ref"] = ref
        for (pid, key), at in follow_at.items():
            row = self._add(
                people[pid], dumped[(pid, key)], op="update", card_key=key, dedupe_key=None, hold=False
            )
            row["next_attempt_at"] = at
        return found

    async def flush(self) -> int:
        """Hold the prompts for quiet hours and insert every row written; returns the outbox rows."""
        sends, self._sends = self._sends, []
        held = sorted({s.person.id for s in sends if s.hold})
        quiet: dict[int, QuietHours] = {}
        for start in range(0, len(held), IN_CHUNK):
            found = await self.session.scalars(
                select(QuietHours).where(QuietHours.person_id.in_(held[start : start + IN_CHUNK]))
            )
            quiet.update((q.person_id, q) for q in found)
        for s in sends:
            q = quiet.get(s.person.id) if s.hold else None
            if q is not None:
                until = quiet_end(q, self.zone(s.person), self.now)
                if until is not None and until > s.row["next_attempt_at"]:
                    s.row["next_attempt_at"] = until
        rows = [s.row for s in sends]
        # On the tables, not the mapped classes: one compiled statement, rows sent in multi-row batches.
        if rows:
            await self.session.execute(insert(OUTBOX), rows)
        audit, self._audit = self._audit, []
        if audit:
            await self.session.execute(insert(AUDIT), audit)
        return len(rows)


def _dump(card: Card) -> dict[str, Any]:
    return card.model_dump(mode="json", exclude_defaults=False)
