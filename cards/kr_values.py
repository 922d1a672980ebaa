"""How a key result's value reads on a card, how it is asked for, and the card that records one outside a
check-in (issue 17 item 5).

A number key result is asked as a number, with its target and last value in the label ("NPS（目标 40，上次
35）"); a date or deliverable key result as a choice: not yet, a milestone reached, done. A change reads
"35 → 38 / 40（75%）". The handler passes plain facts (``KrFacts``) and readings (``KrReading``) in: cards
never see a database row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_common import clip, form_card
from cards.goal_actions import KeyResultValueSubmit
from cards.model import Button, Card, Element, Form, Header, Input, Markdown, Note, Option, Select, TextInput

NUMBER = "number"
"""``KeyResult.kind`` of a measured key result; the other kinds (date, deliverable) are done or not."""

NOT_YET = "no"
DONE = "done"
MILESTONE = "m"
"""Choice values of a done / not-yet key result: ``no``, ``m1`` … ``m{n-1}`` (that many milestones reached, in
their order), ``done``."""


@dataclass(frozen=True, slots=True)
class KrReading:
    """Where a key result stood at one moment: the number (number key results), done or not, milestones
    reached (key results that have milestones), and the progress it made (0..1)."""

    value: float | None = None
    done: bool = False
    milestones_done: int | None = None
    progress: float = 0.0


@dataclass(frozen=True, slots=True)
class KrFacts:
    """What a card needs of a key result to ask for its value or show a change."""

    id: int
    title: str
    kind: str
    unit: str | None = None
    target: float | None = None
    target_date: date | None = None
    milestones: tuple[str, ...] = ()


def number_text(value: float | None) -> str:
    """``38.0`` → ``38``, ``3.25`` → ``3.25``; none → ``—``."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def with_unit(text: str, unit: str | None) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "％") else f"{text} {unit}"


def percent(progress: float) -> int:
    return round(max(0.0, min(1.0, progress)) * 100)


def target_text(kr: KrFacts) -> str:
    """ "40 分" for a number, the date for a date key result, empty for a deliverable."""
    if kr.kind == NUMBER:
        return with_unit(number_text(kr.target), kr.unit)
    return kr.target_date.isoformat() if kr.target_date else ""


def state_text(t: Translator, kr: KrFacts, reading: KrReading | None) -> str:
    """The value alone: "38", "已完成", "里程碑 1/3", "未完成"."""
    if reading is None:
        return "—"
    if kr.kind == NUMBER:
        return number_text(reading.value)
    if reading.done:
        return t("kr_values.done")
    if kr.milestones and reading.milestones_done:
        return t("kr_values.milestones", done=reading.milestones_done, total=len(kr.milestones))
    return t("kr_values.not_yet")


def change_text(t: Translator, kr: KrFacts, before: KrReading | None, after: KrReading) -> str:
    """A change as it reads: "35 → 38 / 40（75%）", unchanged "38 / 40（75%，未变）", and for a done / not-yet
    key result "未完成 → 已完成"."""
    now = state_text(t, kr, after)
    was = state_text(t, kr, before) if before is not None else None
    if kr.kind == NUMBER:
        shown = now if was is None or was == "—" else f"{was} → {now}"
        text = f"{shown} / {target_text(kr)}"
        key = "kr_values.change_same" if was == now else "kr_values.change"
        return t(key, text=text, percent=percent(after.progress))
    was = was if was is not None else t("kr_values.not_yet")  # never recorded: not done
    if was == now:
        return t("kr_values.change_same", text=now, percent=percent(after.progress))
    return t("kr_values.change", text=f"{was} → {now}", percent=percent(after.progress))


def state_value(reading: KrReading | None) -> str:
    """The choice a done / not-yet key result's select shows for ``reading``."""
    if reading is None:
        return NOT_YET
    if reading.done:
        return DONE
    if reading.milestones_done:
        return f"{MILESTONE}{reading.milestones_done}"
    return NOT_YET


def state_options(t: Translator, kr: KrFacts) -> list[Option]:
    total = len(kr.milestones)
    options = [Option(label=t("kr_values.not_yet"), value=NOT_YET)]
    for k in range(1, total):
        name = clip(kr.milestones[k - 1], 30)
        label = t("kr_values.milestone_option", done=k, total=total, name=name)
        options.append(Option(label=clip(label, 60), value=f"{MILESTONE}{k}"))
    options.append(Option(label=t("kr_values.done"), value=DONE))
    return options


def parse_state(kr: KrFacts, value: str) -> tuple[bool, int | None] | None:
    """(done, milestones reached) from a choice; None for a value the select never offered."""
    total = len(kr.milestones)
    if value == DONE:
        return True, (total if total else None)
    if value == NOT_YET:
        return False, (0 if total else None)
    if value.startswith(MILESTONE) and value[1:].isdigit() and 1 <= int(value[1:]) < total:
        return False, int(value[1:])
    return None


def value_label(t: Translator, kr: KrFacts, last: KrReading | None, *, last_key: str = "last") -> str:
    """The question: "NPS（目标 40，上次 35）", "上线新版官网（2026-12-15 前）：完成了吗？"."""
    title = clip(kr.title, 24)
    if kr.kind == NUMBER:
        target = target_text(kr)
        if last is not None and last.value is not None:
            label = t(f"kr_values.label_{last_key}", kr=title, target=target, last=number_text(last.value))
        else:
            label = t("kr_values.label_number", kr=title, target=target)
    elif kr.target_date is not None:
        label = t("kr_values.label_date", kr=title, date=kr.target_date.isoformat())
    else:
        label = t("kr_values.label_done", kr=title)
    return clip(label, 60)


def value_input(
    t: Translator,
    kr: KrFacts,
    *,
    name: str,
    last: KrReading | None,
    default: str | None,
    required: bool = False,
    last_key: str = "last",
) -> Input:
    """The input asking for one key result's value: a number, or a done / not-yet choice."""
    label = value_label(t, kr, last, last_key=last_key)
    if kr.kind == NUMBER:
        return TextInput(
            name=name,
            label=label,
            placeholder=clip(
                t("kr_values.placeholder_unit", unit=kr.unit) if kr.unit else t("kr_values.placeholder"), 100
            ),
            required=required,
            max_length=40,
            number=True,
            default=default[:40] if default else None,
        )
    options = state_options(t, kr)
    chosen = default if default in {o.value for o in options} else None
    return Select(name=name, label=label, options=options, required=required, default=chosen)


# ------------------------------------------------------------------ recording a value outside a check-in

VALUE = "value"
NOTE = "note"


def update_card(
    t: Translator,
    kr: KrFacts,
    *,
    goal_title: str,
    current: KrReading | None,
    typed: str | None = None,
    note: str | None = None,
    error: str | None = None,
) -> Card:
    """The small form the owner (or their manager) fills in to record a key result's value now; a bounced
    submission comes back with what was typed and the reason above the form."""
    default = typed if typed is not None else (None if kr.kind == NUMBER else state_value(current))
    form = Form(
        name="kr_value",
        inputs=[
            value_input(t, kr, name=VALUE, last=current, default=default, required=True, last_key="now"),
            TextInput(
                name=NOTE,
                label=t("kr_values.note"),
                multiline=True,
                max_length=500,
                default=note[:500] if note else None,
            ),
        ],
        submit=Button(
            label=t("kr_values.record"),
            value=pack(KeyResultValueSubmit(key_result_id=kr.id)),
            style="primary",
        ),
    )
    intro = Markdown(text=t("kr_values.update_intro", goal=clip(goal_title, 200), kr=clip(kr.title, 200)))
    return form_card(t("kr_values.update_title", kr=kr.title), [intro], form, error=error, colour="blue")


def recorded_card(
    t: Translator,
    kr: KrFacts,
    *,
    goal_title: str,
    before: KrReading | None,
    after: KrReading,
    goal_progress: float,
    by: str,
    note: str | None = None,
) -> Card:
    """What was recorded: the change, the objective's progress now, and who recorded it when."""
    elements: list[Element] = [
        Markdown(
            text=t(
                "kr_values.recorded_body",
                kr=clip(kr.title, 200),
                change=change_text(t, kr, before, after),
                goal=clip(goal_title, 200),
                goal_percent=percent(goal_progress),
            )
        )
    ]
    if note:
        elements.append(Markdown(text=t("kr_values.note_line", note=clip(note, 1000))))
    elements.append(Note(text=clip(by, 300)))
    title = clip(t("kr_values.recorded_title", kr=kr.title), 60)
    return Card(header=Header(title=title, colour="green"), elements=elements, summary=clip(title, 100))
