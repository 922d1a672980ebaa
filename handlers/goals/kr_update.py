"""Recording a key result's value outside a check-in (issue 17 item 5): the owner, or their manager, taps
"update" on a key result (the ``/okr`` cards carry ``KeyResultUpdate``) and fills in a small form: the value
and an optional note. The owner's value is recorded as ``owner``, the manager's (or their delegate's) as
``manager``, and the owner is told when it was the manager; anyone else is refused with what they can do
instead. On WeCom and DingTalk the two questions are asked in chat, one at a time.

Tapping "update" sends the form as a new card, so the card it was tapped on (the goals overview) stays; the
form's own submit (``KeyResultValueSubmit``) turns the form into what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.numbers import parse_number
from bot.core.people import is_manager_of
from bot.core.router import Router
from bot.core.status import KrValueSource
from cards import kr_values as kc
from cards.flow_common import done_by
from cards.goal_actions import KeyResultUpdate, KeyResultValueSubmit
from cards.model import Card, Form
from handlers.goals.values import FINAL_CYCLE, ValueRefused, facts_of, reading_of, record_value
from storage.models import Cycle, Goal, KeyResult, Person

router = Router()


@dataclass(frozen=True)
class Target:
    """The key result being updated, its objective and owner, and the source the clicker records as."""

    kr: KeyResult
    goal: Goal
    owner: Person
    source: KrValueSource


async def source_of(session: AsyncSession, actor: Person, owner: Person) -> KrValueSource | None:
    """As what ``actor`` records the values of ``owner``'s key results: the owner as ``owner``, their manager
    (or the manager's delegate) as ``manager``; anyone else not at all (None). Cards offer "update" by it."""
    if actor.id == owner.id:
        return KrValueSource.OWNER
    if await is_manager_of(session, actor, owner):
        return KrValueSource.MANAGER
    return None


async def _target(ctx: Context, key_result_id: int) -> Target:
    kr = await ctx.session.get(KeyResult, key_result_id)
    goal = await ctx.session.get(Goal, kr.goal_id) if kr is not None else None
    owner = await ctx.session.get(Person, goal.person_id) if goal is not None else None
    if kr is None or goal is None or owner is None:
        raise ctx.refuse("kr_values.refused_unknown")
    if owner.workspace_id != ctx.person.workspace_id:
        raise ctx.refuse("common.invalid_action")
    source = await source_of(ctx.session, ctx.person, owner)
    if source is None:
        raise ctx.refuse("kr_values.only_owner_or_manager", owner=owner.name)
    cycle = await ctx.session.get(Cycle, goal.cycle_id)
    if cycle is None or cycle.status in FINAL_CYCLE:
        raise ctx.refuse("kr_values.refused_cycle_closed")
    return Target(kr, goal, owner, source)


def _form_card(ctx: Context, target: Target, **bounced: str | None) -> Card:
    return kc.update_card(
        ctx.t, facts_of(target.kr), goal_title=target.goal.objective, current=reading_of(target.kr), **bounced
    )


async def build_update_form(ctx: Context, payload: KeyResultUpdate | KeyResultValueSubmit) -> Form:
    """The form rebuilt server-side, for platforms that ask it question by question in chat."""
    return _form_card(ctx, await _target(ctx, payload.key_result_id)).forms()[0]


async def _record(ctx: Context, target: Target) -> tuple[Reply, Card | None]:
    """Record what the form holds. Returns the reply, and the card of what was recorded (None when the form
    is sent back: not a number, no choice)."""
    form = form_of(ctx)
    raw = text(form, kc.VALUE, 40)
    note = text(form, kc.NOTE, 500) or None
    facts = facts_of(target.kr)
    value: float | None = None
    done: bool | None = None
    reached: int | None = None
    error: str | None = None
    if facts.kind == kc.NUMBER:
        value = parse_number(raw, facts.unit)
        if value is None:
            example = kc.number_text(target.kr.current_value or target.kr.target_value or 38)
            error = ctx.t("kr_values.err_number", kr=facts.title[:40], typed=raw[:20] or "—", example=example)
    else:
        state = kc.parse_state(facts, raw)
        if state is None:
            error = ctx.t("kr_values.err_state", kr=facts.title[:40])
        else:
            done, reached = state
    if error is not None:
        card = _form_card(ctx, target, typed=raw, note=note, error=error)
        return Reply(toast=error, toast_kind="error", card=card), None
    try:
        change = await record_value(
            ctx.session,
            target.kr.id,
            value=value,
            done=done,
            milestones_done=reached,
            source=target.source,
            source_id=None,
            by_person_id=ctx.person.id,
            at=ctx.now,
            note=note,
        )
    except ValueRefused as refused:
        raise ctx.refuse(f"kr_values.refused_{refused.reason}") from None
    ctx.audit(
        "kr.value_recorded",
        "key_result",
        target.kr.id,
        source=str(target.source),
        value=change.after.value,
        done=change.after.done,
        progress=round(change.after.progress, 4),
    )

    def card_for(person: Person) -> Card:
        t = ctx.translator(person)
        by = done_by(t, name=ctx.person.name, what=t("kr_values.did_record"), at=ctx.now, tz=ctx.zone(person))
        return kc.recorded_card(
            t,
            facts,
            goal_title=target.goal.objective,
            before=change.before,
            after=change.after,
            goal_progress=change.goal_after,
            by=by,
            note=note,
        )

    if target.source == KrValueSource.MANAGER:
        ctx.outbox.send(target.owner, card_for(target.owner))
    toast = ctx.t(
        "kr_values.recorded_toast", change=kc.change_text(ctx.t, facts, change.before, change.after)
    )
    return Reply(toast=toast), card_for(ctx.person)


@router.action(KeyResultUpdate, form=build_update_form)
async def open_update(ctx: Context, payload: KeyResultUpdate) -> Reply:
    """From a goals card: send the form as a new card. Where the form was asked in chat (WeCom, DingTalk) the
    answers arrive with this click already: record them and send what was recorded."""
    target = await _target(ctx, payload.key_result_id)
    if not text(form_of(ctx), kc.VALUE):
        ctx.outbox.send(ctx.person, _form_card(ctx, target))
        return Reply(toast=ctx.t("kr_values.form_sent"), toast_kind="info")
    reply, recorded = await _record(ctx, target)
    if recorded is None:
        return reply
    ctx.outbox.send(ctx.person, recorded)
    return reply


@router.action(KeyResultValueSubmit, form=build_update_form)
async def submit_value(ctx: Context, payload: KeyResultValueSubmit) -> Reply:
    reply, recorded = await _record(ctx, await _target(ctx, payload.key_result_id))
    if recorded is None:
        return reply
    return Reply(toast=reply.toast, card=recorded)
