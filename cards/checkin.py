"""Check-in cards: the employee's prompt, their submitted summary, the manager's summary and the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import CheckinAnswer, CheckinEdit, CheckinSubmit
from cards.flow_common import clip
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

DECISIONS = ("acknowledged", "followup")
"""The approver's answers, as stored in ``checkins.status`` (``bot.core.status.CheckInStatus``); the first
is the form's default."""


@dataclass(frozen=True)
class GoalLine:
    key: str
    """The key in ``CheckIn.progress``: the goal id as text, or ``OVERALL``."""
    title: str


def progress_input_name(key: str) -> str:
    return f"goal_{key}"


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
) -> Card:
    lines = list(goals[:MAX_GOALS_ON_CARD]) or [GoalLine(key=OVERALL, title=t("checkin.overall"))]
    progress = progress or {}
    inputs: list[Input] = []
    for line in lines:
        current = progress.get(line.key)
        default = (
            str(current) if isinstance(current, int) and 0 <= current <= 100 and current % 10 == 0 else None
        )
        inputs.append(
            Select(
                name=progress_input_name(line.key),
                label=t("checkin.progress_of", goal=clip(line.title, 40))[:60],
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
