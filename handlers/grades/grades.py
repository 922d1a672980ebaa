"""Grades with a calibration guard.

- The manager (or delegate) proposes a grade per report with ``/grade @张三``: the card shows the facts a
  grade should rest on (goals, check-in record, evidence, self-assessment, peer aggregate if visible,
  deliverable ratings) and asks for the grade and a reason. Every proposal and change is in the audit log
  (``grade.proposed`` / ``grade.changed``: who, from, to, why). HR admins may propose too.
- Once every participant of a department has a grade, the department's distribution is checked against
  its own history (``storage.queries.grades.deviations``); any new deviation sends one alert card to the
  HR admins and the department head, before anything is released.
- ``/grades [cycle]`` (default: the active cycle) shows HR the distribution per department and how many
  participants have no grade yet. Only HR releases, and never on the first tap: "release" opens a
  confirmation naming how many are released and how many are still ungraded (and, on request, who). While a
  calibration warning stands that this HR admin has not marked as read, the confirmation offers "I have read
  the warnings" instead of "release". If the numbers changed since the confirmation was shown, it is shown
  again rather than releasing something else. Each person gets their grade once; released grades are locked.
- A reason is a free text the grade rests on, so the vague-comment guard applies: "加强沟通" is bounced once,
  with the grade and the text kept on the form.
- A grade rests on goals, so none is proposed before the person's goals for that cycle are confirmed; the
  refusal says where the goals stand and who acts next.
- A calibration anomaly does more than alert: the department's proposed grades are *locked* (no change by
  the manager, no release) until an HR admin reviews them on the alert card, which unlocks them and counts
  as having read the warnings. HR may still change a locked grade while reviewing.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot.core.context import Context, Refused, Reply
from bot.core.forms import form_of, text
from bot.core.people import find_by_mention, is_hr_admin, is_manager_of
from bot.core.router import Router
from bot.core.status import (
    ANSWERABLE_CYCLE,
    ANSWERED_CHECKIN,
    CheckInStatus,
    GoalsStatus,
    GradeStatus,
    SelfAssessmentStatus,
)
from bot.core.vague import must_bounce
from cards import grades as gc
from cards.catalogue import Translator
from cards.flow_common import done_by, with_outcome
from cards.model import Card, Form
from handlers.grades.window import last_day
from handlers.kickoff.api import canonical_code
from storage.grade_scales import Deviation
from storage.models import CheckIn, Cycle, CycleParticipant, Department, Evidence, Grade, Person
from storage.queries import cycles as cq
from storage.queries import feedback as fq
from storage.queries import grades as gq
from storage.queries.engagement import streak_for
from storage.queries.once import done_before

router = Router()


async def _may_grade(ctx: Context, person: Person) -> bool:
    return is_hr_admin(ctx.person) or await is_manager_of(ctx.session, ctx.person, person)


def _require_goals(ctx: Context, cycle: Cycle, person: Person, mine: CycleParticipant) -> None:
    """A grade rests on confirmed goals: refuse with where they stand and who acts next."""
    if mine.goals_status != GoalsStatus.CONFIRMED:
        raise ctx.refuse(
            "grades.goals_not_confirmed",
            name=person.name,
            cycle=cycle.code,
            state=ctx.t(f"grades.goals_state.{mine.goals_status}"),
        )


async def _facts(ctx: Context, cycle: Cycle, person: Person) -> list[tuple[str, str]]:
    t = ctx.t
    goals = await cq.goals_of(ctx.session, cycle.id, person.id)
    facts = [
        (t("grades.fact_goal", n=i), f"{g.objective} ({g.weight}%)") for i, g in enumerate(goals[:5], start=1)
    ]
    rows = await ctx.session.execute(
        select(CheckIn.status, func.count()).where(CheckIn.person_id == person.id).group_by(CheckIn.status)
    )
    counts = {s: int(n) for s, n in rows.all()}
    answered = sum(counts.get(s, 0) for s in ANSWERED_CHECKIN)
    facts.append(
        (
            t("grades.fact_checkins"),
            t(
                "grades.checkins_value",
                answered=answered,
                missed=counts.get(CheckInStatus.MISSED, 0),
                streak=await streak_for(ctx.session, person.id),
            ),
        )
    )
    evidence = await ctx.session.scalar(
        select(func.count()).select_from(Evidence).where(Evidence.person_id == person.id)
    )
    facts.append((t("grades.fact_evidence"), str(int(evidence or 0))))
    sa = await fq.self_assessment(ctx.session, cycle.id, person.id)
    if sa is not None and sa.status == SelfAssessmentStatus.SUBMITTED:
        scores = [v.get("score") for v in dict(sa.answers.get("goals") or {}).values() if isinstance(v, dict)]
        nums = [float(s) for s in scores if isinstance(s, int)]
        facts.append((t("grades.fact_self"), f"{sum(nums) / len(nums):.1f} / 5" if nums else "—"))
    agg = await fq.aggregate(
        ctx.session,
        cycle.id,
        person.id,
        threshold=ctx.settings.feedback.anonymity_threshold,
        with_manager=False,
    )
    if agg.peers:
        peers = " · ".join(f"{t(f'peers.dim.{d}')} {v:.1f}" for d, v in agg.peers.items())
        facts.append((t("grades.fact_peers"), peers))
    else:
        facts.append((t("grades.fact_peers"), t("grades.peers_hidden", n=agg.threshold)))
    means = fq.rating_means(await fq.ratings_received(ctx.session, person.id))
    if means:
        facts.append(
            (
                t("grades.fact_ratings"),
                " · ".join(f"{t(f'ratings.aspect.{a}')} {v:.1f}" for a, v in means.items()),
            )
        )
    return facts


async def _proposal_card(
    ctx: Context,
    cycle: Cycle,
    person: Person,
    *,
    error: str | None = None,
    grade: str | None = None,
    reason: str | None = None,
) -> Card:
    current = await gq.grade_for(ctx.session, cycle.id, person.id)
    return gc.proposal_card(
        ctx.t,
        cycle_id=cycle.id,
        cycle_code=cycle.code,
        person_id=person.id,
        person_name=person.name,
        facts=await _facts(ctx, cycle, person),
        scale=ctx.settings.feedback.grade_scale,
        current=current.grade if current else None,
        error=error,
        grade=grade,
        reason=reason,
    )


async def mentioned_person(ctx: Context, args: str, *, usage: str) -> Person:
    """The one active person a command's ``@张三`` names (``/grade``, ``/gradefix``); ``usage`` is the
    refusal when nobody is named at all."""
    mention = args.strip()
    if not mention:
        raise ctx.refuse(usage)
    matches = await find_by_mention(ctx.session, ctx.workspace.id, mention)
    if len(matches) != 1:
        raise ctx.refuse("grades.no_such_person", name=mention)
    return matches[0]


@router.command("grade", "评级")
async def grade_command(ctx: Context, args: str) -> Reply:
    person = await mentioned_person(ctx, args, usage="grades.usage")
    if not await _may_grade(ctx, person):
        raise ctx.refuse("grades.not_allowed", name=person.name)
    found = await cq.current_participation(ctx.session, person.id, ANSWERABLE_CYCLE)
    if found is None:
        raise ctx.refuse("grades.no_cycle", name=person.name)
    _require_goals(ctx, found[0], person, found[1])
    return Reply(card=await _proposal_card(ctx, found[0], person))


async def _load(ctx: Context, payload: gc.GradePropose) -> tuple[Cycle, Person, CycleParticipant]:
    cycle = await ctx.session.get(Cycle, payload.cycle_id)
    person = await ctx.session.get(Person, payload.person_id)
    if cycle is None or person is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    if not await _may_grade(ctx, person):
        raise ctx.refuse("grades.not_allowed", name=person.name)
    if cycle.status not in ANSWERABLE_CYCLE:
        raise ctx.refuse("grades.cycle_over", code=cycle.code)
    mine = await cq.participant(ctx.session, cycle.id, person.id)
    if mine is None:
        raise ctx.refuse("grades.no_cycle", name=person.name)
    _require_goals(ctx, cycle, person, mine)
    return cycle, person, mine


async def build_form(ctx: Context, payload: gc.GradePropose) -> Form:
    cycle, person, _ = await _load(ctx, payload)
    return (await _proposal_card(ctx, cycle, person)).forms()[0]


@router.action(gc.GradePropose, form=build_form)
async def propose(ctx: Context, payload: gc.GradePropose) -> Reply:
    """Save a proposal. A form sent back (missing grade or reason, or a vague reason) keeps every value."""
    cycle, person, mine = await _load(ctx, payload)
    form = form_of(ctx)
    grade = text(form, "grade", 8)
    reason = text(form, "reason", 1000)
    row = await gq.grade_for(ctx.session, cycle.id, person.id)
    if row is not None and row.status == GradeStatus.RELEASED:
        raise ctx.refuse("grades.locked", name=person.name)
    if row is not None and row.status == GradeStatus.LOCKED and not is_hr_admin(ctx.person):
        raise ctx.refuse("grades.locked_for_review", name=person.name)
    if grade not in ctx.settings.feedback.grade_scale or not reason:
        error = ctx.t("grades.err_form")
        card = await _proposal_card(ctx, cycle, person, error=error, grade=grade, reason=reason)
        return Reply(toast=error, toast_kind="error", card=card)
    if await must_bounce(ctx, reason, entity="grade_reason", entity_id=mine.id):
        warning = ctx.t("vague.bounce", text=reason[:200])
        card = await _proposal_card(ctx, cycle, person, error=warning, grade=grade, reason=reason)
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    if row is None:
        row = Grade(
            cycle_id=cycle.id,
            person_id=person.id,
            department_id=person.department_id,
            grade=grade,
            reason=reason,
            status=GradeStatus.PROPOSED,
            proposed_by_id=ctx.person.id,
            proposed_at=ctx.now,
        )
        try:
            async with ctx.session.begin_nested():
                ctx.session.add(row)
                await ctx.session.flush()
        except IntegrityError:
            raise ctx.refuse("common.already_done") from None
        ctx.audit("grade.proposed", "grade", row.id, person_id=person.id, to=grade, why=reason)
    else:
        before = row.grade
        row.grade, row.reason, row.proposed_by_id, row.proposed_at = grade, reason, ctx.person.id, ctx.now
        row.department_id = person.department_id
        ctx.audit(
            "grade.changed", "grade", row.id, person_id=person.id, **{"from": before}, to=grade, why=reason
        )
    await ctx.session.flush()
    if person.department_id is not None:
        await calibrate(ctx, cycle, person.department_id)
    card = await _proposal_card(ctx, cycle, person)
    return Reply(toast=ctx.t("grades.saved", name=person.name, grade=grade), card=card.disabled())


async def department_check(
    ctx: Context, cycle: Cycle, department_id: int
) -> tuple[bool, dict[str, int], list[Deviation]]:
    """(complete, counts, deviations) of one department in one cycle."""
    participants = await cq.participant_ids(ctx.session, cycle.id)
    members = set(
        await ctx.session.scalars(
            select(Person.id).where(
                Person.department_id == department_id, Person.active.is_(True), Person.id.in_(participants)
            )
        )
    )
    grades = [g for g in await gq.cycle_grades(ctx.session, cycle.id) if g.department_id == department_id]
    counts: dict[str, int] = {}
    for g in grades:
        counts[g.grade] = counts.get(g.grade, 0) + 1
    complete = bool(grades) and members <= {g.person_id for g in grades}
    fb = ctx.settings.feedback
    devs = gq.deviations(
        gq.shares(g.grade for g in grades),
        await gq.department_history(ctx.session, department_id, before_cycle=cycle),
        scale=fb.grade_scale,
        sigma=fb.calibration_sigma,
        min_history=fb.calibration_min_history,
        band=fb.calibration_band,
    )
    return complete, counts, devs if grades else []


async def calibrate(ctx: Context, cycle: Cycle, department_id: int) -> int:
    """Alert HR and the department head about new deviations once the department is complete; returns
    the number of new deviations alerted."""
    complete, _, devs = await department_check(ctx, cycle, department_id)
    if not complete or not devs:
        return 0
    fresh = []
    for d in devs:
        key = f"{department_id}:{d.grade}:{d.direction}"
        if not await done_before(
            ctx.session, action="grades.alert", entity="cycle", entity_id=cycle.id, key=key
        ):
            fresh.append(d)
            ctx.audit("grades.alert", "cycle", cycle.id, key=key, share=round(d.share, 4), rule=d.rule)
    if not fresh:
        return 0
    dept = await ctx.session.get(Department, department_id)
    assert dept is not None
    held = [
        g.id
        for g in await gq.department_grades(ctx.session, cycle.id, department_id)
        if g.status == GradeStatus.PROPOSED
    ]
    if held:
        await ctx.session.execute(
            update(Grade)
            .where(Grade.id.in_(held), Grade.status == GradeStatus.PROPOSED)
            .values(status=GradeStatus.LOCKED)
            .execution_options(synchronize_session="fetch")
        )
    ctx.audit(
        "grades.locked",
        "cycle",
        cycle.id,
        department_id=department_id,
        grade_ids=held,
        keys=sorted(f"{department_id}:{d.grade}:{d.direction}" for d in fresh),
    )
    now_held = await gq.department_grades(ctx.session, cycle.id, department_id)
    locked = sum(1 for g in now_held if g.status == GradeStatus.LOCKED)
    recipients = await _hr_admins(ctx, cycle.workspace_id)
    review = gc.GradesReview(cycle_id=cycle.id, department_id=department_id)
    await ctx.outbox.broadcast(
        recipients,
        lambda t: gc.alert_card(
            t, cycle_code=cycle.code, department=dept.name, deviations=fresh, locked=locked, review=review
        ),
        card_key=_lock_key(cycle.id, department_id),
    )
    head = await ctx.session.get(Person, dept.head_id) if dept.head_id is not None else None
    if head is not None and head.active and head not in recipients:
        ctx.outbox.send(
            head,
            gc.alert_card(
                ctx.translator(head),
                cycle_code=cycle.code,
                department=dept.name,
                deviations=fresh,
                locked=locked,
            ),
        )
    return len(fresh)


def _lock_key(cycle_id: int, department_id: int) -> str:
    return f"grades:lock:{cycle_id}:{department_id}"


async def _hr_admins(ctx: Context, workspace_id: int) -> list[Person]:
    people = await ctx.session.scalars(
        select(Person).where(Person.workspace_id == workspace_id, Person.active.is_(True)).order_by(Person.id)
    )
    return [p for p in people if p.has_role("hr_admin")]


@router.action(gc.GradesReview)
async def review(ctx: Context, payload: gc.GradesReview) -> Reply:
    """HR has looked at a locked department: its grades are unlocked (they may be changed and released
    again) and the department's warnings count as read by this HR admin."""
    cycle = await _hr_cycle(ctx, payload.cycle_id)
    dept = await ctx.session.get(Department, payload.department_id)
    if dept is None or dept.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    held = [
        g.id
        for g in await gq.department_grades(ctx.session, cycle.id, dept.id)
        if g.status == GradeStatus.LOCKED
    ]
    if not held:
        raise ctx.refuse("grades.nothing_locked", department=dept.name, cycle=cycle.code)
    result = await ctx.session.execute(
        update(Grade)
        .where(Grade.id.in_(held), Grade.status == GradeStatus.LOCKED)
        .values(status=GradeStatus.PROPOSED)
        .execution_options(synchronize_session="fetch")
    )
    if getattr(result, "rowcount", 0) != len(held):
        raise ctx.refuse("common.already_done")
    _, _, devs = await department_check(ctx, cycle, dept.id)
    keys = sorted(f"{dept.id}:{d.grade}:{d.direction}" for d in devs)
    ctx.audit("grades.reviewed", "cycle", cycle.id, department_id=dept.id, grade_ids=held, keys=keys)
    ctx.audit("grades.alert_seen", "cycle", cycle.id, keys=keys)

    def final(t: Translator) -> Card:
        card = gc.alert_card(
            t, cycle_code=cycle.code, department=dept.name, deviations=devs, locked=len(held)
        )
        what = t("grades.did_review", n=len(held))
        return with_outcome(card, done_by(t, name=ctx.person.name, what=what, at=ctx.now, tz=ctx.zone()))

    for other in await _hr_admins(ctx, cycle.workspace_id):
        if other.id != ctx.person.id:
            await ctx.outbox.supersede(other, _lock_key(cycle.id, dept.id), final(ctx.translator(other)))
    toast = ctx.t("grades.reviewed_toast", n=len(held), department=dept.name)
    return Reply(toast=toast, card=final(ctx.t))


async def _departments(ctx: Context, cycle: Cycle) -> tuple[list[gc.DepartmentRow], set[str]]:
    """Each graded department's counts and live deviations, and the deviations' keys
    (``department:grade:direction``, the same key the alert is recorded under)."""
    dept_ids = sorted(
        {g.department_id for g in await gq.cycle_grades(ctx.session, cycle.id) if g.department_id}
    )
    out = []
    keys: set[str] = set()
    for dept_id in dept_ids:
        dept = await ctx.session.get(Department, dept_id)
        _, counts, devs = await department_check(ctx, cycle, dept_id)
        out.append(gc.DepartmentRow(name=dept.name if dept else str(dept_id), counts=counts, deviations=devs))
        keys.update(f"{dept_id}:{d.grade}:{d.direction}" for d in devs)
    return out, keys


async def _progress(ctx: Context, cycle: Cycle) -> gc.Progress:
    grades = await gq.cycle_grades(ctx.session, cycle.id)
    released = sum(1 for g in grades if g.status == GradeStatus.RELEASED)
    locked = sum(1 for g in grades if g.status == GradeStatus.LOCKED)
    return gc.Progress(
        participants=await gq.participant_count(ctx.session, cycle.id),
        proposed=len(grades) - released - locked,
        released=released,
        locked=locked,
    )


def _nothing_to_release(ctx: Context, cycle: Cycle, progress: gc.Progress) -> Refused:
    if progress.locked:
        return ctx.refuse("grades.all_locked", cycle=cycle.code, n=progress.locked)
    return ctx.refuse(
        "grades.nothing_to_release",
        cycle=cycle.code,
        released=progress.released,
        ungraded=progress.ungraded,
    )


async def _cycle_arg(ctx: Context, args: str) -> Cycle:
    """The named cycle, else the active one, else the latest with grades; a refusal names what exists."""
    code = args.strip()
    if code:
        cycle = await cq.cycle_by_code(ctx.session, ctx.workspace.id, code) or await cq.cycle_by_code(
            ctx.session, ctx.workspace.id, canonical_code(code)
        )
    else:
        cycle = await cq.latest_active_cycle(
            ctx.session, ctx.workspace.id, ANSWERABLE_CYCLE
        ) or await gq.latest_cycle_with_grades(ctx.session, ctx.workspace.id)
    if cycle is not None:
        return cycle
    known = [c.code for c in await cq.active_cycles(ctx.session, ctx.workspace.id)]
    known += [
        c.code for c in await gq.cycles_with_grades(ctx.session, ctx.workspace.id) if c.code not in known
    ]
    if not known:
        raise ctx.refuse("grades.no_cycle_at_all")
    raise ctx.refuse("grades.no_grades", code=code[:40], codes=ctx.t("grades.list_sep").join(known[:10]))


@router.command("grades", "评级分布")
async def grades_command(ctx: Context, args: str) -> Reply:
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("grades.only_hr")
    cycle = await _cycle_arg(ctx, args)
    rows, _ = await _departments(ctx, cycle)
    card = gc.distribution_card(
        ctx.t,
        cycle_id=cycle.id,
        cycle_code=cycle.code,
        scale=ctx.settings.feedback.grade_scale,
        rows=rows,
        progress=await _progress(ctx, cycle),
    )
    return Reply(card=card)


async def _hr_cycle(ctx: Context, cycle_id: int) -> Cycle:
    if not is_hr_admin(ctx.person):
        raise ctx.refuse("grades.only_hr")
    cycle = await ctx.session.get(Cycle, cycle_id)
    if cycle is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    return cycle


async def _confirmation(ctx: Context, cycle: Cycle, *, toast: str, kind: str = "warning") -> Reply:
    """Show (again) the release confirmation, and remember what it said: a release confirmed on it goes
    ahead only while the numbers are the same."""
    rows, keys = await _departments(ctx, cycle)
    progress = await _progress(ctx, cycle)
    if not progress.proposed:
        raise _nothing_to_release(ctx, cycle, progress)
    unseen = keys - await gq.seen_alert_keys(ctx.session, cycle.id, ctx.person.id)
    ctx.audit(
        "grades.release_previewed",
        "cycle",
        cycle.id,
        pending=progress.proposed,
        ungraded=progress.ungraded,
        warnings=sorted(keys),
    )
    card = gc.release_card(
        ctx.t,
        cycle_id=cycle.id,
        cycle_code=cycle.code,
        scale=ctx.settings.feedback.grade_scale,
        rows=rows,
        progress=progress,
        unseen_warnings=bool(unseen),
    )
    return Reply(toast=toast[:200], toast_kind=kind, card=card)


@router.action(gc.GradesRelease)
async def release(ctx: Context, payload: gc.GradesRelease) -> Reply:
    cycle = await _hr_cycle(ctx, payload.cycle_id)
    rows, keys = await _departments(ctx, cycle)
    progress = await _progress(ctx, cycle)
    if not progress.proposed:
        raise _nothing_to_release(ctx, cycle, progress)
    if not payload.confirm:
        toast = ctx.t("grades.confirm_needed", n=progress.proposed, ungraded=progress.ungraded)
        return await _confirmation(ctx, cycle, toast=toast)
    if keys - await gq.seen_alert_keys(ctx.session, cycle.id, ctx.person.id):
        return await _confirmation(ctx, cycle, toast=ctx.t("grades.see_alert_needed"))
    shown = await gq.last_release_preview(ctx.session, cycle.id, ctx.person.id)
    if shown is None or (shown.get("pending"), shown.get("ungraded")) != (
        progress.proposed,
        progress.ungraded,
    ):
        toast = ctx.t("grades.changed_since", n=progress.proposed, ungraded=progress.ungraded)
        return await _confirmation(ctx, cycle, toast=toast)
    pending = [g for g in await gq.cycle_grades(ctx.session, cycle.id) if g.status == GradeStatus.PROPOSED]
    result = await ctx.session.execute(
        update(Grade)
        .where(
            Grade.cycle_id == cycle.id,
            Grade.status == GradeStatus.PROPOSED,
            Grade.id.in_([g.id for g in pending]),
        )
        .values(status=GradeStatus.RELEASED, released_by_id=ctx.person.id, released_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != len(pending):
        raise ctx.refuse("common.already_done")
    for g in pending:
        person = await ctx.session.get(Person, g.person_id)
        if person is None:
            continue
        closes = last_day(ctx, ctx.now, person).isoformat()
        ctx.outbox.send(
            person,
            gc.released_card(
                ctx.translator(person), cycle_code=cycle.code, grade=g.grade, grade_id=g.id, closes=closes
            ),
            dedupe_key=f"grade:{g.id}:released",
        )
    ctx.audit(
        "grades.released",
        "cycle",
        cycle.id,
        count=len(pending),
        ungraded=progress.ungraded,
        override=bool(keys),
        deviations=sum(len(r.deviations) for r in rows),
    )
    after = gc.Progress(
        participants=progress.participants,
        proposed=0,
        released=progress.released + len(pending),
        locked=progress.locked,
    )
    card = gc.released_summary_card(
        ctx.t, cycle_code=cycle.code, scale=ctx.settings.feedback.grade_scale, rows=rows, progress=after
    )
    note = done_by(
        ctx.t,
        name=ctx.person.name,
        what=ctx.t("grades.did_release", n=len(pending)),
        at=ctx.now,
        tz=ctx.zone(),
    )
    return Reply(toast=ctx.t("grades.released_toast", n=len(pending)), card=with_outcome(card, note))


@router.action(gc.GradesAlertSeen)
async def alert_seen(ctx: Context, payload: gc.GradesAlertSeen) -> Reply:
    """Marks the calibration warnings shown right now as read by this HR admin, then shows the
    confirmation again, now with the release button."""
    cycle = await _hr_cycle(ctx, payload.cycle_id)
    _, keys = await _departments(ctx, cycle)
    ctx.audit("grades.alert_seen", "cycle", cycle.id, keys=sorted(keys))
    await ctx.session.flush()
    return await _confirmation(ctx, cycle, toast=ctx.t("grades.alert_seen_toast"), kind="success")


@router.action(gc.GradesUngraded)
async def ungraded_list(ctx: Context, payload: gc.GradesUngraded) -> Reply:
    """Who has no grade yet, as a separate card: the confirmation the button sits on stays as it is."""
    cycle = await _hr_cycle(ctx, payload.cycle_id)
    missing = await gq.ungraded(ctx.session, cycle.id)
    if not missing:
        return Reply(toast=ctx.t("grades.all_graded"), toast_kind="info")
    people = [gc.Ungraded(name, dept, manager) for name, dept, manager in missing]
    ctx.outbox.send(
        ctx.person, gc.ungraded_card(ctx.t, cycle_code=cycle.code, people=people, total=len(people))
    )
    return Reply(toast=ctx.t("grades.ungraded_sent", n=len(people)), toast_kind="info")
