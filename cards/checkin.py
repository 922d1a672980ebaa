"""Check-in cards: the employee's prompt, their submitted summary, the manager's summary and the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import CheckinAnswer, CheckinEdit, CheckinSubmit
from cards.flow_common import clip
from cards.kr_values import (
    NUMBER,
    KrFacts,
    KrReading,
    change_text,
    number_text,
    state_value,
    value_input,
)
from cards.model import (
    Actions,
    Button,
    Card,
    Element,
    Fields,
    Form,
    Header,
    Input,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from cards.snooze import snooze_button

OVERALL = "overall"
"""Progress key used when the person has no goals in the cycle: one overall percentage."""

NOTE = "note"
"""Key in ``CheckIn.progress`` (and the form input) for what the person says about their progress in their
own words, such as a message typed in chat instead of filling in the card. It is not a goal id, so it is never
read as a percentage."""

MAX_GOALS_ON_CARD = 10

MAX_VALUE_INPUTS = 12
"""Goal percentages and key result values asked on one card: with the note, obstacles and support the form
stays within the 15 inputs every platform takes. Key results past it keep their value (the card says so)."""

DECISIONS = ("acknowledged", "followup")
"""The approver's answers, as stored in ``checkins.status`` (``bot.core.status.CheckInStatus``); the first
is the form's default."""


@dataclass(frozen=True)
class KrLine:
    """A key result asked in a check-in: where it stood before this check-in, and this check-in's answer
    (None until answered)."""

    facts: KrFacts
    before: KrReading | None = None
    own: KrReading | None = None


@dataclass(frozen=True)
class GoalLine:
    key: str
    """The key in ``CheckIn.progress``: the goal id as text, or ``OVERALL``."""
    title: str
    krs: tuple[KrLine, ...] = ()
    """The goal's key results (issue 17): each asked for its value. A goal without any (set before key
    results existed) is asked for one percentage, as before."""


def progress_input_name(key: str) -> str:
    return f"goal_{key}"


def kr_input_name(kr_id: int) -> str:
    return f"kr_{kr_id}"


@dataclass(frozen=True)
class Question:
    """One value the card asks for: a goal's percentage (``kr`` None) or a key result's value."""

    line: GoalLine
    kr: KrLine | None = None

    @property
    def name(self) -> str:
        return progress_input_name(self.line.key) if self.kr is None else kr_input_name(self.kr.facts.id)


def questions(goals: Sequence[GoalLine]) -> tuple[list[Question], int]:
    """The values asked, in goal then key result order, and how many key results did not fit."""
    asked: list[Question] = []
    left_out = 0
    for line in goals[:MAX_GOALS_ON_CARD]:
        for q in [Question(line, kr) for kr in line.krs] or [Question(line)]:
            if len(asked) < MAX_VALUE_INPUTS:
                asked.append(q)
            else:
                left_out += 1
    return asked, left_out


def kr_default(kr: KrLine) -> str | None:
    """What a key result's input shows: this check-in's answer; before any, a choice shows where it stands
    and a number is left empty (its label says the last value; empty = unchanged)."""
    if kr.own is not None:
        return number_text(kr.own.value) if kr.facts.kind == NUMBER else state_value(kr.own)
    return None if kr.facts.kind == NUMBER else state_value(kr.before)


def _progress_options() -> list[Option]:
    return [Option(label=f"{p}%", value=str(p)) for p in range(0, 101, 10)]


def checkin_card(
    t: Translator,
    *,
    checkin_id: int,
    period: str,
    goals: Sequence[GoalLine],
    progress: Mapping[str, object] | None = None,
    obstacles: str | None = None,
    support: str | None = None,
    reminder: bool = False,
    error: str | None = None,
    social_proof: str | None = None,
    answers: Mapping[str, str] | None = None,
) -> Card:
    """``answers``: key result values as typed (input name → text), kept on a card sent back with an error."""
    lines = list(goals[:MAX_GOALS_ON_CARD]) or [GoalLine(key=OVERALL, title=t("checkin.overall"))]
    progress = progress or {}
    asked, left_out = questions(lines)
    inputs: list[Input] = []
    for q in asked:
        if q.kr is not None:
            typed = answers.get(q.name) if answers is not None else None
            inputs.append(
                value_input(t, q.kr.facts, name=q.name, last=q.kr.before, default=typed or kr_default(q.kr))
            )
            continue
        current = progress.get(q.line.key)
        default = (
            str(current) if isinstance(current, int) and 0 <= current <= 100 and current % 10 == 0 else None
        )
        inputs.append(
            Select(
                name=q.name,
                label=t("checkin.progress_of", goal=clip(q.line.title, 40))[:60],
                options=_progress_options(),
                required=True,
                default=default,
            )
        )
    note = progress.get(NOTE)
    inputs += [
        TextInput(
            name=NOTE,
            label=t("checkin.note"),
            multiline=True,
            max_length=2000,
            default=note[:2000] if isinstance(note, str) and note else None,
        ),
        TextInput(
            name="obstacles", label=t("checkin.obstacles"), multiline=True, max_length=2000, default=obstacles
        ),
        TextInput(
            name="support", label=t("checkin.support"), multiline=True, max_length=2000, default=support
        ),
    ]
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=error[:2000]))
    elements.append(Markdown(text=t("checkin.reminder_intro" if reminder else "checkin.intro")))
    if any(q.kr is not None for q in asked):
        elements.append(Note(text=t("checkin.kr_hint")))
    if left_out:
        elements.append(Note(text=t("checkin.kr_left_out", count=left_out)))
    if social_proof:
        elements.append(Note(text=social_proof[:300]))
    elements += [
        Form(
            name="checkin",
            inputs=inputs,
            submit=Button(
                label=t("common.submit"), value=pack(CheckinSubmit(checkin_id=checkin_id)), style="primary"
            ),
        ),
        Actions(buttons=[snooze_button(t, flow="checkin", ref_id=checkin_id)]),
        Note(text=t("checkin.chat_hint")),
    ]
    title = t("checkin.reminder_title" if reminder else "checkin.title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="red" if error else ("orange" if reminder else "blue")),
        elements=elements,
        summary=title[:100],
    )


def progress_fields(
    t: Translator, goals: Sequence[GoalLine], progress: Mapping[str, object]
) -> Fields | None:
    items = []
    titles = {g.key: g.title for g in goals}
    for key, value in progress.items():
        title = titles.get(key) or (t("checkin.overall") if key == OVERALL else None)
        if title is None:
            continue
        items.append(KeyValue(label=clip(title, 40), value=f"{value}%"))
    return Fields(items=items[:20]) if items else None


def kr_changes(t: Translator, goals: Sequence[GoalLine]) -> Markdown | None:
    """Each key result this check-in answered: "NPS：35 → 38 / 40（75%）"."""
    rows = [
        t(
            "checkin.kr_change",
            kr=clip(kr.facts.title, 40),
            change=change_text(t, kr.facts, kr.before, kr.own),
        )
        for line in goals
        for kr in line.krs
        if kr.own is not None
    ]
    if not rows:
        return None
    return Markdown(text=clip("\n".join([t("checkin.kr_changes"), *rows]), 2000))


def _answers(
    t: Translator,
    goals: Sequence[GoalLine],
    progress: Mapping[str, object],
    obstacles: str | None,
    support: str | None,
) -> list[Element]:
    out: list[Element] = []
    fields = progress_fields(t, goals, progress)
    if fields is not None:
        out.append(fields)
    changes = kr_changes(t, goals)
    if changes is not None:
        out.append(changes)
    note = progress.get(NOTE)
    if isinstance(note, str) and note:
        out.append(Markdown(text=t("checkin.note_line", note=clip(note, 1500))[:2000]))
    out.append(
        Markdown(text=t("checkin.answers", obstacles=clip(obstacles, 800), support=clip(support, 800)))
    )
    return out


def submitted_card(
    t: Translator,
    *,
    checkin_id: int,
    period: str,
    goals: Sequence[GoalLine],
    progress: Mapping[str, object],
    obstacles: str | None,
    support: str | None,
    note: str,
    editable: bool = True,
) -> Card:
    elements = _answers(t, goals, progress, obstacles, support)
    elements.append(Note(text=note[:300]))
    elements.append(
        Actions(
            buttons=[
                Button(
                    label=t("checkin.edit"),
                    value=pack(CheckinEdit(checkin_id=checkin_id)),
                    disabled=not editable,
                )
            ]
        )
    )
    title = t("checkin.submitted_title", period=period)[:60]
    return Card(header=Header(title=title, colour="green"), elements=elements, summary=title[:100])


def manager_card(
    t: Translator,
    *,
    checkin_id: int,
    employee_name: str,
    period: str,
    goals: Sequence[GoalLine],
    progress: Mapping[str, object],
    obstacles: str | None,
    support: str | None,
    decision_default: str = DECISIONS[0],
    comment_default: str | None = None,
    warning: str | None = None,
    edited: bool = False,
) -> Card:
    """One way to answer: the decision is chosen in the form, sent together with the comment by one button.
    A card that comes back (a vague comment asked again) shows the decision and comment the approver sent."""
    elements = _answers(t, goals, progress, obstacles, support)
    if edited:
        elements.append(Note(text=t("checkin.edited_note")))
    if warning:
        elements.append(Markdown(text=warning[:2000]))
    elements.append(
        Form(
            name="checkin_answer",
            inputs=[
                Select(
                    name="decision",
                    label=t("checkin.decision"),
                    required=True,
                    default=decision_default if decision_default in DECISIONS else DECISIONS[0],
                    options=[
                        Option(label=t("checkin.ack"), value="acknowledged"),
                        Option(label=t("checkin.followup"), value="followup"),
                    ],
                ),
                TextInput(
                    name="comment",
                    label=t("checkin.comment"),
                    multiline=True,
                    max_length=1000,
                    default=comment_default,
                ),
            ],
            submit=Button(
                label=t("checkin.send_answer"),
                value=pack(CheckinAnswer(checkin_id=checkin_id)),
                style="primary",
            ),
        )
    )
    title = t("checkin.manager_title", name=employee_name, period=period)[:60]
    return Card(
        header=Header(title=title, colour="orange" if warning else "blue"),
        elements=elements,
        summary=title[:100],
    )


def answered_card(
    t: Translator,
    *,
    period: str,
    manager_name: str,
    decision: str,
    comment: str | None,
    when: str,
) -> Card:
    """What the employee is told: the manager's decision and comment."""
    body = t(f"checkin.answer_{decision}", name=manager_name)
    elements: list[Element] = [Markdown(text=body)]
    if comment:
        elements.append(Markdown(text=t("checkin.manager_comment", comment=clip(comment, 1500))))
    elements.append(Note(text=when[:300]))
    title = t("checkin.answered_title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="green" if decision == "acknowledged" else "orange"),
        elements=elements,
        summary=title[:100],
    )


def missed_card(t: Translator, *, period: str) -> Card:
    title = t("checkin.missed_title", period=period)[:60]
    return Card(
        header=Header(title=title, colour="grey"),
        elements=[Markdown(text=t("checkin.missed_body"))],
        summary=title[:100],
    )
