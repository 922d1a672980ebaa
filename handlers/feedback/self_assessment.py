"""Self-assessment near a cycle's end: a 1-5 score and one concrete example per goal (the vague-word
guard asks once for something checkable), plus self scores on the peer-feedback dimensions so the radar
can set self against peers. Submitting tells the manager and offers to nominate collaborators.

Opening is idempotent (unique cycle+person): the flow's schedule entry (``sweep_self_assessments``, run by
the scheduler's leader every tick) opens one for every participant ``feedback.self_assessment_lead_days``
before ``cycles.ends_on`` (``due_self_assessments`` lists who is due), and HR may open a whole cycle at once
with ``/selfassess <cycle code>``.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.localtime import local_today
from bot.core.notify import send_polite
from bot.core.people import approver_to_notify, is_hr_admin, require_self
from bot.core.router import Router
from bot.core.schedule import Host, ScheduleEntry, Sweep
from bot.core.status import CycleStatus, SelfAssessmentStatus
from bot.core.vague import must_bounce
from cards import self_assessment as sc
from cards.model import Form
from handlers.kickoff.api import require_answerable
from storage.feedback_scales import DIMENSIONS
from storage.models import Cycle, CycleParticipant, Person, SelfAssessment
from storage.queries import cycles as cq
from storage.queries import feedback as fq
from storage.queries.status import transition

router = Router()


def card_key(assessment_id: int) -> str:
    return f"selfassess:{assessment_id}"


async def goal_lines(session: AsyncSession, cycle_id: int, person_id: int) -> list[sc.GoalLine]:
    goals = await cq.goals_of(session, cycle_id, person_id)
    return [sc.GoalLine(id=g.id, title=g.objective) for g in goals][: sc.MAX_GOALS_ON_CARD]


async def open_for(ctx: Context, person: Person, cycle: Cycle) -> SelfAssessment | None:
    """Create ``person``'s self-assessment for ``cycle`` and send the card; None if it already existed."""
    if await cq.participant(ctx.session, cycle.id, person.id) is None:
        return None
    if await fq.self_assessment(ctx.session, cycle.id, person.id) is not None:
        return None
    row = SelfAssessment(
        cycle_id=cycle.id,
        person_id=person.id,
        status=SelfAssessmentStatus.OPEN,
        answers={},
        created_at=ctx.now,
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(row)
            await ctx.session.flush()
    except IntegrityError:
        return None
    goals = await goal_lines(ctx.session, cycle.id, person.id)
    card = sc.self_assessment_card(
        ctx.translator(person), assessment_id=row.id, cycle_code=cycle.code, goals=goals
    )
    await send_polite(ctx, person, card, card_key=card_key(row.id), dedupe_key=f"selfassess:{row.id}:open")
    ctx.audit("selfassess.opened", "self_assessment", row.id, cycle=cycle.code, person_id=person.id)
    return row


async def open_self_assessment(ctx: Context, *, cycle_id: int) -> SelfAssessment | None:
    """Scheduler entry point: ctx.person = the participant."""
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.status != CycleStatus.ACTIVE:
        return None
    return await open_for(ctx, ctx.person, cycle)


async def due_self_assessments(
    session: AsyncSession, *, today: date, lead_days: int
) -> list[tuple[int, int]]:
    """(person_id, cycle_id) of active participants of active cycles ending within ``lead_days`` of
    ``today`` who have no self-assessment yet."""
    horizon = today + timedelta(days=lead_days)
    rows = await session.execute(
        select(CycleParticipant.person_id, Cycle.id)
        .join(Cycle, Cycle.id == CycleParticipant.cycle_id)
        .join(Person, Person.id == CycleParticipant.person_id)
        .outerjoin(
            SelfAssessment,
            (SelfAssessment.cycle_id == Cycle.id) & (SelfAssessment.person_id == CycleParticipant.person_id),
        )
        .where(
            Cycle.status == CycleStatus.ACTIVE,
            Cycle.ends_on.is_not(None),
            Cycle.ends_on <= horizon,
            Cycle.ends_on >= today,
            Person.active.is_(True),
            SelfAssessment.id.is_(None),
        )
        .order_by(Cycle.id, CycleParticipant.person_id)
    )
    return [(int(p), int(c)) for p, c in rows.all()]


async def sweep_self_assessments(host: Host) -> int:
    """Open every due self-assessment (each in the person's own transaction); returns how many opened.

    "Today" is the configured default time zone's date: the lead time is counted in days, and a few hours
    either way do not matter for a card that stays open until the cycle ends."""
    today = local_today(host.clock.now(), host.settings.schedule.default_timezone)
    async with host.factory() as session:
        due = await due_self_assessments(
            session, today=today, lead_days=host.settings.feedback.self_assessment_lead_days
        )
    opened: list[SelfAssessment] = []

    async def job(ctx: Context, cycle_id: int) -> None:
        row = await open_self_assessment(ctx, cycle_id=cycle_id)
        if row is not None:
            opened.append(row)

    for person_id, cycle_id in due:
        await host.run_for_person(person_id, functools.partial(job, cycle_id=cycle_id))
    return len(opened)


SCHEDULE: tuple[ScheduleEntry, ...] = (Sweep("sweep_self_assessments", sweep_self_assessments),)


@router.command("selfassess", "自评")
async def selfassess_command(ctx: Context, args: str) -> Reply:
    """HR: ``/selfassess 2026-Q1`` opens the cycle's self-assessments now. Anyone else: shows their own."""
    code = args.strip()
    if code:
        if not is_hr_admin(ctx.person):
            raise ctx.refuse("selfassess.only_hr")
        cycle = await cq.cycle_by_code(ctx.session, ctx.workspace.id, code)
        if cycle is None or cycle.status != CycleStatus.ACTIVE:
            raise ctx.refuse("selfassess.no_cycle", cycle=code)
        opened = 0
        for person_id in sorted(await cq.participant_ids(ctx.session, cycle.id)):
            person = await ctx.session.get(Person, person_id)
            if person is not None and person.active and await open_for(ctx, person, cycle) is not None:
                opened += 1
        ctx.audit("selfassess.opened_cycle", "cycle", cycle.id, opened=opened)
        return Reply(toast=ctx.t("selfassess.opened_cycle", n=opened, cycle=cycle.code))
    found = await cq.current_participation(ctx.session, ctx.person.id)
    if found is None:
        raise ctx.refuse("selfassess.not_in_cycle")
    cycle = found[0]
    row = await fq.self_assessment(ctx.session, cycle.id, ctx.person.id)
    if row is None:
        row = await open_for(ctx, ctx.person, cycle)
        if row is None:
            raise ctx.refuse("selfassess.not_in_cycle")
        return Reply(toast=ctx.t("selfassess.sent"))
    goals = await goal_lines(ctx.session, cycle.id, ctx.person.id)
    if row.status == SelfAssessmentStatus.SUBMITTED:
        return Reply(
            card=sc.submitted_card(
                ctx.t,
                cycle_id=cycle.id,
                person_id=ctx.person.id,
                cycle_code=cycle.code,
                goals=goals,
                answers=row.answers,
            )
        )
    return Reply(
        card=sc.self_assessment_card(
            ctx.t, assessment_id=row.id, cycle_code=cycle.code, goals=goals, answers=row.answers
        )
    )


async def _own_open(ctx: Context, assessment_id: int) -> tuple[SelfAssessment, Cycle]:
    row = await ctx.session.get(SelfAssessment, assessment_id)
    if row is None:
        raise ctx.refuse("common.invalid_action")
    require_self(ctx, row.person_id)
    if row.status != SelfAssessmentStatus.OPEN:
        raise ctx.refuse("selfassess.already_submitted")
    cycle = await ctx.session.get(Cycle, row.cycle_id)
    assert cycle is not None
    require_answerable(ctx, cycle)  # issue 20 #1: the late-submission policy of a closing/closed cycle
    return row, cycle


async def build_form(ctx: Context, payload: sc.SelfAssessSubmit) -> Form:
    row, cycle = await _own_open(ctx, payload.assessment_id)
    goals = await goal_lines(ctx.session, cycle.id, row.person_id)
    card = sc.self_assessment_card(
        ctx.t, assessment_id=row.id, cycle_code=cycle.code, goals=goals, answers=row.answers
    )
    return card.forms()[0]


def _keep_draft(row: SelfAssessment, answers: dict[str, object]) -> None:
    """Keep what was entered on the open row (a bounce's reply commits): every later copy of the form
    (``/selfassess``, a chat form's rebuilt questions) starts from it instead of from blank."""
    row.answers = answers


def _score(value: str) -> int | None:
    return int(value) if value.isdigit() and 1 <= int(value) <= 5 else None


@router.action(sc.SelfAssessSubmit, form=build_form)
async def submit(ctx: Context, payload: sc.SelfAssessSubmit) -> Reply:
    row, cycle = await _own_open(ctx, payload.assessment_id)
    goals = await goal_lines(ctx.session, cycle.id, row.person_id)
    form = form_of(ctx)
    goal_answers: dict[str, dict[str, object]] = {}
    errors: list[str] = []
    for i, goal in enumerate(goals, start=1):
        score = _score(text(form, sc.score_name(goal.id)))
        example = text(form, sc.example_name(goal.id), 1000)
        goal_answers[str(goal.id)] = {"score": score, "example": example}
        if score is None or not example:
            errors.append(ctx.t("selfassess.err_goal", n=i))
    dims: dict[str, int] = {}
    for dim in DIMENSIONS:
        value = _score(text(form, sc.dim_name(dim)))
        if value is None:
            errors.append(ctx.t("selfassess.err_dim", dim=ctx.t(f"peers.dim.{dim}")))
        else:
            dims[dim] = value
    answers: dict[str, object] = {"goals": goal_answers, "dims": dims}
    if errors:
        _keep_draft(row, answers)
        error = "\n".join(errors)
        card = sc.self_assessment_card(
            ctx.t, assessment_id=row.id, cycle_code=cycle.code, goals=goals, answers=answers, error=error
        )
        return Reply(toast=errors[0], toast_kind="error", card=card)
    for answer in goal_answers.values():
        example = str(answer["example"])
        if await must_bounce(ctx, example, entity="self_assessment", entity_id=row.id):
            warning = ctx.t("vague.bounce", text=example[:200])
            _keep_draft(row, answers)
            card = sc.self_assessment_card(
                ctx.t,
                assessment_id=row.id,
                cycle_code=cycle.code,
                goals=goals,
                answers=answers,
                error=warning,
            )
            return Reply(toast=warning[:200], toast_kind="warning", card=card)
    updated = await transition(
        ctx.session,
        SelfAssessment,
        row.id,
        allowed=[SelfAssessmentStatus.OPEN],
        values={"status": SelfAssessmentStatus.SUBMITTED, "answers": answers, "submitted_at": ctx.now},
    )
    if updated is None:
        raise ctx.refuse("selfassess.already_submitted")
    ctx.audit("selfassess.submitted", "self_assessment", row.id, late=cycle.status == CycleStatus.CLOSED)
    approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
    if approver is not None:
        ctx.outbox.send(
            approver,
            sc.manager_card(
                ctx.translator(approver),
                cycle_id=cycle.id,
                person_id=ctx.person.id,
                name=ctx.person.name,
                cycle_code=cycle.code,
                goals=goals,
                answers=updated.answers,
            ),
            card_key=f"selfassess-mgr:{row.id}",
        )
    card = sc.submitted_card(
        ctx.t,
        cycle_id=cycle.id,
        person_id=ctx.person.id,
        cycle_code=cycle.code,
        goals=goals,
        answers=updated.answers,
    )
    # The form may have been answered from another copy (``/selfassess``, a chat form, the demo): the
    # one the scheduler sent must not stay open-looking.
    await ctx.outbox.supersede(ctx.person, card_key(row.id), card)
    return Reply(toast=ctx.t("selfassess.submitted"), card=card)
