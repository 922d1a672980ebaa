"""HR's promotion and high-potential flags: ``/flag @张三 晋升`` (chat) and ``perfloop results flag`` (CLI).

A flag belongs to one person in one cycle and goes out with the results export (``promotion`` /
``high_potential`` columns). Only HR admins set or take back a flag; the person is not told (the flag is an
input to HR's own decisions, not a result announced to them). A cycle that never started or was cancelled
takes no flags; an active, closing or closed one does, because flags are usually agreed in the calibration
meeting around the close. Setting twice or taking back what is not set changes nothing and says so.

Chat and CLI share everything but the HR check and the look-up of the person: ``FlagRefused`` carries a
catalogue key, so both say the same thing, in the reader's language. Every change is one ``audit_log``
row (``result.flag_set`` / ``result.flag_unset``: who, whom, which cycle, which flag, from where).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context, Refused, Reply
from bot.core.people import find_by_mention, is_hr_admin
from bot.core.router import Router
from bot.core.status import CycleStatus, GradeStatus
from cards.catalogue import Translator
from cards.model import Card
from cards.results import flags_card
from handlers.kickoff.api import canonical_code
from storage.models import AuditLog, Cycle, Person
from storage.queries import grades as gq
from storage.queries import results as rq

router = Router()

FLAGGABLE_CYCLE: tuple[CycleStatus, ...] = (CycleStatus.ACTIVE, CycleStatus.CLOSING, CycleStatus.CLOSED)
"""Cycles a flag may be put on (or taken back from)."""

KIND_WORDS: dict[str, str] = {
    "晋升": rq.PROMOTION,
    "promotion": rq.PROMOTION,
    "promote": rq.PROMOTION,
    "高潜": rq.HIGH_POTENTIAL,
    "高潜力": rq.HIGH_POTENTIAL,
    "high_potential": rq.HIGH_POTENTIAL,
    "high-potential": rq.HIGH_POTENTIAL,
    "hipo": rq.HIGH_POTENTIAL,
}
UNSET_WORDS = frozenset({"取消", "撤销", "off", "unset", "remove"})


class FlagRefused(Exception):
    """Why a flag cannot be set, as a catalogue key and its parameters (chat and CLI phrase it alike)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def message(self, t: Translator) -> str:
        params = dict(self.params)
        if isinstance(params.get("codes"), list):
            params["codes"] = t("results.list_sep").join(params["codes"])
        return t(self.key, **params)


@dataclass(frozen=True)
class FlagRequest:
    mention: str
    kind: str | None
    """None: only show the person's flags."""
    on: bool
    code: str | None


def kind_of(word: str) -> str | None:
    """``晋升`` / ``promotion`` → ``promotion``; ``高潜`` / ``high-potential`` → ``high_potential``."""
    return KIND_WORDS.get(word.strip().lower())


def parse_flag(args: str) -> FlagRequest:
    """``@name [kind] [取消] [cycle code]``, the words after the name in any order."""
    tokens = args.split()
    if not tokens:
        raise FlagRefused("results.usage")
    kind: str | None = None
    on = True
    code: str | None = None
    for word in tokens[1:]:
        if word.lower() in UNSET_WORDS:
            on = False
        elif (found := kind_of(word)) is not None:
            if kind is not None and kind != found:
                raise FlagRefused("results.one_kind")
            kind = found
        elif any(ch.isdigit() for ch in word):
            if code is not None:
                raise FlagRefused("results.one_cycle", first=code[:40], second=word[:40])
            code = word
        else:
            raise FlagRefused("results.unknown_word", word=word[:40])
    if kind is None and not on:
        raise FlagRefused("results.usage")
    return FlagRequest(mention=tokens[0], kind=kind, on=on, code=code)


async def pick_cycle(session: AsyncSession, workspace_id: int, person: Person, code: str | None) -> Cycle:
    """The named cycle, or the person's most recent active, closing or closed one."""
    if code is None:
        cycle = await rq.latest_cycle_of(session, person.id, FLAGGABLE_CYCLE)
        if cycle is None:
            raise FlagRefused("results.no_cycle", name=person.name)
        return cycle
    found = await rq.cycles_by_code(session, code, [workspace_id]) or await rq.cycles_by_code(
        session, canonical_code(code), [workspace_id]
    )
    if not found:
        known = await rq.recent_cycle_codes(session, [workspace_id], 10)
        if not known:
            raise FlagRefused("results.no_cycles_at_all")
        raise FlagRefused("results.no_such_cycle", code=code[:40], codes=known)
    cycle = found[0]
    if cycle.status == CycleStatus.CANCELLED:
        raise FlagRefused("results.cycle_cancelled", code=cycle.code)
    if cycle.status not in FLAGGABLE_CYCLE:
        raise FlagRefused("results.cycle_draft", code=cycle.code)
    if not await rq.in_cycle(session, cycle.id, person.id):
        raise FlagRefused("results.not_in_cycle", name=person.name, code=cycle.code)
    return cycle


async def apply_flag(
    session: AsyncSession,
    *,
    cycle: Cycle,
    person: Person,
    kind: str,
    on: bool,
    actor_id: int | None,
    at: datetime,
    via: str,
) -> bool:
    """Set or take back one flag; False when it already was that way (nothing written then)."""
    detail = {"cycle_id": cycle.id, "person_id": person.id, "kind": kind, "via": via}
    if on:
        row = await rq.add_flag(session, cycle.id, person.id, kind, by_id=actor_id, at=at)
        if row is None:
            return False
        entity_id, action = row.id, "result.flag_set"
    else:
        removed = await rq.remove_flag(session, cycle.id, person.id, kind)
        if removed is None:
            return False
        entity_id, action = removed, "result.flag_unset"
    session.add(
        AuditLog(
            at=at, actor_id=actor_id, action=action, entity="result_flag", entity_id=entity_id, detail=detail
        )
    )
    return True


def outcome_key(on: bool, changed: bool) -> str:
    if on:
        return "results.set" if changed else "results.already_set"
    return "results.unset" if changed else "results.not_set"


async def card_for(session: AsyncSession, t: Translator, cycle: Cycle, person: Person) -> Card:
    grade = await gq.grade_for(session, cycle.id, person.id)
    flagged = {f.kind for f in await rq.flags_of(session, cycle.id, person.id)}
    return flags_card(
        t,
        name=person.name,
        cycle_code=cycle.code,
        grade=grade.grade if grade else None,
        released=grade is not None and grade.status == GradeStatus.RELEASED,
        kinds=rq.FLAG_KINDS,
        flagged=flagged,
    )


@router.command("flag", "标记")
async def flag_command(ctx: Context, args: str) -> Reply:
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("results.only_hr")
    try:
        request = parse_flag(args)
        matches = await find_by_mention(ctx.session, ctx.workspace.id, request.mention)
        if not matches:
            raise FlagRefused("results.no_such_person", name=request.mention[:40])
        if len(matches) > 1:
            raise FlagRefused("results.ambiguous_person", name=request.mention[:40], count=len(matches))
        person = matches[0]
        cycle = await pick_cycle(ctx.session, ctx.workspace.id, person, request.code)
    except FlagRefused as refused:
        raise Refused(refused.message(ctx.t)) from None
    if request.kind is None:
        return Reply(card=await card_for(ctx.session, ctx.t, cycle, person))
    changed = await apply_flag(
        ctx.session,
        cycle=cycle,
        person=person,
        kind=request.kind,
        on=request.on,
        actor_id=ctx.person.id,
        at=ctx.now,
        via="chat",
    )
    await ctx.session.flush()
    toast = ctx.t(
        outcome_key(request.on, changed),
        name=person.name,
        kind=ctx.t(f"results.kind.{request.kind}"),
        cycle=cycle.code,
    )
    card = await card_for(ctx.session, ctx.t, cycle, person)
    return Reply(toast=toast, toast_kind="success" if changed else "info", card=card)
