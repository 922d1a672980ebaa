"""Appeals: an employee contests their released grade, the HRBP decides, the employee is told.

- ``/appeal 理由`` (or the button on the released / corrected grade card, which sends the form) files an
  appeal against one's own latest released grade, within ``[grades] appeal_window_days`` of release or of
  HR's last correction. After the window the refusal names the last day it was open.
- One open appeal per grade (a unique column, so two taps or two replicas cannot make two). A decided
  appeal is final for that grade; only a later HR correction (a new grade) opens a new window. An open
  appeal may be withdrawn, and a withdrawn one may be filed again while the window lasts.
- The HRBP (the person's or their department's; without one, the HR admins) gets one card with one form:
  uphold or change, the new grade, and a reason the vague-comment guard checks. HR admins may decide too;
  nobody decides their own appeal.
- The person gets an outcome card coloured by the outcome, with what happens next; the cards still
  offering a decision or a withdrawal are put into their final state.
- Every step is in the audit log on the grade (``grade.appealed`` / ``grade.appeal_decided`` /
  ``grade.appeal_withdrawn``), so ``/history``, the person export and an erase all find it there.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import hrbp_of, is_hr_admin
from bot.core.router import Router
from bot.core.status import DECIDED_APPEAL, OPEN_APPEAL, AppealStatus, GradeStatus
from bot.core.vague import must_bounce
from cards import grade_appeals as ga
from cards.catalogue import Translator
from cards.flow_common import done_by, with_outcome
from cards.model import Card, Form
from handlers.grades.window import appeal_closes, deciders, window_start
from storage.models import Cycle, Grade, GradeAppeal, Person
from storage.queries import grades as gq

router = Router()


def _key(appeal_id: int) -> str:
    """The decider's card."""
    return f"grades:appeal:{appeal_id}"


def _mine_key(appeal_id: int) -> str:
    """The appellant's "received" card."""
    return f"grades:appeal:{appeal_id}:mine"


async def _cycle_of(ctx: Context, grade: Grade) -> Cycle:
    cycle = await ctx.session.get(Cycle, grade.cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    return cycle


async def _own_released(ctx: Context, grade_id: int) -> tuple[Grade, Cycle]:
    grade = await ctx.session.get(Grade, grade_id)
    if grade is None:
        raise ctx.refuse("common.invalid_action")
    cycle = await _cycle_of(ctx, grade)
    if grade.person_id != ctx.person.id:
        raise ctx.refuse("grade_appeals.only_own")
    if grade.status != GradeStatus.RELEASED:
        raise ctx.refuse("grade_appeals.not_released", cycle=cycle.code)
    return grade, cycle


async def _decider_name(ctx: Context, person: Person, t: Translator) -> str:
    hrbp = await hrbp_of(ctx.session, person)
    return hrbp.name if hrbp is not None else t("grade_appeals.hr")


async def _check_may_appeal(ctx: Context, grade: Grade, cycle: Cycle) -> str:
    """Refuse an appeal outside the window, beside an open one, or after a final decision; else the last
    day of the window (ISO)."""
    closes = appeal_closes(ctx, grade, ctx.person)
    if ctx.today() > closes:
        raise ctx.refuse(
            "grade_appeals.window_closed",
            cycle=cycle.code,
            closed=closes.isoformat(),
            days=ctx.settings.grades.appeal_window_days,
        )
    pending = await gq.open_appeal(ctx.session, grade.id)
    if pending is not None:
        raise ctx.refuse(
            "grade_appeals.already_open",
            filed=ctx.local_text(pending.created_at),
            decider=await _decider_name(ctx, ctx.person, ctx.t),
        )
    start = window_start(grade)
    for done in await gq.appeals_for_grade(ctx.session, grade.id):
        if (
            done.status in DECIDED_APPEAL
            and done.decided_at is not None
            and start
            and done.decided_at >= start
        ):
            raise ctx.refuse(
                "grade_appeals.already_decided",
                cycle=cycle.code,
                outcome=ctx.t(f"grade_appeals.decision.{done.status}"),
                decided=ctx.local_text(done.decided_at),
            )
    return closes.isoformat()


async def _form_card(
    ctx: Context, grade: Grade, cycle: Cycle, closes: str, *, error: str | None = None, reason: str = ""
) -> Card:
    return ga.appeal_form_card(
        ctx.t,
        grade_id=grade.id,
        cycle_code=cycle.code,
        grade=grade.grade,
        closes=closes,
        decider=await _decider_name(ctx, ctx.person, ctx.t),
        error=error,
        reason=reason,
    )


@router.command("appeal", "申诉")
async def appeal_command(ctx: Context, args: str) -> Reply:
    """``/appeal`` sends the form; ``/appeal 理由`` files at once."""
    grade = await gq.latest_released(ctx.session, ctx.person.id)
    if grade is None:
        raise ctx.refuse("grade_appeals.no_grade")
    cycle = await _cycle_of(ctx, grade)
    closes = await _check_may_appeal(ctx, grade, cycle)
    reason = args.strip()[:1000]
    if not reason:
        return Reply(card=await _form_card(ctx, grade, cycle, closes))
    return await _file(ctx, grade, cycle, reason)


@router.action(ga.GradeAppealStart)
async def start(ctx: Context, payload: ga.GradeAppealStart) -> Reply:
    """The button on the grade card: the form comes as a card of its own, so the grade card stays."""
    grade, cycle = await _own_released(ctx, payload.grade_id)
    closes = await _check_may_appeal(ctx, grade, cycle)
    ctx.outbox.send(ctx.person, await _form_card(ctx, grade, cycle, closes))
    return Reply(toast=ctx.t("grade_appeals.form_sent", closes=closes), toast_kind="info")


async def build_file_form(ctx: Context, payload: ga.GradeAppealFile) -> Form:
    grade, cycle = await _own_released(ctx, payload.grade_id)
    closes = await _check_may_appeal(ctx, grade, cycle)
    return (await _form_card(ctx, grade, cycle, closes)).forms()[0]


@router.action(ga.GradeAppealFile, form=build_file_form)
async def file(ctx: Context, payload: ga.GradeAppealFile) -> Reply:
    grade, cycle = await _own_released(ctx, payload.grade_id)
    closes = await _check_may_appeal(ctx, grade, cycle)
    reason = text(form_of(ctx), "reason", 1000)
    if not reason:
        error = ctx.t("grade_appeals.err_reason")
        return Reply(
            toast=error, toast_kind="error", card=await _form_card(ctx, grade, cycle, closes, error=error)
        )
    answer = await _file(ctx, grade, cycle, reason)
    form = await _form_card(ctx, grade, cycle, closes, reason=reason)
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("grade_appeals.did_file"), at=ctx.now, tz=ctx.zone()
    )
    answer.card = with_outcome(form, note)
    return answer


async def _file(ctx: Context, grade: Grade, cycle: Cycle, reason: str) -> Reply:
    who = await deciders(ctx, ctx.person)
    if not who:
        raise ctx.refuse("grade_appeals.no_decider")
    appeal = GradeAppeal(
        grade_id=grade.id,
        cycle_id=cycle.id,
        person_id=ctx.person.id,
        open_grade_id=grade.id,
        reason=reason,
        status=AppealStatus.OPEN,
        grade_before=grade.grade,
        created_at=ctx.now,
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(appeal)
            await ctx.session.flush()
    except IntegrityError:
        raise ctx.refuse("common.already_done") from None
    ctx.audit(
        "grade.appealed",
        "grade",
        grade.id,
        appeal_id=appeal.id,
        person_id=ctx.person.id,
        cycle=cycle.code,
        grade=grade.grade,
        why=reason,
    )
    for decider in who:
        ctx.outbox.send(
            decider,
            await _decision_card(ctx, appeal, grade, cycle, ctx.translator(decider)),
            card_key=_key(appeal.id),
        )
    decider_name = await _decider_name(ctx, ctx.person, ctx.t)
    ctx.outbox.send(
        ctx.person, _received(ctx, appeal, cycle, ctx.t, decider_name), card_key=_mine_key(appeal.id)
    )
    return Reply(toast=ctx.t("grade_appeals.filed_toast", decider=decider_name))


def _received(
    ctx: Context, appeal: GradeAppeal, cycle: Cycle, t: Translator, decider: str, *, live: bool = True
) -> Card:
    return ga.appeal_received_card(
        t,
        appeal_id=appeal.id,
        cycle_code=cycle.code,
        grade=appeal.grade_before,
        reason=appeal.reason,
        decider=decider,
        filed_at=ctx.local_text(appeal.created_at),
        live=live,
    )


async def _decision_card(
    ctx: Context,
    appeal: GradeAppeal,
    grade: Grade,
    cycle: Cycle,
    t: Translator,
    *,
    error: str | None = None,
    decision: str | None = None,
    new_grade: str | None = None,
    reason: str | None = None,
) -> Card:
    person = await ctx.session.get(Person, appeal.person_id)
    return ga.decision_card(
        t,
        appeal_id=appeal.id,
        person_name=person.name if person is not None else "—",
        cycle_code=cycle.code,
        grade=appeal.grade_before,
        grade_reason=grade.reason,
        appeal_reason=appeal.reason,
        filed_at=ctx.local_text(appeal.created_at),
        scale=ctx.settings.feedback.grade_scale,
        error=error,
        decision=decision,
        new_grade=new_grade,
        reason=reason,
    )


async def _load_for_decider(ctx: Context, appeal_id: int) -> tuple[GradeAppeal, Grade, Cycle, Person]:
    appeal = await ctx.session.get(GradeAppeal, appeal_id)
    if appeal is None:
        raise ctx.refuse("common.invalid_action")
    grade = await ctx.session.get(Grade, appeal.grade_id)
    person = await ctx.session.get(Person, appeal.person_id)
    if grade is None or person is None:
        raise ctx.refuse("common.invalid_action")
    cycle = await _cycle_of(ctx, grade)
    hrbp = await hrbp_of(ctx.session, person)
    allowed = is_hr_admin(ctx.person) or (hrbp is not None and hrbp.id == ctx.person.id)
    if ctx.person.id == person.id or not allowed:
        raise ctx.refuse("grade_appeals.not_decider", name=person.name)
    return appeal, grade, cycle, person


async def build_decide_form(ctx: Context, payload: ga.GradeAppealDecide) -> Form:
    appeal, grade, cycle, _ = await _load_for_decider(ctx, payload.appeal_id)
    return (await _decision_card(ctx, appeal, grade, cycle, ctx.t)).forms()[0]


@router.action(ga.GradeAppealDecide, form=build_decide_form)
async def decide(ctx: Context, payload: ga.GradeAppealDecide) -> Reply:
    """Uphold or change, with a reason; a form sent back keeps every value."""
    appeal, grade, cycle, person = await _load_for_decider(ctx, payload.appeal_id)
    if appeal.status not in OPEN_APPEAL:
        raise ctx.refuse(
            "grade_appeals.no_longer_open", status=ctx.t(f"grade_appeals.decision.{appeal.status}")
        )
    form = form_of(ctx)
    decision, new, reason = text(form, "decision", 16), text(form, "grade", 8), text(form, "reason", 1000)
    error = None
    if decision not in ga.DECISIONS or not reason:
        error = ctx.t("grade_appeals.err_decision")
    elif decision == "changed" and (new not in ctx.settings.feedback.grade_scale or new == grade.grade):
        error = ctx.t("grade_appeals.err_change", grade=grade.grade)
    values = {"decision": decision, "new_grade": new, "reason": reason}
    if error:
        card = await _decision_card(ctx, appeal, grade, cycle, ctx.t, error=error, **values)
        return Reply(toast=error, toast_kind="error", card=card)
    if await must_bounce(ctx, reason, entity="grade_appeal", entity_id=appeal.id):
        warning = ctx.t("vague.bounce", text=reason[:200])
        card = await _decision_card(ctx, appeal, grade, cycle, ctx.t, error=warning, **values)
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    outcome: ga.Outcome = "changed" if decision == "changed" else "upheld"
    before = grade.grade
    after = new if outcome == "changed" else before
    await ctx.transition_or_refuse(
        GradeAppeal,
        appeal.id,
        allowed=OPEN_APPEAL,
        values={
            "status": AppealStatus(outcome),
            "open_grade_id": None,
            "decided_by_id": ctx.person.id,
            "decision_reason": reason,
            "grade_after": after,
            "decided_at": ctx.now,
        },
    )
    if outcome == "changed":
        result = await ctx.session.execute(
            update(Grade)
            .where(Grade.id == grade.id, Grade.grade == before, Grade.status == GradeStatus.RELEASED)
            .values(grade=after)
            .execution_options(synchronize_session="fetch")
        )
        if getattr(result, "rowcount", 0) != 1:
            raise ctx.refuse("common.already_done")
    ctx.audit(
        "grade.appeal_decided",
        "grade",
        grade.id,
        appeal_id=appeal.id,
        person_id=person.id,
        cycle=cycle.code,
        outcome=outcome,
        **{"from": before},
        to=after,
        why=reason,
    )
    await ctx.session.refresh(appeal)
    pt = ctx.translator(person)
    ctx.outbox.send(
        person,
        ga.outcome_card(
            pt,
            cycle_code=cycle.code,
            outcome=outcome,
            before=before,
            after=after,
            reason=reason,
            decider=ctx.person.name,
        ),
        dedupe_key=f"grade_appeal:{appeal.id}:decided",
    )
    what = pt(f"grade_appeals.did_decide.{outcome}", grade=after)
    received = _received(ctx, appeal, cycle, pt, ctx.person.name, live=False)
    await ctx.outbox.supersede(
        person,
        _mine_key(appeal.id),
        with_outcome(received, done_by(pt, name=ctx.person.name, what=what, at=ctx.now, tz=ctx.zone(person))),
    )
    await _close_decider_cards(
        ctx, appeal, grade, cycle, person, f"grade_appeals.did_decide.{outcome}", after
    )
    t = ctx.t
    final = await _decision_card(ctx, appeal, grade, cycle, t)
    note = done_by(
        t,
        name=ctx.person.name,
        what=t(f"grade_appeals.did_decide.{outcome}", grade=after),
        at=ctx.now,
        tz=ctx.zone(),
    )
    toast = t(f"grade_appeals.decided_toast.{outcome}", name=person.name, grade=after)
    return Reply(toast=toast, card=with_outcome(final, note))


async def _close_decider_cards(
    ctx: Context,
    appeal: GradeAppeal,
    grade: Grade,
    cycle: Cycle,
    person: Person,
    what_key: str,
    grade_after: str,
) -> None:
    """Every other copy of the decision card goes final: nobody else can decide a decided appeal."""
    for decider in await deciders(ctx, person):
        if decider.id == ctx.person.id:
            continue
        t = ctx.translator(decider)
        card = await _decision_card(ctx, appeal, grade, cycle, t)
        note = done_by(
            t, name=ctx.person.name, what=t(what_key, grade=grade_after), at=ctx.now, tz=ctx.zone(decider)
        )
        await ctx.outbox.supersede(decider, _key(appeal.id), with_outcome(card, note))


@router.action(ga.GradeAppealWithdraw)
async def withdraw(ctx: Context, payload: ga.GradeAppealWithdraw) -> Reply:
    appeal = await ctx.session.get(GradeAppeal, payload.appeal_id)
    if appeal is None:
        raise ctx.refuse("common.invalid_action")
    grade = await ctx.session.get(Grade, appeal.grade_id)
    if grade is None:
        raise ctx.refuse("common.invalid_action")
    cycle = await _cycle_of(ctx, grade)
    if appeal.person_id != ctx.person.id:
        raise ctx.refuse("grade_appeals.only_own")
    if appeal.status not in OPEN_APPEAL:
        raise ctx.refuse(
            "grade_appeals.no_longer_open", status=ctx.t(f"grade_appeals.decision.{appeal.status}")
        )
    await ctx.transition_or_refuse(
        GradeAppeal,
        appeal.id,
        allowed=OPEN_APPEAL,
        values={"status": AppealStatus.WITHDRAWN, "open_grade_id": None, "decided_at": ctx.now},
    )
    ctx.audit(
        "grade.appeal_withdrawn",
        "grade",
        grade.id,
        appeal_id=appeal.id,
        person_id=ctx.person.id,
        cycle=cycle.code,
    )
    await ctx.session.refresh(appeal)
    await _close_decider_cards(
        ctx, appeal, grade, cycle, ctx.person, "grade_appeals.did_withdraw", grade.grade
    )
    decider = await _decider_name(ctx, ctx.person, ctx.t)
    card = _received(ctx, appeal, cycle, ctx.t, decider, live=False)
    note = done_by(
        ctx.t,
        name=ctx.person.name,
        what=ctx.t("grade_appeals.did_withdraw", grade=grade.grade),
        at=ctx.now,
        tz=ctx.zone(),
    )
    return Reply(toast=ctx.t("grade_appeals.withdrawn_toast"), card=with_outcome(card, note))
