"""``/rhythm`` (打卡节奏): bind a recurring checkable action to a key result ("每周三 10:00 前上传照片").

The key result's owner, or their manager, picks one of the owner's key results in a running cycle and writes
the rhythm in one sentence (``handlers.goals.rhythm_text``). The goals flow only stores it, as a
``KeyResultRhythm`` row; the evidence flow opens the photo request on each rhythm day (it owns evidence
requests: ``handlers/evidence/rhythm.py``), so a manager sees the proof behind the number.

``/rhythm off`` lists the running rhythms and stops the one chosen. ``/rhythm @张三 …`` does either for a
direct report. Nothing is deleted: a stopped rhythm keeps its requests and photos, ``active`` turns false.
"""

from __future__ import annotations

from bot.core.context import Context, Reply
from bot.core.forms import form_of, text
from bot.core.people import find_by_mention, is_manager_of
from bot.core.router import Router
from bot.core.status import CycleStatus
from cards.goal_actions import RhythmStop, RhythmSubmit
from cards.kr_select import KrOption
from cards.model import Form
from cards.rhythm import (
    RhythmLine,
    rhythm_form,
    rhythm_form_card,
    rhythm_off_card,
    rhythm_phrase,
    rhythm_saved_card,
    rhythm_stopped_card,
)
from handlers.goals.rhythm_text import RhythmInvalid, parse_rhythm
from storage.models import KeyResultRhythm, Person
from storage.queries import kr_links as kq

router = Router()

MAX_PER_KEY_RESULT = 3
"""Running rhythms on one key result: a few weekdays at most, or the requests become noise."""
RUNNING = (CycleStatus.ACTIVE,)
"""Cycles whose key results take a new rhythm (a closing cycle starts nothing new)."""
OFF_WORDS = frozenset({"off", "stop", "停止", "关闭", "取消"})


async def key_result_options(ctx: Context, person: Person) -> list[KrOption]:
    """``person``'s key results in their running cycles, as the select shows them."""
    choices = await kq.kr_choices(ctx.session, person.id, cycle_statuses=RUNNING)
    return [KrOption(c.key_result_id, c.objective, c.title, c.progress) for c in choices]


async def _running(ctx: Context, person: Person) -> list[RhythmLine]:
    rows = await kq.active_rhythms_of(ctx.session, person.id)
    return [RhythmLine(r.rhythm_id, r.key_result, r.weekday, r.due_time, r.text) for r in rows]


async def _allowed(ctx: Context, person: Person) -> None:
    """The owner, or their manager (or the manager's delegate): the two who agree what proves a number."""
    if person.id == ctx.person.id:
        return
    if person.workspace_id == ctx.workspace.id and await is_manager_of(ctx.session, ctx.person, person):
        return
    raise ctx.refuse("rhythm.not_allowed", name=person.name)


async def _person(ctx: Context, person_id: int) -> Person:
    person = await ctx.session.get(Person, person_id)
    if person is None or not person.active or person.workspace_id != ctx.workspace.id:
        raise ctx.refuse("common.invalid_action")
    await _allowed(ctx, person)
    return person


@router.command("rhythm", "打卡节奏")
async def rhythm_command(ctx: Context, args: str) -> Reply:
    """``/rhythm [@name] [sentence]`` opens the form (the sentence pre-filled); ``/rhythm off [@name]`` lists
    the running rhythms to stop one."""
    tokens = args.split()
    off = bool(tokens) and tokens[0].lower() in OFF_WORDS
    if off:
        tokens = tokens[1:]
    person = ctx.person
    if tokens and tokens[0].startswith(("@", "＠")):
        matches = await find_by_mention(ctx.session, ctx.workspace.id, tokens[0])
        if not matches:
            raise ctx.refuse("rhythm.no_such_person", name=tokens[0])
        if len(matches) > 1:
            raise ctx.refuse("rhythm.ambiguous_person", name=tokens[0], count=len(matches))
        person = matches[0]
        tokens = tokens[1:]
    await _allowed(ctx, person)
    if off:
        if tokens:
            raise ctx.refuse("rhythm.usage")
        return Reply(
            card=rhythm_off_card(
                ctx.t, person_id=person.id, person=person.name, active=await _running(ctx, person)
            )
        )
    options = await key_result_options(ctx, person)
    if not options:
        raise ctx.refuse("rhythm.no_key_results", name=person.name)
    return Reply(
        card=rhythm_form_card(
            ctx.t,
            person_id=person.id,
            person=person.name,
            options=options,
            active=await _running(ctx, person),
            sentence=" ".join(tokens) or None,
        )
    )


async def _rhythm_form(ctx: Context, payload: RhythmSubmit) -> Form:
    person = await _person(ctx, payload.person_id)
    return rhythm_form(ctx.t, person_id=person.id, options=await key_result_options(ctx, person))


@router.action(RhythmSubmit, form=_rhythm_form)
async def submit_rhythm(ctx: Context, payload: RhythmSubmit) -> Reply:
    """Store the rhythm, or send the form back (red, with what was chosen and typed) saying what to fix."""
    person = await _person(ctx, payload.person_id)
    form = form_of(ctx)
    options = await key_result_options(ctx, person)
    raw = text(form, "key_result")
    chosen = next((o for o in options if str(o.key_result_id) == raw), None)
    sentence = text(form, "rhythm", 300)
    errors: list[str] = []
    if chosen is None:
        errors.append(ctx.t("rhythm.err.key_result"))
    try:
        rhythm = parse_rhythm(sentence)
    except RhythmInvalid as bad:
        errors.append(ctx.t(f"rhythm.err.{bad.reason}"))
    if errors or chosen is None:
        if not options:
            raise ctx.refuse("rhythm.no_key_results", name=person.name)
        card = rhythm_form_card(
            ctx.t,
            person_id=person.id,
            person=person.name,
            options=options,
            active=await _running(ctx, person),
            key_result_id=chosen.key_result_id if chosen else None,
            sentence=sentence or None,
            error="\n".join([*errors, ctx.t("rhythm.example")]),
        )
        return Reply(toast=errors[0][:200], toast_kind="error", card=card)
    if await kq.same_rhythm(ctx.session, chosen.key_result_id, rhythm.weekday, rhythm.due_text) is not None:
        raise ctx.refuse("rhythm.duplicate")
    if await kq.active_rhythm_count(ctx.session, chosen.key_result_id) >= MAX_PER_KEY_RESULT:
        raise ctx.refuse("rhythm.too_many", count=MAX_PER_KEY_RESULT)
    row = KeyResultRhythm(
        key_result_id=chosen.key_result_id,
        person_id=person.id,
        text=rhythm.action,
        weekday=rhythm.weekday,
        due_time=rhythm.due_text,
        active=True,
        created_by_id=ctx.person.id,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.audit(
        "rhythm.set",
        "kr_rhythm",
        row.id,
        key_result_id=chosen.key_result_id,
        person_id=person.id,
        weekday=rhythm.weekday,
        due_time=rhythm.due_text,
    )
    if person.id != ctx.person.id:
        t = ctx.translator(person)
        ctx.outbox.send(
            person,
            rhythm_saved_card(
                t,
                person=person.name,
                key_result=chosen.title,
                phrase=rhythm_phrase(t, rhythm.weekday, rhythm.due_text, rhythm.action),
                set_by=ctx.person.name,
            ),
        )
    phrase = rhythm_phrase(ctx.t, rhythm.weekday, rhythm.due_text, rhythm.action)
    return Reply(
        toast=ctx.t("rhythm.saved_toast"),
        card=rhythm_saved_card(ctx.t, person=person.name, key_result=chosen.title, phrase=phrase),
    )


async def _stop_form(ctx: Context, payload: RhythmStop) -> Form:
    person = await _person(ctx, payload.person_id)
    card = rhythm_off_card(ctx.t, person_id=person.id, person=person.name, active=await _running(ctx, person))
    forms = card.forms()
    if not forms:
        raise ctx.refuse("rhythm.none_running", name=person.name)
    return forms[0]


@router.action(RhythmStop, form=_stop_form)
async def stop_rhythm(ctx: Context, payload: RhythmStop) -> Reply:
    """Stop the chosen rhythm (compare-and-set: a second click, or one on an old list, is told it is done)."""
    person = await _person(ctx, payload.person_id)
    running = {r.rhythm_id: r for r in await _running(ctx, person)}
    raw = text(form_of(ctx), "rhythm")
    line = running.get(int(raw)) if raw.isdigit() else None
    if line is None:
        raise ctx.refuse("rhythm.not_running")
    if not await kq.stop_rhythm(ctx.session, line.rhythm_id, person.id):
        raise ctx.refuse("common.already_done")
    ctx.audit("rhythm.stopped", "kr_rhythm", line.rhythm_id, person_id=person.id)
    phrase = rhythm_phrase(ctx.t, line.weekday, line.due_time, line.action)
    if person.id != ctx.person.id:
        t = ctx.translator(person)
        ctx.outbox.send(
            person,
            rhythm_stopped_card(
                t,
                person=person.name,
                phrase=rhythm_phrase(t, line.weekday, line.due_time, line.action),
                key_result=line.key_result,
                by=ctx.person.name,
            ),
        )
    return Reply(
        toast=ctx.t("rhythm.stopped_toast"),
        card=rhythm_stopped_card(
            ctx.t, person=person.name, phrase=phrase, key_result=line.key_result, by=ctx.person.name
        ),
    )
