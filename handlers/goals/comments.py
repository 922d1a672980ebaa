"""Comments and challenges on goals (issue 17 item 4).

- Anyone who may see a goal (``bot.core.people.may_see_goal``: the cycle's visibility; company and
  department objectives are open to the workspace) may comment on it. The comment is stored
  (``GoalComment``, kind ``comment``) and the goal's owner and their line manager are told, one card each,
  held for their quiet hours (``send_polite``); whoever wrote it is not told of their own comment.
- Anyone who may see a goal, other than its owner and those who answer for it, may challenge its target
  (向上质疑): too low (``up``) or too high (``down``), with a reason the vague-word guard asks once to make
  concrete. The challenge reaches the owner's manager (or the delegate while they are away; the HRBP when
  there is no manager) as a card with the goal, the reason and one form: keep the target, saying why, or
  ask the owner to adjust it. Only the owner's approvers may answer (``require_approver``), once: the answer
  is a compare-and-set on the challenge's status, so a second answer (another approver, a retry) is refused
  and changes nothing. The challenger is told the answer; when the owner is asked to adjust, they get a
  card that opens the adjustment form (``handlers.goals.adjust``), even outside the monthly window.
- A goal card's "评论"/"质疑目标" and a notice's "回复" (``GoalCommentOpen``, ``GoalChallengeOpen``; see
  ``cards.goal_comments.goal_buttons``) send the form as a card of its own, so the card clicked stays as it
  is; on WeCom and DingTalk its submit then asks the questions in chat. A submit that arrives without any
  input (an old card's button) is answered the same way.

Every step is audited on entity ``goal_comment`` (``goal.commented``, ``goal.challenged``,
``goal.challenge_answered``), so the person export and an erase find it.
"""

from __future__ import annotations

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.notify import send_polite
from bot.core.people import approver_ids, approver_to_notify, line_manager, may_see_goal, require_approver
from bot.core.router import Router
from bot.core.status import CycleStatus, GoalCommentStatus, GoalLevel
from bot.core.vague import must_bounce
from cards import goal_comments as gc
from cards.catalogue import Translator
from cards.flow_common import done_by, with_outcome
from cards.goal_actions import (
    GoalChallengeAnswer,
    GoalChallengeOpen,
    GoalChallengeSubmit,
    GoalCommentOpen,
    GoalCommentSubmit,
)
from cards.model import Card, Form
from handlers.goals.kr_lines import line_of
from handlers.goals.versions import kr_entry
from storage.models import Cycle, Goal, GoalComment, Person
from storage.queries import goals as gq

router = Router()
COMMENT = "comment"
CHALLENGE = "challenge"


def _answer_key(comment_id: int) -> str:
    """The answerer's card."""
    return f"okr:challenge:{comment_id}"


async def _goal(ctx: Context, goal_id: int) -> tuple[Goal, Cycle, Person]:
    """The goal, its cycle and owner, refused unless the clicker may see it."""
    goal = await ctx.session.get(Goal, goal_id)
    cycle = await ctx.session.get(Cycle, goal.cycle_id) if goal is not None else None
    owner = await ctx.session.get(Person, goal.person_id) if goal is not None else None
    if goal is None or cycle is None or owner is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    if not await may_see_goal(ctx.session, ctx.person, goal, cycle):
        raise ctx.refuse("goal_comments.not_visible", owner=owner.name)
    return goal, cycle, owner


async def kr_texts(ctx: Context, goal: Goal) -> list[str]:
    """The goal's key results with their targets, as the cards quote them."""
    krs = (await gq.key_results_of(ctx.session, [goal.id]))[goal.id]
    if krs:
        return [line_of(kr_entry(kr)) for kr in krs]
    return [goal.key_result] if goal.key_result else []


def _is_button(ctx: Context) -> bool:
    """A click on a button that opens the form, not the form's own submit (which carries its inputs)."""
    return not form_of(ctx)


# ---------------------------------------------------------------- comments


async def _comment_form(
    ctx: Context, goal: Goal, owner: Person, *, error: str | None = None, body: str | None = None
) -> Card:
    return gc.comment_form_card(
        ctx.t,
        goal_id=goal.id,
        owner=owner.name,
        objective=goal.objective,
        krs=await kr_texts(ctx, goal),
        error=error,
        body=body,
    )


async def build_comment_form(ctx: Context, payload: GoalCommentSubmit) -> Form:
    goal, _, owner = await _goal(ctx, payload.goal_id)
    return (await _comment_form(ctx, goal, owner)).forms()[0]


@router.action(GoalCommentOpen)
async def open_comment(ctx: Context, payload: GoalCommentOpen) -> Reply:
    """A goal card's (or a notice's) button: the form as a card of its own; the clicked card stays."""
    goal, _, owner = await _goal(ctx, payload.goal_id)
    ctx.outbox.send(ctx.person, await _comment_form(ctx, goal, owner))
    return Reply(toast=ctx.t("goal_comments.form_sent"), toast_kind="info")


@router.action(GoalCommentSubmit, form=build_comment_form)
async def comment(ctx: Context, payload: GoalCommentSubmit) -> Reply:
    goal, _, owner = await _goal(ctx, payload.goal_id)
    body = text(form_of(ctx), "body", 1000)
    if not body:
        if _is_button(ctx):
            ctx.outbox.send(ctx.person, await _comment_form(ctx, goal, owner))
            return Reply(toast=ctx.t("goal_comments.form_sent"), toast_kind="info")
        error = ctx.t("goal_comments.err_body")
        return Reply(toast=error, toast_kind="error", card=await _comment_form(ctx, goal, owner, error=error))
    row = GoalComment(
        goal_id=goal.id,
        author_id=ctx.person.id,
        kind=COMMENT,
        body=body,
        status=GoalCommentStatus.OPEN,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.audit("goal.commented", "goal_comment", row.id, goal_id=goal.id, person_id=owner.id)
    told = await _tell_owner_and_manager(ctx, row, goal, owner)
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("goal_comments.did_comment"), at=ctx.now, tz=ctx.zone()
    )
    card = with_outcome(await _comment_form(ctx, goal, owner, body=body), note)
    toast = (
        ctx.t("goal_comments.sent", who="、".join(p.name for p in told))
        if told
        else ctx.t("goal_comments.saved")
    )
    return Reply(toast=toast[:200], card=card)


async def _tell_owner_and_manager(ctx: Context, row: GoalComment, goal: Goal, owner: Person) -> list[Person]:
    """One card each to the owner and their line manager (never to the author); returns who was told."""
    told: list[Person] = []
    manager = await line_manager(ctx.session, owner)
    for person, to_owner in ((owner, True), (manager, False)):
        if person is None or not person.active or person.id == ctx.person.id:
            continue
        if any(p.id == person.id for p in told):
            continue
        t = ctx.translator(person)
        card = gc.comment_notice_card(
            t,
            goal_id=goal.id,
            author=ctx.person.name,
            owner=owner.name,
            objective=goal.objective,
            body=row.body,
            to_owner=to_owner,
            at=ctx.local_text(row.created_at, person),
        )
        await send_polite(ctx, person, card, dedupe_key=f"goal_comment:{row.id}:{person.id}")
        told.append(person)
    return told


# ---------------------------------------------------------------- challenges


async def _answerer(ctx: Context, owner: Person) -> Person:
    """Who answers a challenge of ``owner``'s goal; refused when nobody can, or when it is the clicker."""
    if ctx.person.id == owner.id:
        raise ctx.refuse("goal_comments.own_goal")
    answerer = await approver_to_notify(ctx.session, owner, ctx.today(owner))
    if answerer is None:
        raise ctx.refuse("goal_comments.no_answerer", owner=owner.name)
    if ctx.person.id == answerer.id or ctx.person.id in await approver_ids(ctx.session, owner):
        raise ctx.refuse("goal_comments.you_answer", owner=owner.name)
    return answerer


async def _challenge_form(
    ctx: Context,
    goal: Goal,
    owner: Person,
    answerer: Person,
    *,
    error: str | None = None,
    direction: str | None = None,
    reason: str | None = None,
) -> Card:
    return gc.challenge_form_card(
        ctx.t,
        goal_id=goal.id,
        owner=owner.name,
        objective=goal.objective,
        krs=await kr_texts(ctx, goal),
        answerer=answerer.name,
        error=error,
        direction=direction,
        reason=reason,
    )


async def _challengeable(ctx: Context, goal_id: int) -> tuple[Goal, Cycle, Person, Person]:
    goal, cycle, owner = await _goal(ctx, goal_id)
    if cycle.status != CycleStatus.ACTIVE:
        raise ctx.refuse("goal_comments.cycle_not_active", code=cycle.code)
    return goal, cycle, owner, await _answerer(ctx, owner)


async def build_challenge_form(ctx: Context, payload: GoalChallengeSubmit) -> Form:
    goal, _, owner, answerer = await _challengeable(ctx, payload.goal_id)
    return (await _challenge_form(ctx, goal, owner, answerer)).forms()[0]


@router.action(GoalChallengeOpen)
async def open_challenge(ctx: Context, payload: GoalChallengeOpen) -> Reply:
    goal, _, owner, answerer = await _challengeable(ctx, payload.goal_id)
    ctx.outbox.send(ctx.person, await _challenge_form(ctx, goal, owner, answerer))
    return Reply(toast=ctx.t("goal_comments.form_sent"), toast_kind="info")


@router.action(GoalChallengeSubmit, form=build_challenge_form)
async def challenge(ctx: Context, payload: GoalChallengeSubmit) -> Reply:
    goal, _, owner, answerer = await _challengeable(ctx, payload.goal_id)
    form = form_of(ctx)
    direction, reason = text(form, "direction", 8), text(form, "reason", 1000)
    if _is_button(ctx):
        ctx.outbox.send(ctx.person, await _challenge_form(ctx, goal, owner, answerer))
        return Reply(toast=ctx.t("goal_comments.form_sent"), toast_kind="info")
    if direction not in gc.DIRECTIONS or not reason:
        error = ctx.t("goal_comments.err_challenge")
        card = await _challenge_form(
            ctx, goal, owner, answerer, error=error, direction=direction, reason=reason
        )
        return Reply(toast=error, toast_kind="error", card=card)
    if await must_bounce(ctx, reason, entity=f"challenge:{goal.id}", entity_id=ctx.person.id):
        warning = ctx.t("vague.bounce", text=reason[:200])
        card = await _challenge_form(
            ctx, goal, owner, answerer, error=warning, direction=direction, reason=reason
        )
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    row = GoalComment(
        goal_id=goal.id,
        author_id=ctx.person.id,
        kind=CHALLENGE,
        direction=direction,
        body=reason,
        status=GoalCommentStatus.OPEN,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.audit(
        "goal.challenged", "goal_comment", row.id, goal_id=goal.id, person_id=owner.id, direction=direction
    )
    card = await _answer_card(ctx, row, goal, owner, ctx.translator(answerer), answerer)
    await send_polite(ctx, answerer, card, card_key=_answer_key(row.id))
    note = done_by(
        ctx.t, name=ctx.person.name, what=ctx.t("goal_comments.did_challenge"), at=ctx.now, tz=ctx.zone()
    )
    mine = await _challenge_form(ctx, goal, owner, answerer, direction=direction, reason=reason)
    return Reply(
        toast=ctx.t("goal_comments.challenge_sent", answerer=answerer.name), card=with_outcome(mine, note)
    )


async def _answer_card(
    ctx: Context,
    row: GoalComment,
    goal: Goal,
    owner: Person,
    t: Translator,
    viewer: Person,
    *,
    error: str | None = None,
    outcome: str | None = None,
    answer: str | None = None,
) -> Card:
    challenger = await ctx.session.get(Person, row.author_id)
    return gc.answer_card(
        t,
        comment_id=row.id,
        challenger=challenger.name if challenger is not None else "—",
        owner=owner.name,
        objective=goal.objective,
        krs=await kr_texts(ctx, goal),
        direction=row.direction or "up",
        reason=row.body,
        filed_at=ctx.local_text(row.created_at, viewer),
        error=error,
        outcome=outcome,
        answer=answer,
    )


async def _challenge_for_answer(ctx: Context, comment_id: int) -> tuple[GoalComment, Goal, Cycle, Person]:
    row = await ctx.session.get(GoalComment, comment_id)
    if row is None or row.kind != CHALLENGE:
        raise ctx.refuse("common.invalid_action")
    goal = await ctx.session.get(Goal, row.goal_id)
    cycle = await ctx.session.get(Cycle, goal.cycle_id) if goal is not None else None
    owner = await ctx.session.get(Person, goal.person_id) if goal is not None else None
    if goal is None or cycle is None or owner is None or cycle.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    await require_approver(ctx, owner)
    return row, goal, cycle, owner


def _refuse_answered(ctx: Context, row: GoalComment) -> None:
    if row.status != GoalCommentStatus.OPEN:
        raise ctx.refuse("goal_comments.already_answered", outcome=ctx.t(f"goal_comments.did.{row.status}"))


async def build_answer_form(ctx: Context, payload: GoalChallengeAnswer) -> Form:
    row, goal, _, owner = await _challenge_for_answer(ctx, payload.comment_id)
    _refuse_answered(ctx, row)
    return (await _answer_card(ctx, row, goal, owner, ctx.t, ctx.person)).forms()[0]


@router.action(GoalChallengeAnswer, form=build_answer_form)
async def answer(ctx: Context, payload: GoalChallengeAnswer) -> Reply:
    """Keep the target or ask the owner to adjust, with an answer the challenger reads; once."""
    row, goal, cycle, owner = await _challenge_for_answer(ctx, payload.comment_id)
    _refuse_answered(ctx, row)
    form = form_of(ctx)
    outcome, said = text(form, "outcome", 16), text(form, "answer", 1000)
    values = {"outcome": outcome, "answer": said}
    if outcome not in gc.OUTCOMES or not said:
        error = ctx.t("goal_comments.err_answer")
        card = await _answer_card(ctx, row, goal, owner, ctx.t, ctx.person, error=error, **values)
        return Reply(toast=error, toast_kind="error", card=card)
    if await must_bounce(ctx, said, entity="goal_comment", entity_id=row.id):
        warning = ctx.t("vague.bounce", text=said[:200])
        card = await _answer_card(ctx, row, goal, owner, ctx.t, ctx.person, error=warning, **values)
        return Reply(toast=warning[:200], toast_kind="warning", card=card)
    status = GoalCommentStatus(outcome)
    await ctx.transition_or_refuse(
        GoalComment,
        row.id,
        allowed=[GoalCommentStatus.OPEN],
        values={"status": status, "answer": said, "answered_by_id": ctx.person.id, "answered_at": ctx.now},
    )
    ctx.audit(
        "goal.challenge_answered",
        "goal_comment",
        row.id,
        goal_id=goal.id,
        person_id=owner.id,
        outcome=outcome,
    )
    challenger = await ctx.session.get(Person, row.author_id)
    if challenger is not None and challenger.active:
        ct = ctx.translator(challenger)
        told = gc.challenge_outcome_card(
            ct,
            outcome="adjust" if status == GoalCommentStatus.ADJUST else "kept",
            owner=owner.name,
            objective=goal.objective,
            answerer=ctx.person.name,
            answer=said,
        )
        await send_polite(ctx, challenger, told, dedupe_key=f"goal_challenge:{row.id}:answered")
    if status == GoalCommentStatus.ADJUST:
        ot = ctx.translator(owner)
        asked = gc.adjust_requested_card(
            ot,
            cycle_id=cycle.id,
            manager=ctx.person.name,
            objective=goal.objective,
            direction=row.direction or "up",
            reason=row.body,
            answer=said,
            person_goal=goal.level == GoalLevel.PERSON,
        )
        await send_polite(ctx, owner, asked, dedupe_key=f"goal_challenge:{row.id}:adjust")
    final = await _answer_card(ctx, row, goal, owner, ctx.t, ctx.person)
    what = ctx.t(f"goal_comments.did.{status}")
    note = done_by(ctx.t, name=ctx.person.name, what=what, at=ctx.now, tz=ctx.zone())
    toast = ctx.t(f"goal_comments.answered_toast.{status}", owner=owner.name)
    return Reply(toast=toast, card=with_outcome(final, f"{note}: {said}"))
