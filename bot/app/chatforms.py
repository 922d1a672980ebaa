"""Forms answered in chat, for platforms whose cards cannot hold text inputs (WeCom, DingTalk general cards).

When such a card's submit button is clicked, the dispatcher rebuilds the form server-side (the handler's
registered form builder), stores one ``conversation_states`` row holding the click and the questions still
unanswered, and asks them one at a time as chat messages. When the last answer arrives the original action
handler runs with the answers in ``ctx.event.form``, exactly as if the card had had inputs. ``/cancel`` or the
state's expiry abandons the form without touching any record.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete

from bot.core.context import Context
from bot.core.events import CardAction
from cards.model import Card, Form, Header, Markdown, Note, Select, TextInput
from storage.models import ConversationState

KIND = "chat_form"
SKIP_WORDS = {"跳过", "skip", "-"}


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
        if isinstance(item, TextInput):
            q["max_length"] = item.max_length
        elif isinstance(item, Select):
            q["options"] = [{"label": o.label, "value": o.value} for o in item.options]
        out.append(q)
    return out


async def start(
    ctx: Context, event: CardAction, questions: list[dict[str, Any]], timeout_minutes: int
) -> Card:
    """Store the pending form and return the first question card."""
    await ctx.session.execute(delete(ConversationState).where(ConversationState.person_id == ctx.person.id))
    ctx.session.add(
        ConversationState(
            person_id=ctx.person.id,
            kind=KIND,
            ref_id=0,
            data={
                "value": event.value,
                "answers": dict(event.form),
                "pending": questions,
                "message_ref": event.message_ref,
                "event_id": event.event_id,
            },
            expires_at=ctx.now + timedelta(minutes=timeout_minutes),
        )
    )
    return question_card(ctx, questions[0], total=len(questions), index=1)


def question_card(
    ctx: Context, q: dict[str, Any], *, total: int, index: int, error: str | None = None
) -> Card:
    t = ctx.t
    lines = [f"**{q['label']}**"]
    if q["kind"] == "select":
        lines += [f"{n}. {o['label']}" for n, o in enumerate(q["options"], 1)]
        lines.append(t("chatform.pick_option"))
    elif q["kind"] == "date_picker":
        lines.append(t("chatform.date_format"))
    elements: list[Any] = []
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


def parse_answer(q: dict[str, Any], text: str, today: date) -> tuple[Any, str | None]:
    """(value, error key). A skipped optional answer is ``""``."""
    text = text.strip()
    if text.lower() in SKIP_WORDS:
        return ("", None) if not q["required"] else (None, "chatform.required")
    if not text:
        return None, "chatform.required"
    if q["kind"] == "text_input":
        if len(text) > int(q.get("max_length", 2000)):
            return None, "chatform.too_long"
        return text, None
    if q["kind"] == "select":
        options = q["options"]
        if text.isdigit() and 1 <= int(text) <= len(options):
            return options[int(text) - 1]["value"], None
        for o in options:
            if text in (o["label"], o["value"]):
                return o["value"], None
        return None, "chatform.bad_option"
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
