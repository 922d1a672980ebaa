"""What a handler gets: the sender, one DB session/transaction, the clock, and ways to say things.

Handlers record what must be sent as outbox rows through this object; they never call a platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.core.events import Event
from bot.core.localtime import person_date, person_text, person_zone
from bot.core.schedule_port import SchedulePort
from cards.catalogue import Translator
from cards.model import Card
from storage.models import AuditLog, Base, CardMessage, OutboxMessage, Person, Workspace
from storage.queries.status import transition

BULK_ROWS = 1000
SUPERSEDE_SETTLE = timedelta(seconds=15)
"""How long after a send in flight its superseding update waits, so the send's message id is recorded."""

M = TypeVar("M", bound=Base)


class Recipient(Protocol):
    """A person as a broadcast sees them (an ORM ``Person`` or a lightweight row)."""

    @property
    def platform_user_id(self) -> str: ...

    @property
    def locale(self) -> str: ...


MediaFetcher = Callable[[str], Awaitable[bytes]]


class Refused(Exception):
    """A handler refuses the request (not allowed, invalid input). The transaction is rolled back and the
    message is shown to the clicker as a toast/card; nothing changes."""

    def __init__(self, message: str, *, kind: str = "error", card: Card | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.card = card


@dataclass
class Reply:
    """The immediate answer to an event: a toast and/or the new version of the clicked card."""

    toast: str | None = None
    toast_kind: str = "success"
    card: Card | None = None
    private: bool = False
    """The card echoes an anonymous answer back to the one who gave it (issue 16 #3): the dispatcher shows it
    only in the immediate answer of platforms that take a card inline, never stores it (no stored answer, no
    outbox row under the rater). The toast of a private reply must carry no answer text: it may be stored."""


@dataclass
class Deferred:
    """Rows written for the record and not read back by the handler (audit rows, outbox rows without a dedupe
    key), held until the end of a group of clicks (``bot/app/dispatcher.py``) to be inserted with the
    group's others in one statement per table, instead of one flush each, in the same transaction.

    ``release`` puts them into the session, to be flushed there in the order they were written; the
    dispatcher calls it before any statement that reads the audit log or the outbox, and the outbox before
    it writes a row that cannot wait (one with a dedupe key, a broadcast), so ordering and reading your own
    writes are what they would be without deferral."""

    session: AsyncSession
    rows: list[Base] = field(default_factory=list)

    def add(self, row: Base) -> None:
        self.rows.append(row)

    def release(self) -> None:
        if self.rows:
            self.session.add_all(self.rows)
            self.rows.clear()


@dataclass
class Outbox:
    """Writes outbox rows into the handler's session, so they commit or vanish with the domain change."""

    session: AsyncSession
    workspace: Workspace
    now: datetime
    recipients_per_call: int = 1
    interactive_recipients_per_call: int | None = None
    """Recipients per row for a card with buttons, where the platform wants fewer (WeCom: one, so each
    person's card can be updated on its own); None: ``recipients_per_call``."""
    written: list[OutboxMessage] = field(default_factory=list)
    deferred: Deferred | None = None
    """Set by the dispatcher for a click in a group: rows without a dedupe key wait for the group's end."""

    def send(
        self,
        person: Person,
        card: Card,
        *,
        card_key: str | None = None,
        dedupe_key: str | None = None,
    ) -> OutboxMessage:
        return self._add([person.platform_user_id], card, card_key=card_key, dedupe_key=dedupe_key)

    def send_to_platform_id(
        self, platform_user_id: str, card: Card, *, dedupe_key: str | None = None
    ) -> None:
        self._add([platform_user_id], card, card_key=None, dedupe_key=dedupe_key)

    async def broadcast(
        self,
        people: Sequence[Recipient],
        build: Callable[[Translator], Card],
        *,
        card_key: str | None = None,
        dedupe_prefix: str | None = None,
    ) -> int:
        """One card per locale, batched into the platform's multi-recipient calls; returns rows written.

        Rows go in with bulk INSERTs, not as ORM objects: a kickoff to 100,000 people on a per-person
        platform is 100,000 rows, and tracking each as an object would cost hundreds of MB. They are in the
        same transaction as everything else the handler does, so they commit or vanish with it."""
        by_locale: dict[str, list[str]] = {}
        for p in people:
            by_locale.setdefault(Translator(p.locale).locale, []).append(p.platform_user_id)
        rows: list[dict[str, Any]] = []
        written = 0
        if self.deferred is not None:
            self.deferred.release()
            await self.session.flush()  # rows written before the broadcast stay before it
        for locale, ids in sorted(by_locale.items()):
            # One dump shared by every row of this locale.
            card = build(Translator(locale))
            dumped = card.model_dump(mode="json", exclude_defaults=False)
            size = max(1, self._per_call(card))
            for start in range(0, len(ids), size):
                rows.append(
                    {
                        "workspace_id": self.workspace.id,
                        "platform": self.workspace.platform,
                        "op": "send",
                        "recipients": ids[start : start + size],
                        "card": dumped,
                        "card_key": card_key,
                        "dedupe_key": f"{dedupe_prefix}:{locale}:{start}" if dedupe_prefix else None,
                        "next_attempt_at": self.now,
                    }
                )
                if len(rows) >= BULK_ROWS:
                    written += await self._insert(rows)
                    rows = []
        return written + await self._insert(rows)

    def _per_call(self, card: Card) -> int:
        if self.interactive_recipients_per_call is not None and card.buttons():
            return self.interactive_recipients_per_call
        return self.recipients_per_call

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        if rows:
            await self.session.execute(insert(OutboxMessage), rows)
        return len(rows)

    def update(self, person: Person, card: Card, *, card_key: str) -> None:
        """Replace a card previously sent to ``person`` under ``card_key`` (found via card_messages)."""
        self._add([person.platform_user_id], card, card_key=card_key, dedupe_key=None, op="update")

    def update_ref(self, platform_user_id: str, message_ref: str, card: Card) -> None:
        row = self._add([platform_user_id], card, card_key=None, dedupe_key=None, op="update")
        row.target_ref = message_ref

    async def supersede(self, person: Person, card_key: str, final: Card) -> bool:
        """Put every copy of the card sent to ``person`` under ``card_key`` into its ``final`` state, because
        a newer card (or a decision made elsewhere) replaced it: a card left with live buttons invites a
        click that can only be refused. Returns False when no such card exists.

        Where that card stands decides how: not yet delivered (still queued, perhaps held for quiet
        hours), its queued row is rewritten, so the person never sees the live version; delivered, the
        message is updated in place; being delivered right now, the row is rewritten for a retry and an
        update by ``card_key`` follows once the send has settled (its message id is recorded after it)."""
        uid = person.platform_user_id
        found = False
        dumped = final.model_dump(mode="json", exclude_defaults=False)
        if self.deferred is not None:
            self.deferred.release()  # a card sent earlier in this transaction is found below
        queued = await self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.workspace_id == self.workspace.id,
                OutboxMessage.card_key == card_key,
                OutboxMessage.op == "send",
                OutboxMessage.status.in_(("pending", "sending")),
            )
            # A worker's claim skips locked rows: none can take the row between this read and the commit.
            .with_for_update()
        )
        follow_at: datetime | None = None
        for row in queued:
            if uid not in row.recipients:
                continue
            found = True
            if list(row.recipients) == [uid]:
                row.card = dumped
            if row.status == "sending" or len(row.recipients) > 1:
                after = max(row.next_attempt_at, self.now) + SUPERSEDE_SETTLE
                follow_at = after if follow_at is None else max(follow_at, after)
        ref = await self.session.scalar(
            select(CardMessage.message_ref).where(
                CardMessage.card_key == card_key,
                CardMessage.platform_user_id == uid,
                CardMessage.platform == self.workspace.platform,
            )
        )
        if ref is not None:
            found = True
            self.update_ref(uid, ref, final)
        if follow_at is not None:
            later = self._add([uid], final, card_key=card_key, dedupe_key=None, op="update")
            later.next_attempt_at = follow_at
        return found

    def _add(
        self,
        recipients: list[str],
        card: Card,
        *,
        card_key: str | None,
        dedupe_key: str | None,
        op: str = "send",
    ) -> OutboxMessage:
        row = OutboxMessage(
            workspace_id=self.workspace.id,
            platform=self.workspace.platform,
            op=op,
            recipients=recipients,
            card=card.model_dump(mode="json", exclude_defaults=False),
            card_key=card_key,
            dedupe_key=dedupe_key,
        )
        row.next_attempt_at = self.now
        if self.deferred is not None and dedupe_key is None:
            self.deferred.add(row)
        else:
            if self.deferred is not None:
                self.deferred.release()  # a row that cannot wait: those written before it go first
            self.session.add(row)
        self.written.append(row)
        return row


@dataclass
class Context:
    session: AsyncSession
    person: Person
    workspace: Workspace
    settings: Settings
    now: datetime
    outbox: Outbox
    event: Event | None = None
    fetch_media: MediaFetcher | None = None
    schedule: SchedulePort | None = None
    """The scheduler's answers a flow may ask for (next occurrence, skip, snooze); put here by the app."""
    extra: dict[str, Any] = field(default_factory=dict)
    deferred: Deferred | None = None
    """Set by the dispatcher for a click in a group: audit rows wait for the group's end (``Deferred``)."""

    def scheduler(self) -> SchedulePort:
        """``ctx.schedule``, which the app puts on every context; its absence is a wiring error, not input."""
        if self.schedule is None:
            raise RuntimeError("no scheduler port on this context")
        return self.schedule

    @property
    def t(self) -> Translator:
        return Translator(self.person.locale)

    def translator(self, person: Person) -> Translator:
        return Translator(person.locale)

    def audit(self, action: str, entity: str, entity_id: int | None, **detail: Any) -> None:
        row = AuditLog(
            at=self.now,
            actor_id=self.person.id,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
        )
        if self.deferred is not None:
            self.deferred.add(row)
        else:
            self.session.add(row)

    def refuse(self, key: str, **params: Any) -> Refused:
        """``raise ctx.refuse("common.not_allowed")`` — the message comes from the catalogue."""
        return Refused(self.t(key, **params))

    async def transition_or_refuse(
        self,
        model: type[M],
        row_id: int,
        *,
        column: str = "status",
        allowed: Iterable[str | None],
        values: dict[str, Any],
        extra: Iterable[Any] = (),
    ) -> M:
        """Compare-and-set (``storage.queries.status.transition``) for a click: when the row is no longer in
        an ``allowed`` state, someone got there first (a second manager, a platform retry), so the click is
        refused with "already done" and nothing changes."""
        updated = await transition(
            self.session, model, row_id, column=column, allowed=allowed, values=values, extra=extra
        )
        if updated is None:
            raise self.refuse("common.already_done")
        return updated

    # Local time, always through ``bot.core.localtime`` (one fallback rule for an unknown zone name).
    def zone(self, person: Person | None = None) -> ZoneInfo:
        """The time zone of ``person`` (default: the sender)."""
        return person_zone(self.person if person is None else person, self.settings)

    def today(self, person: Person | None = None) -> date:
        """The calendar day it is now where ``person`` (default: the sender) lives."""
        return self.day_of(self.now, person)

    def day_of(self, at: datetime, person: Person | None = None) -> date:
        """The calendar day ``at`` falls on where ``person`` (default: the sender) lives."""
        return person_date(self.person if person is None else person, at, self.settings)

    def local_text(self, at: datetime, person: Person | None = None) -> str:
        """``at`` as ``2026-11-24 10:00`` where ``person`` (default: the sender) lives."""
        return person_text(self.person if person is None else person, at, self.settings)

    async def download(self, media_ref: str) -> bytes:
        if self.fetch_media is None:
            raise RuntimeError("no media fetcher in this context")
        return await self.fetch_media(media_ref)


def ids(people: Iterable[Person]) -> list[int]:
    return [p.id for p in people]
