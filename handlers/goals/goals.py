"""Goals for a cycle (issue 17 items 1, 2 and 8): each participant writes objectives, each with 1 to
``[goals] max_key_results`` measurable key results (one per line), a weight, and the objective it aligns to
(their manager's or their department's); weights add up to 100. Or they copy last cycle's goals in one
click. The manager confirms them (version 1 of the goals) or returns them with a comment (which passes the
vague-word guard).

A key result must be measurable: a line the parser (``kr_parse``) cannot turn into a number, a date or a
named deliverable is refused, with a concrete example ("避免大而空：把“提升客户满意度”写成“NPS 从 32 提高到
40”"). An objective may be a direction ("提升客户满意度") when its key results measure it: OKRs are written
that way. A date or deliverable key result that names only a direction ("3 月 31 日前提升团队能力": the date
is checkable, the work is not) is sent back once by the vague-word guard, on the same form with every value
the person typed, and saved as written the second time.

Alignment: the "对齐到" select lists the manager's goals and the department's objectives
(``alignment.py``), the most similar one marked and pre-selected as the suggestion. Left unchosen, a goal
keeps its parent, or takes the suggestion; the summary says which goals were aligned by suggestion.

Saving keeps the rows of goals and key results that are still there (``storage.queries.goals.save_goals``),
so a report's goals aligned to this person's goals stay aligned through an edit.

Status lives on the participant row (none → submitted → confirmed, or → returned → submitted …); the
employee may resubmit until the manager confirms, and the manager's card is updated in place when they do.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from bot.core.context import Context, Reply
from bot.core.forms import FormData, form_of
from bot.core.forms import text as _text
from bot.core.people import approver_to_notify, require_approver
from bot.core.router import Router
from bot.core.status import GoalLevel, GoalsStatus
from bot.core.vague import must_bounce, must_bounce_any
from cards.catalogue import Translator
from cards.flow_actions import GoalsConfirm, GoalsCopy, GoalsEdit, GoalsReturn, GoalsReview, GoalsSubmit
from cards.flow_common import clip, done_by, with_outcome
from cards.goals import (
    MAX_GOALS_ON_CARD,
    NO_PARENT,
    GoalRow,
    GoalView,
    goals_form_card,
    goals_review_card,
    goals_submitted_card,
)
from cards.model import Card, Form
from cards.notice import notice_card
from handlers.goals import alignment
from handlers.goals.carry import offer_carry_over
from handlers.goals.kr_box import draft_of, read_box, row_lines, vague_kr
from handlers.goals.kr_parse import ParsedKr, split_lines
from handlers.goals.participation import own_participation
from handlers.goals.recompute import settle_saved
from handlers.goals.versions import record_confirmed_version
from storage.models import Cycle, CycleParticipant, Goal, Person
from storage.queries import cycles as cq
from storage.queries import goals as gq
from storage.queries.status import transition

router = Router()

EDITABLE = (GoalsStatus.NONE, GoalsStatus.RETURNED, GoalsStatus.SUBMITTED)


class GoalsInvalid(ValueError):
    """A goals form that cannot be saved (missing objective or key result, a key result with no measurable
    target, bad weight, weights not totalling 100, a parent not on the list)."""


@dataclass(frozen=True)
class ParsedGoal:
    n: int
    """The goal's number on the form (1-based), for the messages."""
    objective: str
    weight: int
    krs: list[ParsedKr]
    lines: str
    """The key-result lines as typed (kept on the goal for history)."""
    parent: str
    """The select's value: "", ``NO_PARENT`` or an objective's id."""
    text: str = ""
    """Objective and key results, what the alignment suggestion compares."""


def reference_day(ctx: Context, cycle: Cycle) -> date:
    """The day a year-less date in a key result counts from: the cycle's first day."""
    return cycle.starts_on or ctx.today()


def typed_rows(form: FormData) -> list[GoalRow]:
    """Every slot exactly as typed (empty ones too, so a goal keeps its number when the form comes back)."""
    return [
        GoalRow(
            _text(form, f"objective_{i}", 300),
            _text(form, f"key_results_{i}"),
            _text(form, f"weight_{i}", 10),
            _text(form, f"parent_{i}", 40),
        )
        for i in range(1, MAX_GOALS_ON_CARD + 1)
    ]


def parse_goals(ctx: Context, rows: Sequence[GoalRow], ref: date) -> list[ParsedGoal]:
    """The goals of a form, validated. Raises GoalsInvalid with every problem, translated: a goal without an
    objective or key result, a key result without a measurable target, a weight that is not a whole number
    from 1 to 100, more goals than the cycle allows, no goal at all, or weights not adding up to 100."""
    t = ctx.t
    out: list[ParsedGoal] = []
    errors: list[str] = []
    for i, row in enumerate(rows, start=1):
        if row.empty:
            continue
        weight_text = row.weight.rstrip("%％").strip()
        if not row.objective:
            errors.append(t("goals.err_objective", n=i))
        box = read_box(t, row.key_results, n=i, ref=ref, max_krs=ctx.settings.goals.max_key_results)
        errors += box.errors
        if not weight_text.isdigit() or not 1 <= int(weight_text) <= 100:
            errors.append(t("goals.err_weight", n=i))
            continue
        if row.objective and not box.errors:
            lines = "\n".join(split_lines(row.key_results))
            out.append(
                ParsedGoal(
                    n=i,
                    objective=row.objective[:300],
                    weight=int(weight_text),
                    krs=box.krs,
                    lines=lines,
                    parent=row.parent,
                    text=f"{row.objective}；{lines}",
                )
            )
    if not errors and not out:
        errors.append(t("goals.err_empty"))
    if not errors and len(out) > ctx.settings.cycles.max_goals:
        errors.append(t("goals.err_too_many", count=len(out), max=ctx.settings.cycles.max_goals))
    if not errors and sum(g.weight for g in out) != 100:
        errors.append(t("goals.err_sum", total=sum(g.weight for g in out)))
    if errors:
        raise GoalsInvalid("\n".join(errors))
    return out


async def saved_rows(ctx: Context, goals: Sequence[Goal]) -> list[GoalRow]:
    """Saved goals as the form shows them: key results written back as lines, the parent chosen."""
    krs = await gq.key_results_of(ctx.session, [g.id for g in goals])
    return [
        GoalRow(
            g.objective,
            row_lines(krs[g.id]) if krs[g.id] else g.key_result,
            str(g.weight),
            str(g.parent_id) if g.parent_id is not None else NO_PARENT,
        )
        for g in goals
    ]


async def _form_card(
    ctx: Context,
    cycle: Cycle,
    mine: CycleParticipant,
    person: Person,
    t: Translator,
    *,
    rows: Sequence[GoalRow] | None = None,
    error: str | None = None,
    warning: str | None = None,
    returned_comment: str | None = None,
) -> Card:
    """The goals form of ``person`` (in their language ``t``), filled with ``rows`` (default: their saved
    goals). A typed goal whose parent is not chosen yet gets the suggestion pre-selected."""
    if rows is None:
        rows = await saved_rows(ctx, await cq.goals_of(ctx.session, cycle.id, person.id))
    candidates = await alignment.for_person(ctx.session, cycle.id, person)
    own = [g.id for g in await cq.goals_of(ctx.session, cycle.id, person.id)]
    candidates = [c for c in candidates if not await alignment.loops(ctx.session, c.goal_id, own)]
    shown = []
    for row in rows:
        found = (
            alignment.suggestion(f"{row.objective}；{row.key_results}", candidates) if not row.empty else None
        )
        shown.append(GoalRow(row.objective, row.key_results, row.weight, row.parent, str(found or "")))
    if returned_comment is None and mine.goals_status == GoalsStatus.RETURNED:
        returned_comment = mine.goals_comment
    return goals_form_card(
        t,
        cycle_id=cycle.id,
        code=cycle.code,
        max_goals=ctx.settings.cycles.max_goals,
        max_key_results=ctx.settings.goals.max_key_results,
        choices=alignment.choices(candidates),
        defaults=shown,
        error=error,
        warning=warning,
        returned_comment=returned_comment,
    )


async def views_of(
    ctx: Context, t: Translator, goals: Sequence[Goal], suggested: Collection[int] = ()
) -> list[GoalView]:
    krs = await gq.key_results_of(ctx.session, [g.id for g in goals])
    names = await alignment.labels(ctx.session, t, [g.parent_id for g in goals])
    return [
        GoalView(
            objective=g.objective,
            weight=g.weight,
            key_results=[kr.title for kr in krs[g.id]] or ([g.key_result] if g.key_result else []),
            aligned_to=names.get(g.parent_id) if g.parent_id is not None else None,
            suggested=g.id in suggested,
        )
        for g in goals
    ]


async def _bounce_vague(
    ctx: Context, cycle: Cycle, mine: CycleParticipant, goals: Sequence[ParsedGoal], rows: Sequence[GoalRow]
) -> Reply | None:
    """The form again, asking once to sharpen the key results that name only a direction, or None."""
    texts = [vague_kr(g.krs) for g in goals]
    vague = await must_bounce_any(ctx, texts, entity="cycle_participant_goals", entity_id=mine.id)
    if not vague:
        return None
    lines = [ctx.t("goals.vague_kr", n=goals[i].n, text=clip(texts[i], 80)) for i in vague]
    warning = "\n".join([*lines, ctx.t("goals.vague_footer")])
    return Reply(
        toast=lines[0][:200],
        toast_kind="warning",
        card=await _form_card(ctx, cycle, mine, ctx.person, ctx.t, rows=rows, warning=warning),
    )


async def _parents(
    ctx: Context, cycle: Cycle, goals: Sequence[ParsedGoal], existing: Sequence[Goal]
) -> list[tuple[int | None, bool]]:
    """Each goal's parent (and whether it is the suggestion). Raises GoalsInvalid for a parent that is not
    on the person's list or would close a loop."""
    candidates = await alignment.for_person(ctx.session, cycle.id, ctx.person)
    index = gq.match([g.objective for g in existing], [g.objective for g in goals], by_position=True)
    own = [g.id for g in existing]
    out: list[tuple[int | None, bool]] = []
    errors: list[str] = []
    for goal, i in zip(goals, index, strict=True):
        keep = existing[i].parent_id if i is not None else None
        try:
            out.append(
                await alignment.resolve(
                    ctx.session, goal.parent, candidates=candidates, text=goal.text, keep=keep, own_ids=own
                )
            )
        except alignment.ParentInvalid as bad:
            errors.append(ctx.t(bad.key, n=goal.n, parent=clip(bad.parent, 60)))
    if errors:
        raise GoalsInvalid("\n".join(errors))
    return out


async def _save(
    ctx: Context,
    cycle: Cycle,
    mine: CycleParticipant,
    goals: Sequence[ParsedGoal],
    parents: Sequence[tuple[int | None, bool]],
    existing: Sequence[Goal],
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
    drafts = [
        gq.GoalDraft(
            objective=g.objective,
            key_result=g.lines,
            weight=g.weight,
            parent_id=parent,
            krs=[draft_of(kr) for kr in g.krs],
        )
        for g, (parent, _) in zip(goals, parents, strict=True)
    ]
    saved = await gq.save_goals(
        ctx.session,
        existing=existing,
        drafts=drafts,
        cycle_id=cycle.id,
        owner_id=ctx.person.id,
        level=GoalLevel.PERSON,
        department_id=None,
        by_position=True,
        keep_with_children=False,
        now=ctx.now,
    )
    await settle_saved(ctx.session, saved, by_person_id=ctx.person.id, at=ctx.now)
    suggested = {g.id for g, (_, by_bot) in zip(saved.goals, parents, strict=True) if by_bot}
    ctx.audit(
        "goals.submitted",
        "cycle_participant",
        mine.id,
        weights=[g.weight for g in goals],
        parents=[p for p, _ in parents],
        key_results=[len(g.krs) for g in goals],
        detached=saved.detached,
    )
    approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
    if approver is not None:
        t = ctx.translator(approver)
        card = goals_review_card(
            t,
            participant_id=mine.id,
            employee_name=ctx.person.name,
            code=cycle.code,
            views=await views_of(ctx, t, saved.goals),
        )
        key = f"goals:{mine.id}"
        if was == GoalsStatus.SUBMITTED:
            ctx.outbox.update(approver, card, card_key=key)
        else:
            ctx.outbox.send(approver, card, card_key=key)
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("goals.did_submit"), at=ctx.now, tz=ctx.zone())
    extra = ctx.t("goals.detached", count=saved.detached) if saved.detached else None
    return Reply(
        toast=ctx.t("goals.submitted"),
        card=goals_submitted_card(
            ctx.t,
            cycle_id=cycle.id,
            code=cycle.code,
            views=await views_of(ctx, ctx.t, saved.goals, suggested),
            note=note,
            extra=extra,
        ),
    )


async def _submit_rows(ctx: Context, cycle: Cycle, mine: CycleParticipant, rows: Sequence[GoalRow]) -> Reply:
    """What a submitted form and a copied last cycle have in common: validate, guard, align, save."""
    existing = await cq.goals_of(ctx.session, cycle.id, ctx.person.id)
    try:
        goals = parse_goals(ctx, rows, reference_day(ctx, cycle))
        parents = await _parents(ctx, cycle, goals, existing)
    except GoalsInvalid as exc:
        return Reply(
            toast=str(exc).splitlines()[0][:200],
            toast_kind="error",
            card=await _form_card(ctx, cycle, mine, ctx.person, ctx.t, rows=rows, error=str(exc)),
        )
    bounced = await _bounce_vague(ctx, cycle, mine, goals, rows)
    if bounced is not None:
        return bounced
    return await _save(ctx, cycle, mine, goals, parents, existing)


async def build_goals_form(ctx: Context, payload: GoalsSubmit) -> Form:
    cycle, mine = await own_participation(ctx, payload.cycle_id)
    return (await _form_card(ctx, cycle, mine, ctx.person, ctx.t)).forms()[0]


@router.command("goals", "目标")
async def goals_command(ctx: Context, args: str) -> Reply:
    """``/goals``: the goal form of the person's current cycle."""
    del args
    found = await cq.current_participation(ctx.session, ctx.person.id)
    if found is None:
        raise ctx.refuse("goals.no_cycle")
    cycle, mine = found
    await offer_carry_over(ctx, cycle, mine)  # issue 17 #9: last cycle's open work, as its own card
    return Reply(card=await _form_card(ctx, cycle, mine, ctx.person, ctx.t))


@router.action(GoalsEdit)
async def edit_goals(ctx: Context, payload: GoalsEdit) -> Reply:
    cycle, mine = await own_participation(ctx, payload.cycle_id)
    if mine.goals_status == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    ctx.outbox.send(ctx.person, await _form_card(ctx, cycle, mine, ctx.person, ctx.t))
    await offer_carry_over(ctx, cycle, mine)
    return Reply(toast=ctx.t("goals.form_sent"), toast_kind="info")


@router.action(GoalsSubmit, form=build_goals_form)
async def submit_goals(ctx: Context, payload: GoalsSubmit) -> Reply:
    cycle, mine = await own_participation(ctx, payload.cycle_id)
    if mine.goals_status == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    return await _submit_rows(ctx, cycle, mine, typed_rows(form_of(ctx)))


@router.action(GoalsCopy)
async def copy_last_cycle(ctx: Context, payload: GoalsCopy) -> Reply:
    """One click: last cycle's goals and key results become this cycle's submission (still editable until
    confirmed). The key results start again: no current values, milestones not done; parents are chosen
    anew (the suggestion), since last cycle's objectives belong to last cycle. Dates are read again from
    this cycle's start, so "3 月 31 日前" is next March 31; a dated deadline already past is refused."""
    cycle, mine = await own_participation(ctx, payload.cycle_id)
    if mine.goals_status == GoalsStatus.CONFIRMED:
        raise ctx.refuse("goals.already_confirmed")
    previous = await cq.previous_goals(ctx.session, ctx.person.id, cycle)
    if not previous:
        raise ctx.refuse("goals.nothing_to_copy")
    rows = [GoalRow(r.objective, r.key_results, r.weight, "") for r in await saved_rows(ctx, previous)][
        :MAX_GOALS_ON_CARD
    ]
    return await _submit_rows(ctx, cycle, mine, rows)


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
    goals = await cq.goals_of(ctx.session, cycle.id, employee.id)
    return goals_review_card(
        ctx.t,
        participant_id=mine.id,
        employee_name=employee.name,
        code=cycle.code,
        views=await views_of(ctx, ctx.t, goals),
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
    await record_confirmed_version(ctx, cycle.id, employee)
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
    returned = await _form_card(
        ctx, cycle, mine, employee, et, returned_comment=f"{ctx.person.name}: {comment}"
    )
    ctx.outbox.send(employee, returned)
    note = done_by(ctx.t, name=ctx.person.name, what=ctx.t("goals.did_return"), at=ctx.now, tz=ctx.zone())
    return Reply(toast=ctx.t("goals.returned"), card=with_outcome(card, f"{note}: {comment}"))
