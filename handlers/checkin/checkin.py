"""The biweekly check-in: progress per goal, obstacles, support needed → the manager acknowledges or asks
for a 1:1 (with an optional comment, vague-word guarded) → the employee is told.

Lifecycle of ``checkins.status``: open → submitted → acknowledged | followup, or open → missed (scheduler).
The employee may edit (card or chat) while it is open or submitted and unanswered; every transition is a
compare-and-set, so a double tap, a late retry or two approvers at once change it only once.

A plain chat message while a check-in is answerable is kept as the newest such check-in's progress note (the
person's own words, never filed under obstacles); an open check-in is then completed question by question in
chat, so people can answer the way they talk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.core import chatforms
from bot.core.context import Context, Reply
from bot.core.events import CardAction
from bot.core.forms import FormData, form_of, text
from bot.core.numbers import parse_number
from bot.core.people import approver_to_notify, require_approver, require_self
from bot.core.router import Router
from bot.core.schedule import CheckinArgs, Entry, Job, PeriodArgs, ScheduleEntry
from bot.core.status import ANSWERABLE_CHECKIN, CheckInStatus, KrValueSource
from bot.core.vague import must_bounce
from cards import checkin as cc
from cards.actions import pack
from cards.catalogue import Translator
from cards.engagement import social_proof_line, streak_line
from cards.flow_actions import CheckinAck, CheckinAnswer, CheckinEdit, CheckinFollowup, CheckinSubmit
from cards.flow_common import done_by, with_outcome
from cards.kr_values import NUMBER, number_text, parse_state, percent
from cards.model import Card, Form
from handlers.action_items.api import check_progress_gap, open_action_item
from handlers.goals.api import FINAL_CYCLE, ValueRefused, facts_of, record_value, source_readings
from storage.models import CheckIn, Cycle, Goal, Person
from storage.queries import checkins as chq
from storage.queries import cycles as cq
from storage.queries import engagement as eq
from storage.queries import kr_values as kv
from storage.queries.status import transition

router = Router()

DECISIONS = (CheckInStatus.ACKNOWLEDGED, CheckInStatus.FOLLOWUP)


FOLLOWUP_DAYS = 3


def employee_key(checkin_id: int) -> str:
    return f"checkin:{checkin_id}"


def manager_key(checkin_id: int) -> str:
    return f"checkin-mgr:{checkin_id}"


async def goal_lines(ctx: Context, checkin: CheckIn) -> list[cc.GoalLine]:
    """The person's goals in the check-in's cycle, each with its key results: where each stood before this
    check-in and what the check-in answered. A closed cycle's key results are final: its goals are asked for
    a percentage, as goals without key results are."""
    if checkin.cycle_id is None:
        return []
    goals = await cq.goals_of(ctx.session, checkin.cycle_id, checkin.person_id)
    cycle = await ctx.session.get(Cycle, checkin.cycle_id)
    final = cycle is None or cycle.status in FINAL_CYCLE
    krs = {} if final else await kv.key_results_of(ctx.session, [g.id for g in goals])
    mine = [kr for g in goals for kr in krs.get(g.id, [])]
    readings = await source_readings(ctx.session, mine, KrValueSource.CHECKIN, checkin.id) if mine else {}
    return [
        cc.GoalLine(
            key=str(g.id),
            title=g.objective,
            krs=tuple(cc.KrLine(facts_of(kr), *readings[kr.id]) for kr in krs.get(g.id, [])),
        )
        for g in goals
    ]


def _lines_or_overall(ctx: Context, lines: list[cc.GoalLine]) -> list[cc.GoalLine]:
    return lines[: cc.MAX_GOALS_ON_CARD] or [cc.GoalLine(key=cc.OVERALL, title=ctx.t("checkin.overall"))]


def _card(
    ctx: Context,
    checkin: CheckIn,
    lines: list[cc.GoalLine],
    *,
    reminder: bool = False,
    error: str | None = None,
    progress: dict[str, object] | None = None,
    obstacles: str | None = None,
    support: str | None = None,
    social_proof: str | None = None,
    answers: dict[str, str] | None = None,
) -> Card:
    return cc.checkin_card(
        ctx.t,
        checkin_id=checkin.id,
        period=checkin.period,
        goals=lines,
        progress=progress if progress is not None else checkin.progress,
        obstacles=obstacles if error else checkin.obstacles,
        support=support if error else checkin.support,
        reminder=reminder,
        error=error,
        social_proof=social_proof,
        answers=answers,
    )


# ------------------------------------------------------------------ contract functions (scheduler)


async def open_checkin(ctx: Context, *, period: str, due_at: datetime) -> CheckIn | None:
    """Create this person's check-in for ``period`` and send the card; None if it already existed."""
    if await chq.checkin_for_period(ctx.session, ctx.person.id, period) is not None:
        return None
    found = await cq.current_participation(ctx.session, ctx.person.id)
    checkin = CheckIn(
        person_id=ctx.person.id,
        cycle_id=found[0].id if found else None,
        period=period,
        status=CheckInStatus.OPEN,
        due_at=due_at,
        progress={},
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(checkin)
            await ctx.session.flush()
    except IntegrityError:  # another replica or a double fire created it first
        return None
    lines = await goal_lines(ctx, checkin)
    ctx.outbox.send(
        ctx.person,
        _card(ctx, checkin, lines),
        card_key=employee_key(checkin.id),
        dedupe_key=f"checkin:{checkin.id}:open",
    )
    ctx.audit("checkin.opened", "checkin", checkin.id, period=period)
    return checkin


async def remind_checkin(ctx: Context, checkin_id: int) -> bool:
    """The one reminder, only while the check-in is still open; True if it was sent now."""
    checkin = await ctx.session.get(CheckIn, checkin_id)
    if checkin is None or checkin.person_id != ctx.person.id:
        return False
    updated = await transition(
        ctx.session,
        CheckIn,
        checkin_id,
        allowed=[CheckInStatus.OPEN],
        values={"reminded_at": ctx.now},
        extra=[CheckIn.reminded_at.is_(None)],
    )
    if updated is None:
        return False
    lines = await goal_lines(ctx, updated)
    proof = social_proof_line(ctx.t, *await eq.social_proof(ctx.session, ctx.person, updated.period))
    ctx.outbox.send(
        ctx.person,
        _card(ctx, updated, lines, reminder=True, social_proof=proof),
        card_key=employee_key(checkin_id),
        dedupe_key=f"checkin:{checkin_id}:reminder",
    )
    ctx.audit("checkin.reminded", "checkin", checkin_id)
    return True


async def close_missed_checkin(ctx: Context, checkin_id: int) -> bool:
    """open → missed once the answer window has passed; the employee's card says so."""
    checkin = await ctx.session.get(CheckIn, checkin_id)
    if checkin is None or checkin.person_id != ctx.person.id:
        return False
    updated = await transition(
        ctx.session,
        CheckIn,
        checkin_id,
        allowed=[CheckInStatus.OPEN],
        values={"status": CheckInStatus.MISSED},
    )
    if updated is None:
        return False
    ctx.outbox.update(
        ctx.person, cc.missed_card(ctx.t, period=updated.period), card_key=employee_key(checkin_id)
    )
    ctx.audit("checkin.missed", "checkin", checkin_id)
    return True


# ------------------------------------------------------------------ employee


async def _own_answerable(ctx: Context, checkin_id: int) -> CheckIn:
    checkin = await ctx.session.get(CheckIn, checkin_id)
    if checkin is None:
        raise ctx.refuse("common.invalid_action")
    require_self(ctx, checkin.person_id)
    if checkin.answered_at is not None or checkin.status in DECISIONS:
        raise ctx.refuse("checkin.already_answered")
    if checkin.status not in ANSWERABLE_CHECKIN:
        raise ctx.refuse("checkin.closed", period=checkin.period)
    return checkin


async def build_checkin_form(ctx: Context, payload: CheckinSubmit) -> Form:
    """The check-in form rebuilt server-side, for platforms that collect it question by question in chat."""
    checkin = await _own_answerable(ctx, payload.checkin_id)
    return _card(ctx, checkin, _lines_or_overall(ctx, await goal_lines(ctx, checkin))).forms()[0]


@dataclass(frozen=True)
class KrAnswer:
    """One key result's answer, as ``record_value`` takes it."""

    kr: cc.KrLine
    value: float | None = None
    done: bool | None = None
    milestones_done: int | None = None


@dataclass
class Answers:
    progress: dict[str, object] = field(default_factory=dict)
    """Percentages of goals without key results (and what was typed for them), by goal id."""
    typed: dict[str, str] = field(default_factory=dict)
    """Key result values as typed, by input name: a card sent back keeps every one of them."""
    values: list[KrAnswer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _example(kr: cc.KrLine) -> str:
    for reading in (kr.own, kr.before):
        if reading is not None and reading.value is not None:
            return number_text(reading.value)
    return number_text(kr.facts.target) if kr.facts.target is not None else "38"


def parse_answers(ctx: Context, form: FormData, lines: list[cc.GoalLine]) -> Answers:
    """Every value the card asked for: a goal's percentage (required), a key result's number or done /
    not-yet choice (empty = unchanged). An answer that is not one is named in ``errors``."""
    out = Answers()
    asked, _ = cc.questions(lines)
    for q in asked:
        if q.kr is None:
            raw = text(form, q.name).rstrip("%％").strip()
            if raw.isdigit() and 0 <= int(raw) <= 100:
                out.progress[q.line.key] = int(raw)
            else:
                if raw:
                    out.progress[q.line.key] = raw
                out.errors.append(ctx.t("checkin.err_progress", goal=q.line.title[:40]))
            continue
        raw = text(form, q.name, 40)
        if not raw:
            continue
        out.typed[q.name] = raw
        facts = q.kr.facts
        if facts.kind == NUMBER:
            number = parse_number(raw, facts.unit)
            if number is None:
                out.errors.append(
                    ctx.t(
                        "checkin.err_kr_number", kr=facts.title[:40], typed=raw[:20], example=_example(q.kr)
                    )
                )
            else:
                out.values.append(KrAnswer(q.kr, value=number))
            continue
        state = parse_state(facts, raw)
        if state is None:
            out.errors.append(ctx.t("checkin.err_kr_state", kr=facts.title[:40]))
        else:
            out.values.append(KrAnswer(q.kr, done=state[0], milestones_done=state[1]))
    return out


async def _record_values(ctx: Context, checkin: CheckIn, answers: Answers, lines: list[cc.GoalLine]) -> None:
    """Each answered key result through the goals flow (a resubmission replaces this check-in's own values),
    then every goal with key results gets its computed percentage in ``CheckIn.progress``, where the digest,
    insights, snapshot and exports read it."""
    for answer in answers.values:
        try:
            await record_value(
                ctx.session,
                answer.kr.facts.id,
                value=answer.value,
                done=answer.done,
                milestones_done=answer.milestones_done,
                source=KrValueSource.CHECKIN,
                source_id=checkin.id,
                by_person_id=ctx.person.id,
                at=ctx.now,
            )
        except ValueRefused as refused:
            raise ctx.refuse(f"kr_values.refused_{refused.reason}") from None
    for line in lines:
        if line.krs:
            goal = await ctx.session.get(Goal, int(line.key))
            if goal is not None:
                answers.progress[line.key] = percent(goal.own_progress)


async def _after_submit(ctx: Context, checkin: CheckIn, lines: list[cc.GoalLine], *, first: bool) -> Card:
    """Send (first time) or update (edit) the approver's summary; return the employee's submitted card."""
    approver = await approver_to_notify(ctx.session, ctx.person, ctx.today())
    if approver is not None:
        card = _manager_card(ctx.translator(approver), checkin, ctx.person, lines, edited=not first)
        if first:
            ctx.outbox.send(approver, card, card_key=manager_key(checkin.id))
        else:
            ctx.outbox.update(approver, card, card_key=manager_key(checkin.id))
    ctx.audit("checkin.submitted" if first else "checkin.edited", "checkin", checkin.id)
    note = ctx.t(
        "checkin.submitted_note",
        time=done_by(
            ctx.t, name=ctx.person.name, what=ctx.t("checkin.did_submit"), at=ctx.now, tz=ctx.zone()
        ),
    )
    if first:
        await check_progress_gap(ctx, checkin.id)
    streak = streak_line(ctx.t, await eq.streak_for(ctx.session, ctx.person.id))
    if streak:
        note = f"{note}\n{streak}"
    return cc.submitted_card(
        ctx.t,
        checkin_id=checkin.id,
        period=checkin.period,
        goals=lines,
        progress=checkin.progress,
        obstacles=checkin.obstacles,
        support=checkin.support,
        note=note,
    )


def _manager_card(
    t: Translator,
    checkin: CheckIn,
    employee: Person,
    lines: list[cc.GoalLine],
    *,
    decision: str = CheckInStatus.ACKNOWLEDGED,
    comment: str | None = None,
    warning: str | None = None,
    edited: bool = False,
) -> Card:
    return cc.manager_card(
        t,
        checkin_id=checkin.id,
        employee_name=employee.name,
        period=checkin.period,
        goals=lines,
        progress=checkin.progress,
        obstacles=checkin.obstacles,
        support=checkin.support,
        decision_default=decision,
        comment_default=comment,
        warning=warning,
        edited=edited,
    )


def _note(form: FormData, checkin: CheckIn) -> str | None:
    """The progress note as the form sent it; a form without the field (answers collected in chat where
    it was skipped, a card sent before the field existed) leaves the note already kept."""
    if cc.NOTE in form:
        return text(form, cc.NOTE) or None
    kept = checkin.progress.get(cc.NOTE)
    return kept if isinstance(kept, str) and kept else None


def _from_the_card(ctx: Context) -> bool:
    """True when the person pressed submit on the check-in card itself (the dispatcher updates that card);
    False for answers collected in chat after a typed message, where no card was clicked."""
    return isinstance(ctx.event, CardAction) and bool(ctx.event.message_ref)


@router.action(CheckinSubmit, form=build_checkin_form)
async def submit_checkin(ctx: Context, payload: CheckinSubmit) -> Reply:
    checkin = await _own_answerable(ctx, payload.checkin_id)
    lines = _lines_or_overall(ctx, await goal_lines(ctx, checkin))
    form = form_of(ctx)
    answers = parse_answers(ctx, form, lines)
    progress = answers.progress
    note = _note(form, checkin)
    obstacles = text(form, "obstacles") or None
    support = text(form, "support") or None
    if answers.errors:
        if note:
            progress[cc.NOTE] = note
        error = "\n".join(answers.errors)
        return Reply(
            toast=answers.errors[0],
            toast_kind="error",
            card=_card(
                ctx,
                checkin,
                lines,
                error=error,
                progress=progress,
                obstacles=obstacles,
                support=support,
                answers=answers.typed,
            ),
        )
    await _record_values(ctx, checkin, answers, lines)
    if note:
        progress[cc.NOTE] = note
    first = checkin.status == CheckInStatus.OPEN
    updated = await transition(
        ctx.session,
        CheckIn,
        checkin.id,
        allowed=ANSWERABLE_CHECKIN,
        extra=[CheckIn.answered_at.is_(None)],
        values={
            "status": CheckInStatus.SUBMITTED,
            "progress": progress,
            "obstacles": obstacles,
            "support": support,
            "submitted_at": ctx.now,
        },
    )
    if updated is None:
        raise ctx.refuse("checkin.already_answered")
    await chatforms.drop(ctx, pack(payload))
    lines = _lines_or_overall(ctx, await goal_lines(ctx, updated))  # now with this check-in's answers
    card = await _after_submit(ctx, updated, lines, first=first)
    if not _from_the_card(ctx):
        ctx.outbox.update(ctx.person, card, card_key=employee_key(updated.id))
    return Reply(toast=ctx.t("checkin.submitted"), card=card)


@router.action(CheckinEdit)
async def edit_checkin(ctx: Context, payload: CheckinEdit) -> Reply:
    checkin = await _own_answerable(ctx, payload.checkin_id)
    lines = _lines_or_overall(ctx, await goal_lines(ctx, checkin))
    return Reply(card=_card(ctx, checkin, lines))


@router.text()
async def checkin_text_reply(ctx: Context, message: str) -> Reply | None:
    """A message typed while a check-in is answerable is the person's progress in their own words: it is kept
    as the check-in's note, never filed as an obstacle or anything else it may not be (issue 15 #3).

    Not submitted yet: the note is saved on the open check-in and the bot asks in chat, one question at a
    time, for what the card still needs; the last answer submits it. Submitted and unanswered: the note
    grows and the manager's card is updated. With none answerable, other handlers may try."""
    checkin = await chq.latest_answerable(ctx.session, ctx.person.id, ANSWERABLE_CHECKIN)
    said = message.strip()
    if checkin is None or not said:
        return None
    kept = checkin.progress.get(cc.NOTE)
    note = (f"{kept}\n{said}" if isinstance(kept, str) and kept else said)[-2000:]
    updated = await transition(
        ctx.session,
        CheckIn,
        checkin.id,
        allowed=[checkin.status],
        extra=[CheckIn.answered_at.is_(None)],
        values={"progress": {**checkin.progress, cc.NOTE: note}},
    )
    if updated is None:
        return None
    lines = _lines_or_overall(ctx, await goal_lines(ctx, updated))
    if updated.status == CheckInStatus.SUBMITTED:
        card = await _after_submit(ctx, updated, lines, first=False)
        ctx.outbox.update(ctx.person, card, card_key=employee_key(updated.id))
        return Reply(toast=ctx.t("checkin.text_added", period=updated.period))
    ctx.audit("checkin.note_kept", "checkin", updated.id)
    prompt = _card(ctx, updated, lines)
    ctx.outbox.update(ctx.person, prompt, card_key=employee_key(updated.id))
    question = await chatforms.ask(
        ctx,
        value=pack(CheckinSubmit(checkin_id=updated.id)),
        form=prompt.forms()[0],
        answers={cc.NOTE: note},
        intro=ctx.t("checkin.text_kept_ask", period=updated.period),
    )
    return Reply(card=question) if question is not None else None


# ------------------------------------------------------------------ manager


async def _answer(ctx: Context, checkin_id: int, decision: str, comment: str | None) -> Reply:
    checkin = await ctx.session.get(CheckIn, checkin_id)
    if checkin is None:
        raise ctx.refuse("common.invalid_action")
    employee = await ctx.session.get(Person, checkin.person_id)
    assert employee is not None
    await require_approver(ctx, employee)
    if checkin.status == CheckInStatus.OPEN:
        raise ctx.refuse("checkin.not_submitted", name=employee.name)
    if checkin.status != CheckInStatus.SUBMITTED or checkin.answered_at is not None:
        raise ctx.refuse("common.already_done")
    if decision not in DECISIONS:
        raise ctx.refuse("common.invalid_action")
    lines = _lines_or_overall(ctx, await goal_lines(ctx, checkin))
    if await must_bounce(ctx, comment, entity="checkin_comment", entity_id=checkin.id):
        warning = ctx.t("vague.bounce", text=(comment or "")[:200])
        return Reply(
            toast=warning[:200],
            toast_kind="warning",
            card=_manager_card(
                ctx.t, checkin, employee, lines, decision=decision, comment=comment, warning=warning
            ),
        )
    updated = await ctx.transition_or_refuse(
        CheckIn,
        checkin.id,
        allowed=[CheckInStatus.SUBMITTED],
        extra=[CheckIn.answered_at.is_(None)],
        values={
            "status": decision,
            "answered_by_id": ctx.person.id,
            "manager_comment": comment,
            "answered_at": ctx.now,
        },
    )
    ctx.audit(f"checkin.{decision}", "checkin", checkin.id, comment=comment)
    if decision == CheckInStatus.FOLLOWUP:
        await _open_followup_item(ctx, updated, employee, comment)
    et = ctx.translator(employee)
    when = done_by(
        et, name=ctx.person.name, what=et(f"checkin.did_{decision}"), at=ctx.now, tz=ctx.zone(employee)
    )
    ctx.outbox.send(
        employee,
        cc.answered_card(
            et,
            period=updated.period,
            manager_name=ctx.person.name,
            decision=decision,
            comment=comment,
            when=when,
        ),
    )
    ctx.outbox.update(
        employee,
        cc.submitted_card(
            et,
            checkin_id=updated.id,
            period=updated.period,
            goals=lines,
            progress=updated.progress,
            obstacles=updated.obstacles,
            support=updated.support,
            note=when,
            editable=False,
        ),
        card_key=employee_key(updated.id),
    )
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t(f"checkin.did_{decision}"), at=ctx.now, tz=ctx.zone()
    )
    if comment:
        note = f"{note}: {comment}"
    card = _manager_card(ctx.t, updated, employee, lines, decision=decision, comment=comment)
    return Reply(toast=ctx.t(f"checkin.toast_{decision}"), card=with_outcome(card, note))


async def _open_followup_item(ctx: Context, checkin: CheckIn, employee: Person, comment: str | None) -> None:
    """ "Needs follow-up 1:1" is a commitment of the approver's: an action item they own, due in three days,
    which the employee accepts once the conversation has happened."""
    what = ctx.t("checkin.followup_deliverable", name=employee.name, period=checkin.period)
    if comment:
        what = f"{what}: {comment}"
    await open_action_item(
        ctx,
        owner=ctx.person,
        deliverable=what,
        deadline=ctx.today() + timedelta(days=FOLLOWUP_DAYS),
        acceptor=employee,
        source="checkin",
        source_id=checkin.id,
    )


# The two one-tap buttons of reply cards sent before the card had one way to answer (issue 15 #9): they stay
# routed, so a card already in someone's chat still works.
@router.action(CheckinAck)
async def acknowledge(ctx: Context, payload: CheckinAck) -> Reply:
    return await _answer(
        ctx, payload.checkin_id, CheckInStatus.ACKNOWLEDGED, text(form_of(ctx), "comment", 1000) or None
    )


@router.action(CheckinFollowup)
async def follow_up(ctx: Context, payload: CheckinFollowup) -> Reply:
    return await _answer(
        ctx, payload.checkin_id, CheckInStatus.FOLLOWUP, text(form_of(ctx), "comment", 1000) or None
    )


async def build_answer_form(ctx: Context, payload: CheckinAnswer) -> Form:
    checkin = await ctx.session.get(CheckIn, payload.checkin_id)
    employee = await ctx.session.get(Person, checkin.person_id) if checkin is not None else None
    if checkin is None or employee is None:
        raise ctx.refuse("common.invalid_action")
    await require_approver(ctx, employee)
    lines = _lines_or_overall(ctx, await goal_lines(ctx, checkin))
    return _manager_card(ctx.t, checkin, employee, lines).forms()[0]


@router.action(CheckinAnswer, form=build_answer_form)
async def answer_with_comment(ctx: Context, payload: CheckinAnswer) -> Reply:
    form = form_of(ctx)
    return await _answer(
        ctx,
        payload.checkin_id,
        text(form, "decision") or CheckInStatus.ACKNOWLEDGED,
        text(form, "comment", 1000) or None,
    )


# ------------------------------------------------------------------ schedule entries
SCHEDULE: tuple[ScheduleEntry, ...] = (
    Entry(Job.OPEN_CHECKIN, PeriodArgs, lambda ctx, a: open_checkin(ctx, period=a.period, due_at=a.due_at)),
    Entry(Job.REMIND_CHECKIN, CheckinArgs, lambda ctx, a: remind_checkin(ctx, a.checkin_id)),
    Entry(Job.CLOSE_MISSED_CHECKIN, CheckinArgs, lambda ctx, a: close_missed_checkin(ctx, a.checkin_id)),
)
