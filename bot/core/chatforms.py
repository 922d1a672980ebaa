"""Forms answered in chat, one question at a time: for platforms whose cards cannot hold text inputs (WeCom,
DingTalk general cards), and for a flow that wants the rest of a form after a person simply typed a message.

A form waiting for answers is one ``conversation_states`` row holding the action to run, the answers so far
and the questions still open, asked one at a time as chat messages. Whatever the person types next answers
the question being asked, never another one. When the last answer arrives, the dispatcher runs the
action's handler with the answers in ``ctx.event.form``, exactly as if the card had had inputs. ``/cancel``
or the state's expiry abandons the form without touching any record.

Two ways in: the dispatcher, when a submit is clicked on a card that could not carry its inputs
(``start``); and a flow, when someone typed one message for a whole form (``ask``: the flow has kept the
text and asks only for what is still missing).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select

from bot.core.context import Context, Reply
from bot.core.events import CardAction
from bot.core.numbers import looks_like_number
from cards.model import Card, DatePicker, Element, Form, Header, Markdown, Note, Select, TextInput
from storage.models import ConversationState

KIND = "chat_form"
SKIP_WORDS = {"跳过", "skip", "-"}
KEEP_WORDS = {"保留", "keep"}
"""Keeps the answer a form already holds (editing a submitted form in chat): the question shows it."""
REVISE = "_revise"
"""The question "which answer do you want to change?" asked after the action sent the form back (a vague
comment bounced, a date in the past). Not a valid input name, so it never reaches a handler."""
AS_IS = "="


def missing_inputs(form: Form, answered: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions the click did not answer, in form order, as plain dicts for the state row."""
    out: list[dict[str, Any]] = []
    for item in form.inputs:
        if item.name in answered and answered[item.name] not in ("", None, []):
            continue
        q: dict[str, Any] = {
            "name": item.name,
            "label": item.label,
            "required": item.required,
            "kind": item.kind,
        }
        if isinstance(item, Select):
            q["options"] = [{"label": o.label, "value": o.value} for o in item.options]
        if isinstance(item, TextInput):
            q["max_length"] = item.max_length
            if item.number:
                q["number"] = True
        if isinstance(item, TextInput | DatePicker) and item.default:
            q["current"] = item.default
        out.append(q)
    return out


async def start(
    ctx: Context, event: CardAction, questions: list[dict[str, Any]], timeout_minutes: int
) -> Card:
    """A submit clicked on a card without inputs: store the pending form and return the first question."""
    return await _store(
        ctx,
        value=event.value,
        answers=dict(event.form),
        questions=questions,
        message_ref=event.message_ref,
        event_id=event.event_id,
        timeout_minutes=timeout_minutes,
        intro=None,
    )


async def ask(
    ctx: Context, *, value: str, form: Form, answers: dict[str, str], intro: str | None = None
) -> Card | None:
    """Ask in chat for what ``answers`` leaves open in ``form``, then run the action packed in ``value``.

    Returns the first question card (``intro`` above it), or None when nothing is missing."""
    questions = missing_inputs(form, answers)
    if not questions:
        return None
    event_id = ctx.event.event_id if ctx.event is not None else f"ask:{value}"
    return await _store(
        ctx,
        value=value,
        answers=answers,
        questions=questions,
        message_ref=None,
        event_id=event_id,
        timeout_minutes=ctx.settings.conversation.answer_timeout_minutes,
        intro=intro,
    )


def record(
    question: dict[str, Any], value: Any, answers: dict[str, Any], data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Keep ``value`` as the answer to ``question``; return the questions it opens: after "which answer do
    you want to change?", the chosen one (nothing for "send as it is")."""
    if question["name"] != REVISE:
        answers[question["name"]] = value
        return []
    chosen = [q for q in data.get("asked", []) if q["name"] == value]
    return [
        {**q, "current": answers[q["name"]]} if q["kind"] != "select" and answers.get(q["name"]) else q
        for q in chosen
    ]


async def revisit(
    ctx: Context, data: dict[str, Any], answers: dict[str, Any], reply: Reply | None
) -> Card | None:
    """The action sent its form back instead of acting (issue 15 #1): a vague comment, a date in the past.

    On a card with inputs the returned card keeps every value; here the card cannot hold what was typed, so
    the answers are kept in a new pending form and one question asks which of them to change (or to send
    them as they are). Returns that question, with the action's message above it; None when the action
    did not send the form back."""
    if reply is None or reply.card is None or reply.private:
        return None
    if not any(f.submit.value == data["value"] for f in reply.card.forms()):
        return None
    asked = [q for q in data.get("asked", []) if q["name"] != REVISE]
    if not asked:
        return None
    t = ctx.t
    options = [{"label": t("chatform.revise_as_is"), "value": AS_IS}]
    for q in asked:
        shown = _shown(q, answers.get(q["name"]))
        options.append(
            {"label": t("chatform.revise_option", label=q["label"], value=shown)[:60], "value": q["name"]}
        )
    question = {
        "name": REVISE,
        "label": t("chatform.revise"),
        "required": True,
        "kind": "select",
        "options": options,
    }
    await ctx.session.flush()  # the finished form's row is deleted before its successor is written
    return await _store(
        ctx,
        value=data["value"],
        answers=answers,
        questions=[question],
        message_ref=data.get("message_ref"),
        event_id=f"{data['event_id']}:again"[:200],
        timeout_minutes=ctx.settings.conversation.answer_timeout_minutes,
        intro=reply.toast,
        asked=asked,
    )


def _shown(q: dict[str, Any], value: Any) -> str:
    if value in ("", None):
        return "—"
    for o in q.get("options", []):
        if o["value"] == value:
            return str(o["label"])
    return str(value)


async def _matching(ctx: Context, value: str) -> ConversationState | None:
    state = await ctx.session.scalar(
        select(ConversationState).where(
            ConversationState.person_id == ctx.person.id, ConversationState.kind == KIND
        )
    )
    return state if state is not None and state.data.get("value") == value else None


async def drop(ctx: Context, value: str) -> None:
    """Forget a form waiting for answers to ``value``: the person finished it another way (on the card),
    so their next message must not be taken as an answer to a question that no longer matters."""
    state = await _matching(ctx, value)
    if state is not None:
        await ctx.session.delete(state)


async def _store(
    ctx: Context,
    *,
    value: str,
    answers: dict[str, Any],
    questions: list[dict[str, Any]],
    message_ref: str | None,
    event_id: str,
    timeout_minutes: int,
    intro: str | None,
    asked: list[dict[str, Any]] | None = None,
) -> Card:
    await ctx.session.execute(delete(ConversationState).where(ConversationState.person_id == ctx.person.id))
    ctx.session.add(
        ConversationState(
            person_id=ctx.person.id,
            kind=KIND,
            ref_id=0,
            data={
                "value": value,
                "answers": answers,
                "pending": questions,
                "asked": asked if asked is not None else questions,
                "total": len(questions),
                "message_ref": message_ref,
                "event_id": event_id,
            },
            expires_at=ctx.now + timedelta(minutes=timeout_minutes),
        )
    )
    return question_card(ctx, questions[0], total=len(questions), index=1, intro=intro)


def question_card(
    ctx: Context,
    q: dict[str, Any],
    *,
    total: int,
    index: int,
    error: str | None = None,
    intro: str | None = None,
) -> Card:
    t = ctx.t
    lines = [f"**{q['label']}**"]
    if q["kind"] == "select":
        if _by_value(q["options"]):
            lines.append(" · ".join(o["label"] for o in q["options"]))
            lines.append(t("chatform.pick_value", example=q["options"][len(q["options"]) // 2]["value"]))
        else:
            lines += [f"{n}. {o['label']}" for n, o in enumerate(q["options"], 1)]
            lines.append(t("chatform.pick_option"))
    elif q["kind"] == "date_picker":
        lines.append(t("chatform.date_format"))
    if q.get("current"):
        lines.append(t("chatform.current", value=str(q["current"])[:500]))
    elements: list[Element] = []
    if intro:
        elements.append(Markdown(text=intro[:2000]))
    if error:
        elements.append(Note(text=error[:300]))
    elements.append(Markdown(text="\n".join(lines)[:2000]))
    hint = t("chatform.hint_optional") if not q["required"] else t("chatform.hint_required")
    elements.append(Note(text=hint))
    return Card(
        header=Header(title=t("chatform.title", index=index, total=total)[:60], colour="blue"),
        elements=elements,
        summary=q["label"][:100],
    )


def _by_value(options: list[dict[str, Any]]) -> bool:
    """Options whose labels start with their own number (a 0–100 % scale, a 1–5 rating): a number typed in
    reply means that value, never the option's position in the list, so "10" is 10 %, not the tenth option."""
    return all(str(o["value"]).isdigit() and str(o["label"]).startswith(str(o["value"])) for o in options)


def parse_answer(q: dict[str, Any], text: str, today: date) -> tuple[Any, str | None]:
    """(value, error key). A skipped optional answer is ``""``."""
    text = text.strip()
    if q.get("current") and text.lower() in KEEP_WORDS:
        return q["current"], None
    if text.lower() in SKIP_WORDS:
        return ("", None) if not q["required"] else (None, "chatform.required")
    if not text:
        return None, "chatform.required"
    if q["kind"] == "text_input":
        if len(text) > int(q.get("max_length", 2000)):
            return None, "chatform.too_long"
        if q.get("number") and not looks_like_number(text):
            return None, "chatform.bad_number"
        return text, None
    if q["kind"] == "select":
        return _option(q["options"], text)
    m = re.fullmatch(r"(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?", text)
    if not m:
        return None, "chatform.bad_date"
    year = int(m.group(1)) if m.group(1) else today.year
    try:
        day = date(year, int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None, "chatform.bad_date"
    if not m.group(1) and day < today:
        day = date(year + 1, day.month, day.day)
    return day.isoformat(), None


def _option(options: list[dict[str, Any]], text: str) -> tuple[Any, str | None]:
    plain = unicodedata.normalize("NFKC", text).strip()
    if _by_value(options):
        number = plain.rstrip("%").strip()
        found = next((o["value"] for o in options if number == o["value"] or plain == o["label"]), None)
        return (found, None) if found is not None else (None, "chatform.bad_value")
    if plain.isdigit() and 1 <= int(plain) <= len(options):
        return options[int(plain) - 1]["value"], None
    for o in options:
        if plain in (o["label"], o["value"]):
            return o["value"], None
    return None, "chatform.bad_option"
