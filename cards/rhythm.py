"""Key-result rhythms (issue 17 item 7): the ``/rhythm`` form, what was set, and ``/rhythm off``.

A rhythm reads the same wherever it appears, in the reader's language ("每周三 10:00 前：上传客户拜访照片",
"Every Wednesday by 10:00: upload a customer-visit photo"): ``rhythm_phrase`` is also what the evidence
flow puts on the photo request and on the manager's rating card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.actions import pack
from cards.catalogue import Translator
from cards.goal_actions import RhythmStop, RhythmSubmit
from cards.kr_select import KrOption, kr_options
from cards.model import (
    Button,
    Card,
    Element,
    Fields,
    Form,
    Header,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from cards.text import shorten

MAX_RHYTHM_CHARS = 300


@dataclass(frozen=True, slots=True)
class RhythmLine:
    """An active rhythm, as listed."""

    rhythm_id: int
    key_result: str
    weekday: int
    due_time: str
    action: str


def rhythm_phrase(t: Translator, weekday: int, due_time: str, action: str) -> str:
    return t("rhythm.phrase", day=t(f"rhythm.weekday.{weekday % 7}"), time=due_time, action=action)


def rhythm_form(
    t: Translator,
    *,
    person_id: int,
    options: Sequence[KrOption],
    key_result_id: int | None = None,
    sentence: str | None = None,
) -> Form:
    """Which key result, and the rhythm in one sentence (also asked one question at a time in chat)."""
    chosen = str(key_result_id) if key_result_id is not None else None
    return Form(
        name="rhythm",
        inputs=[
            Select(
                name="key_result",
                label=t("rhythm.field_key_result"),
                options=kr_options(options),
                required=True,
                default=chosen if any(str(o.key_result_id) == chosen for o in options) else None,
            ),
            TextInput(
                name="rhythm",
                label=t("rhythm.field_rhythm"),
                placeholder=t("rhythm.placeholder"),
                required=True,
                max_length=MAX_RHYTHM_CHARS,
                default=shorten(sentence, MAX_RHYTHM_CHARS) if sentence else None,
            ),
        ],
        submit=Button(label=t("rhythm.save"), value=pack(RhythmSubmit(person_id=person_id)), style="primary"),
    )


def rhythm_form_card(
    t: Translator,
    *,
    person_id: int,
    person: str,
    options: Sequence[KrOption],
    active: Sequence[RhythmLine] = (),
    key_result_id: int | None = None,
    sentence: str | None = None,
    error: str | None = None,
) -> Card:
    """The ``/rhythm`` card: the rhythms already running, then the form; ``error`` (red) says what to fix
    and the form keeps what was chosen and typed."""
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=shorten(error, 2000)))
    elements.append(Markdown(text=t("rhythm.intro", name=person)))
    if active:
        lines = [rhythm_phrase(t, r.weekday, r.due_time, r.action) for r in active[:10]]
        elements.append(Note(text=shorten(t("rhythm.running", lines="；".join(lines)), 300)))
    elements.append(
        rhythm_form(t, person_id=person_id, options=options, key_result_id=key_result_id, sentence=sentence)
    )
    title = t("rhythm.title", name=person)
    return Card(
        header=Header(title=shorten(title, 60), colour="red" if error else "blue"),
        elements=elements,
        summary=shorten(title, 100),
    )


def rhythm_saved_card(
    t: Translator, *, person: str, key_result: str, phrase: str, set_by: str | None = None
) -> Card:
    """What was set, when the requests come, and how to stop it. ``set_by``: the manager who set it for
    ``person`` (the owner's copy says so)."""
    items = [
        KeyValue(label=t("rhythm.field_person"), value=shorten(person, 200)),
        KeyValue(label=t("rhythm.field_key_result"), value=shorten(key_result, 200)),
        KeyValue(label=t("rhythm.field_rhythm"), value=shorten(phrase, 200)),
    ]
    elements: list[Element] = [Fields(items=items)]
    if set_by:
        elements.append(Markdown(text=t("rhythm.set_by", name=set_by)))
    elements.append(Note(text=t("rhythm.saved_note")))
    return Card(
        header=Header(title=t("rhythm.saved_title"), colour="green"),
        elements=elements,
        summary=shorten(phrase, 100),
    )


def rhythm_off_card(t: Translator, *, person_id: int, person: str, active: Sequence[RhythmLine]) -> Card:
    """``/rhythm off``: the running rhythms, one to stop chosen in the form."""
    title = t("rhythm.off_title", name=person)
    if not active:
        return Card(
            header=Header(title=shorten(title, 60), colour="grey"),
            elements=[Markdown(text=t("rhythm.none_running", name=person))],
            summary=shorten(title, 100),
        )
    options = [
        Option(
            label=shorten(f"{rhythm_phrase(t, r.weekday, r.due_time, r.action)} · {r.key_result}", 60),
            value=str(r.rhythm_id),
        )
        for r in active[:50]
    ]
    form = Form(
        name="rhythm_stop",
        inputs=[Select(name="rhythm", label=t("rhythm.field_stop"), options=options, required=True)],
        submit=Button(label=t("rhythm.stop"), value=pack(RhythmStop(person_id=person_id)), style="danger"),
    )
    return Card(
        header=Header(title=shorten(title, 60), colour="blue"),
        elements=[Markdown(text=t("rhythm.off_intro", count=len(active))), form],
        summary=shorten(title, 100),
    )


def rhythm_stopped_card(t: Translator, *, person: str, phrase: str, key_result: str, by: str) -> Card:
    return Card(
        header=Header(title=t("rhythm.stopped_title"), colour="grey"),
        elements=[
            Fields(
                items=[
                    KeyValue(label=t("rhythm.field_person"), value=shorten(person, 200)),
                    KeyValue(label=t("rhythm.field_key_result"), value=shorten(key_result, 200)),
                    KeyValue(label=t("rhythm.field_rhythm"), value=shorten(phrase, 200)),
                ]
            ),
            Note(text=shorten(t("rhythm.stopped_by", name=by), 300)),
        ],
        summary=shorten(phrase, 100),
    )
