"""Goals for a cycle: each participant enters up to ``cycles.max_goals`` goals (objective, key result,
weight) or copies last cycle's in one click; weights must add up to 100; the manager confirms them or
returns them with a comment (which passes the vague-word guard).

A goal is a promise to be made concrete, so the goals themselves pass the same guard: a goal whose
objective and key result together name no measure, date, person or work product ("提升团队协作能力" with no
key result, or a key result "客户满意度明显提升") is sent back once, on the same form with every value the
person typed, naming the goals to sharpen. An objective may be a direction ("提升客户满意度") when its key
result measures it ("NPS 从 32 提高到 40"): OKRs are written that way.

Status lives on the participant row (none → submitted → confirmed, or → returned → submitted …); the
employee may resubmit until the manager confirms, and the manager's card is updated in place when they do.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.context import Context, Reply
from bot.core.forms import FormData, form_of
from bot.core.forms import text as _text
from bot.core.people import approver_to_notify, require_approver
from bot.core.router import Router
from bot.core.status import CycleStatus, GoalsStatus
from bot.core.vague import must_bounce, must_bounce_any
from cards.flow_actions import GoalsConfirm, GoalsCopy, GoalsEdit, GoalsReturn, GoalsReview, GoalsSubmit
from cards.flow_common import clip, done_by, with_outcome
from cards.goals import (
    MAX_GOALS_ON_CARD,
    GoalRow,
    goals_form_card,
    goals_review_card,
    goals_submitted_card,
)
from cards.model import Card, Form
from cards.notice import notice_card
from storage.models import Cycle, CycleParticipant, Goal, Person
from storage.queries import cycles as cq
from storage.queries.status import transition

router = Router()

EDITABLE = (GoalsStatus.NONE, GoalsStatus.RETURNED, GoalsStatus.SUBMITTED)


class GoalsInvalid(ValueError):
    """A goals form that cannot be saved (missing objective, bad weight, weights not totalling 100)."""


def slots(ctx: Context) -> int:
    return min(ctx.settings.cycles.max_goals, MAX_GOALS_ON_CARD)


def rows_of(goals: Sequence[Goal]) -> list[GoalRow]:
    return [GoalRow(g.objective, g.key_result, str(g.weight)) for g in goals]


def parse_goals(ctx: Context, form: FormData) -> tuple[list[GoalRow], list[tuple[str, str, int]]]:
    """The rows as typed (for re-showing) and the validated (objective, key result, weight) tuples.

    Raises GoalsInvalid with a translated message: a goal without an objective, a weight that is not a
    whole number from 1 to 100, no goal at all, or weights not adding up to exactly 100.
    """
    t = ctx.t
    typed: list[GoalRow] = []
    valid: list[tuple[str, str, int]] = []
    errors: list[str] = []
    for i in range(1, slots(ctx) + 1):
        objective = _text(form, f"objective_{i}")
        key_result = _text(form, f"key_result_{i}")
        weight_text = _text(form, f"weight_{i}").rstrip("%％").strip()
        if not (objective or key_result or weight_text):
            continue
        typed.append(GoalRow(objective, key_result, weight_text))
        if not objective:
            errors.append(t("goals.err_objective", n=i))
            continue
        if not weight_text.isdigit() or not 1 <= int(weight_text) <= 100:
            errors.append(t("goals.err_weight", n=i))
            continue
        valid.append((objective[:300], key_result[:300], int(weight_text)))
    if not errors and not valid:
        errors.append(t("goals.err_empty"))
    if not errors and sum(w for _, _, w in valid) != 100:
        errors.append(t("goals.err_sum", total=sum(w for _, _, w in valid)))
    if errors:
        raise GoalsInvalid("\n".join(errors))
    return typed, valid


async def _my_participation(ctx: Context, cycle_id: int) -> tuple[Cycle, CycleParticipant]:
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    mine = await cq.participant(ctx.session, cycle.id, ctx.person.id)
    if mine is None:
        raise ctx.refuse("kickoff.not_participant")
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse("kickoff.not_active", code=cycle.code)
    return cycle, mine


async def _form_card(
    ctx: Context,
    cycle: Cycle,
    mine: CycleParticipant,
    error: str | None = None,
    defaults: Sequence[GoalRow] | None = None,
    warning: str | None = None,
) -> Card:
    if defaults is None:
        defaults = rows_of(await cq.goals_of(ctx.session, cycle.id, ctx.person.id))
    return goals_form_card(
        ctx.t,
        cycle_id=cycle.id,
        code=cycle.code,
        slots=slots(ctx),
        defaults=defaults,
        error=error,
        warning=warning,
        returned_comment=mine.goals_comment if mine.goals_status == GoalsStatus.RETURNED else None,
    )


def typed_rows(ctx: Context, form: FormData) -> list[GoalRow]:
    """Every slot exactly as typed (empty ones too, so a goal keeps its number when the form comes back)."""
    return [
        GoalRow(_text(form, f"objective_{i}"), _text(form, f"key_result_{i}"), _text(form, f"weight_{i}"))
        for i in range(1, slots(ctx) + 1)
    ]


def goal_text(row: GoalRow) -> str:
    """What the vague guard reads for one goal: the objective and its key result together."""
    return f"{row.objective}；{row.key_result}" if row.key_result else row.objective


async def _bounce_vague(
    ctx: Context, cycle: Cycle, mine: CycleParticipant, rows: Sequence[GoalRow]
) -> Reply | None:
    """The form again, asking once to sharpen the vague goals, or None when there is nothing to ask."""
    vague = await must_bounce_any(
        ctx, [goal_text(r) for r in rows], entity="cycle_participant_goals", entity_id=mine.id
    )
    if not vague:
        return None
    lines = [ctx.t("goals.vague_goal", n=i + 1, text=clip(rows[i].objective, 80)) for i in vague]
    warning = "\n".join([*lines, ctx.t("goals.vague_footer")])
    return Reply(
        toast=lines[0][:200],
        toast_kind="warning",
        card=await _form_card(ctx, cycle, mine, defaults=rows, warning=warning),
    )


async def build_goals_form(ctx: Context, payload: GoalsSubmit) -> Form:
    cycle, mine = await _my_participation(ctx, payload.cycle_id)
    return (await _form_card(ctx, cycle, mine)).forms()[0]


async def _save(
    ctx: Context, cycle: Cycle, mine: CycleParticipant, valid: list[tuple[str, str, int]]
) -> Reply:
    """Store the goals, (re)send the manager's review card, and answer with the employee's summary."""
    was = mine.goals_status
    if was == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    updated = await transition(
        ctx.session,
        CycleParticipant,
        mine.id,
        column="goals_status",
        allowed=EDITABLE,
        values={"goals_status": GoalsStatus.SUBMITTED, "goals_comment": None},
    )
    if updated is None:
        raise ctx.refuse("goals.already_confirmed")
    goals = await cq.replace_goals(ctx.session, cycle.id, ctx.person.id, valid)
    ctx.audit("goals.submitted", "cycle_participant", mine.id, weights=[w for _, _, w in valid])
    rows = rows_of(goals)
    approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
    if approver is not None:
        t = ctx.translator(approver)
        card = goals_review_card(
            t, participant_id=mine.id, employee_name=ctx.person.name, code=cycle.code, rows=rows
        )
        key = f"goals:{mine.id}"
        if was == GoalsStatus.SUBMITTED:
            ctx.outbox.update(approver, card, card_key=key)
        else:
            ctx.outbox.send(approver, card, card_key=key)
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("goals.did_submit"), at=ctx.now, tz=ctx.zone())
    return Reply(
        toast=ctx.t("goals.submitted"),
        card=goals_submitted_card(ctx.t, cycle_id=cycle.id, code=cycle.code, rows=rows, note=note),
    )


@router.command("goals", "目标")
async def goals_command(ctx: Context, args: str) -> Reply:
    """``/goals``: the goal form of the person's current cycle."""
    del args
    found = await cq.current_participation(ctx.session, ctx.person.id)
    if found is None:
        raise ctx.refuse("goals.no_cycle")
    cycle, mine = found
    return Reply(card=await _form_card(ctx, cycle, mine))


@router.action(GoalsEdit)
async def edit_goals(ctx: Context, payload: GoalsEdit) -> Reply:
    cycle, mine = await _my_participation(ctx, payload.cycle_id)
    if mine.goals_status == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    ctx.outbox.send(ctx.person, await _form_card(ctx, cycle, mine))
    return Reply(toast=ctx.t("goals.form_sent"), toast_kind="info")


@router.action(GoalsSubmit, form=build_goals_form)
async def submit_goals(ctx: Context, payload: GoalsSubmit) -> Reply:
    cycle, mine = await _my_participation(ctx, payload.cycle_id)
    if mine.goals_status == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    form = form_of(ctx)
    typed = typed_rows(ctx, form)
    try:
        _, valid = parse_goals(ctx, form)
    except GoalsInvalid as exc:
        return Reply(
            toast=str(exc).splitlines()[0],
            toast_kind="error",
            card=await _form_card(ctx, cycle, mine, error=str(exc), defaults=typed),
        )
    bounced = await _bounce_vague(ctx, cycle, mine, typed)
    if bounced is not None:
        return bounced
    return await _save(ctx, cycle, mine, valid)


@router.action(GoalsCopy)
async def copy_last_cycle(ctx: Context, payload: GoalsCopy) -> Reply:
    """One click: last cycle's goals become this cycle's submission (still editable until confirmed)."""
    cycle, mine = await _my_participation(ctx, payload.cycle_id)
    previous = await cq.previous_goals(ctx.session, ctx.person.id, cycle)
    if not previous:
        raise ctx.refuse("goals.nothing_to_copy")
    rows = rows_of(previous)[: slots(ctx)]
    valid = [(r.objective, r.key_result, int(r.weight)) for r in rows]
    if sum(w for _, _, w in valid) != 100:  # fewer slots than last cycle had goals: let the person rebalance
        error = ctx.t("goals.err_sum", total=sum(w for _, _, w in valid))
        return Reply(toast=error, toast_kind="error", card=await _form_card(ctx, cycle, mine, error, rows))
    bounced = await _bounce_vague(ctx, cycle, mine, rows)
    if bounced is not None:
        return bounced
    return await _save(ctx, cycle, mine, valid)


async def _participant_for_approver(
    ctx: Context, participant_id: int
) -> tuple[Cycle, CycleParticipant, Person]:
    mine = await ctx.session.get(CycleParticipant, participant_id)
    cycle = await ctx.session.get(Cycle, mine.cycle_id) if mine is not None else None
    if mine is None or cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    employee = await ctx.session.get(Person, mine.person_id)
    assert employee is not None
    await require_approver(ctx, employee)
    return cycle, mine, employee


async def _review_card(
    ctx: Context,
    cycle: Cycle,
    mine: CycleParticipant,
    employee: Person,
    comment: str | None = None,
    warning: str | None = None,
) -> Card:
    rows = rows_of(await cq.goals_of(ctx.session, cycle.id, employee.id))
    return goals_review_card(
        ctx.t,
        participant_id=mine.id,
        employee_name=employee.name,
        code=cycle.code,
        rows=rows,
        comment_default=comment,
        warning=warning,
    )


async def build_return_form(ctx: Context, payload: GoalsReturn) -> Form:
    cycle, mine, employee = await _participant_for_approver(ctx, payload.participant_id)
    return (await _review_card(ctx, cycle, mine, employee)).forms()[0]


@router.action(GoalsReview)
async def review_goals(ctx: Context, payload: GoalsReview) -> Reply:
    cycle, mine, employee = await _participant_for_approver(ctx, payload.participant_id)
    if mine.goals_status != GoalsStatus.SUBMITTED:
        raise ctx.refuse("goals.not_waiting", name=employee.name)
    ctx.outbox.send(ctx.person, await _review_card(ctx, cycle, mine, employee), card_key=f"goals:{mine.id}")
    return Reply(toast=ctx.t("goals.review_sent"), toast_kind="info")


@router.action(GoalsConfirm)
async def confirm_goals(ctx: Context, payload: GoalsConfirm) -> Reply:
    cycle, mine, employee = await _participant_for_approver(ctx, payload.participant_id)
    card = await _review_card(ctx, cycle, mine, employee)
    await ctx.transition_or_refuse(
        CycleParticipant,
        mine.id,
        column="goals_status",
        allowed=[GoalsStatus.SUBMITTED],
        values={"goals_status": GoalsStatus.CONFIRMED},
    )
    ctx.audit("goals.confirmed", "cycle_participant", mine.id)
    et = ctx.translator(employee)
    ctx.outbox.send(
        employee,
        notice_card(
            et,
            et("goals.confirmed_title", code=cycle.code),
            et("goals.confirmed_body", name=ctx.person.name),
            colour="green",
        ),
    )
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("goals.did_confirm"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("goals.confirmed"), card=with_outcome(card, note))


@router.action(GoalsReturn, form=build_return_form)
async def return_goals(ctx: Context, payload: GoalsReturn) -> Reply:
    cycle, mine, employee = await _participant_for_approver(ctx, payload.participant_id)
    form = form_of(ctx)
    comment = _text(form, "comment")[:1000]
    if not comment:
        raise ctx.refuse("goals.comment_required")
    if mine.goals_status != GoalsStatus.SUBMITTED:
        raise ctx.refuse("common.already_done")
    if await must_bounce(ctx, comment, entity="goals_comment", entity_id=mine.id):
        warning = ctx.t("vague.bounce", text=comment[:200])
        return Reply(
            toast=warning[:200],
            toast_kind="warning",
            card=await _review_card(ctx, cycle, mine, employee, comment=comment, warning=warning),
        )
    card = await _review_card(ctx, cycle, mine, employee)
    await ctx.transition_or_refuse(
        CycleParticipant,
        mine.id,
        column="goals_status",
        allowed=[GoalsStatus.SUBMITTED],
        values={"goals_status": GoalsStatus.RETURNED, "goals_comment": comment},
    )
    ctx.audit("goals.returned", "cycle_participant", mine.id, comment=comment)
    et = ctx.translator(employee)
    returned = goals_form_card(
        et,
        cycle_id=cycle.id,
        code=cycle.code,
        slots=slots(ctx),
        defaults=rows_of(await cq.goals_of(ctx.session, cycle.id, employee.id)),
        returned_comment=f"{ctx.person.name}: {comment}",
    )
    ctx.outbox.send(employee, returned)
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("goals.did_return"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("goals.returned"), card=with_outcome(card, f"{note}: {comment}"))
