"""HR corrects a released grade: ``/gradefix @张三`` opens the form (new grade and a reason).

The reason is what the person is told, so the vague-comment guard applies. The old value stays in the
audit log (``grade.corrected``: from, to, why); the person gets a card with both values, the reason and
until when they may appeal the new grade (the window restarts at the correction). A correction waits while
an appeal on the grade is open: that appeal is decided on its own card, by the HRBP or an HR admin. Nobody
corrects their own grade.
"""

from __future__ import annotations

from sqlalchemy import update

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import is_hr_admin
from bot.core.router import Router
from bot.core.status import GradeStatus
from bot.core.vague import must_bounce
from cards import grade_appeals as ga
from cards.flow_common import done_by, with_outcome
from cards.model import Card, Form
from handlers.grades.grades import mentioned_person
from handlers.grades.window import appeal_closes
from storage.models import Cycle, Grade, Person
from storage.queries import grades as gq

router = Router()


def _require_hr(ctx: Context) -> None:
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("grade_appeals.only_hr_correct")


async def _card(
    ctx: Context,
    grade: Grade,
    cycle: Cycle,
    person: Person,
    *,
    error: str | None = None,
    new_grade: str | None = None,
    reason: str | None = None,
) -> Card:
    released = grade.released_at or ctx.now
    return ga.correction_form_card(
        ctx.t,
        grade_id=grade.id,
        person_name=person.name,
        cycle_code=cycle.code,
        grade=grade.grade,
        grade_reason=grade.reason,
        released_on=ctx.day_of(released).isoformat(),
        scale=ctx.settings.feedback.grade_scale,
        error=error,
        new_grade=new_grade,
        reason=reason,
    )


@router.command("gradefix", "更正评级")
async def gradefix_command(ctx: Context, args: str) -> Reply:
    _require_hr(ctx)
    person = await mentioned_person(ctx, args, usage="grade_appeals.correct_usage")
    grade = await gq.latest_released(ctx.session, person.id)
    if grade is None:
        raise ctx.refuse("grade_appeals.nothing_released", name=person.name)
    grade, cycle, person = await _load(ctx, grade.id)
    return Reply(card=await _card(ctx, grade, cycle, person))


async def _load(ctx: Context, grade_id: int) -> tuple[Grade, Cycle, Person]:
    _require_hr(ctx)
    grade = await ctx.session.get(Grade, grade_id)
    cycle = await ctx.session.get(Cycle, grade.cycle_id) if grade is not None else None
    person = await ctx.session.get(Person, grade.person_id) if grade is not None else None
    if grade is None or cycle is None or person is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    if person.id == ctx.person.id:
        raise ctx.refuse("grade_appeals.not_own_correction")
    if grade.status != GradeStatus.RELEASED:
        raise ctx.refuse("grade_appeals.correct_unreleased", name=person.name, cycle=cycle.code)
    return grade, cycle, person


async def build_form(ctx: Context, payload: ga.GradeCorrect) -> Form:
    grade, cycle, person = await _load(ctx, payload.grade_id)
    return (await _card(ctx, grade, cycle, person)).forms()[0]


@router.action(ga.GradeCorrect, form=build_form)
async def correct(ctx: Context, payload: ga.GradeCorrect) -> Reply:
    grade, cycle, person = await _load(ctx, payload.grade_id)
    form = form_of(ctx)
    new, reason = text(form, "grade", 8), text(form, "reason", 1000)
    error = None
    if new not in ctx.settings.feedback.grade_scale or not reason:
        error = ctx.t("grade_appeals.err_correct")
    elif new == grade.grade:
        error = ctx.t("grade_appeals.err_same", grade=grade.grade)
    if error:
        card = await _card(ctx, grade, cycle, person, error=error, new_grade=new, reason=reason)
        return Reply(toast=error, toast_kind="error", card=card)
    pending = await gq.open_appeal(ctx.session, grade.id)
    if pending is not None:
        raise ctx.refuse("grade_appeals.correct_while_open", name=person.name)
    if await must_bounce(ctx, reason, entity="grade_correction", entity_id=grade.id):
        warning = ctx.t("vague.bounce", text=reason[:200])
        card = await _card(ctx, grade, cycle, person, error=warning, new_grade=new, reason=reason)
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    before = grade.grade
    result = await ctx.session.execute(
        update(Grade)
        .where(Grade.id == grade.id, Grade.grade == before, Grade.status == GradeStatus.RELEASED)
        .values(grade=new, corrected_at=ctx.now)
        .execution_options(synchronize_session="fetch")
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ctx.refuse("common.already_done")
    await ctx.session.refresh(grade)
    ctx.audit(
        "grade.corrected",
        "grade",
        grade.id,
        person_id=person.id,
        cycle=cycle.code,
        **{"from": before},
        to=new,
        why=reason,
    )
    ctx.outbox.send(
        person,
        ga.corrected_card(
            ctx.translator(person),
            grade_id=grade.id,
            cycle_code=cycle.code,
            before=before,
            after=new,
            reason=reason,
            closes=appeal_closes(ctx, grade, person).isoformat(),
        ),
    )
    card = await _card(ctx, grade, cycle, person)
    what = ctx.t("grade_appeals.did_correct", before=before, after=new)
    note = done_by(ctx.t, name=ctx.person.name, what=what, at=ctx.now, tz=ctx.zone())
    toast = ctx.t("grade_appeals.corrected_toast", name=person.name, before=before, after=new)
    return Reply(toast=toast, card=with_outcome(card, note))
