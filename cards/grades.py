"""Grade cards: the manager's proposal (with the facts it should rest on), HR's distribution per
department with the release button, the calibration alert, and the released grade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut
from cards.model import (
    Actions,
    Button,
    Card,
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
from storage.grade_scales import Deviation


@action("grades.propose")
class GradePropose(Action):
    cycle_id: int
    person_id: int


@action("grades.release")
class GradesRelease(Action):
    cycle_id: int
    confirm: bool = False


@dataclass(frozen=True)
class DepartmentRow:
    name: str
    counts: dict[str, int]
    deviations: list[Deviation]


def proposal_card(
    t: Translator,
    *,
    cycle_id: int,
    cycle_code: str,
    person_id: int,
    person_name: str,
    facts: Sequence[tuple[str, str]],
    scale: Sequence[str],
    current: str | None,
    error: str | None = None,
) -> Card:
    title = t("grades.propose_title", name=person_name, cycle=cycle_code)
    elements: list[Any] = [
        Fields(items=[KeyValue(label=cut(k, 40), value=cut(v, 200)) for k, v in facts[:20]]),
    ]
    if current:
        elements.append(Note(text=t("grades.current", grade=current)))
    if error:
        elements.append(Note(text=cut(error, 300)))
    elements.append(
        Form(
            name="grade",
            inputs=[
                Select(
                    name="grade",
                    label=t("grades.grade_label"),
                    options=[Option(label=g, value=g) for g in scale],
                    required=True,
                    default=current,
                ),
                TextInput(
                    name="reason",
                    label=t("grades.reason_label"),
                    placeholder=t("grades.reason_hint"),
                    multiline=True,
                    required=True,
                    max_length=1000,
                ),
            ],
            submit=Button(
                label=t("grades.propose_submit"),
                value=pack(GradePropose(cycle_id=cycle_id, person_id=person_id)),
                style="primary",
            ),
        )
    )
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if error else "blue"),
        elements=elements,
        summary=cut(title, 100),
    )


def _deviation_text(t: Translator, d: Deviation) -> str:
    return t(
        f"grades.deviation_{d.rule}",
        grade=d.grade,
        share=f"{d.share:.0%}",
        low=f"{max(d.low, 0.0):.0%}",
        high=f"{min(d.high, 1.0):.0%}",
    )


def distribution_card(
    t: Translator,
    *,
    cycle_id: int,
    cycle_code: str,
    scale: Sequence[str],
    rows: Sequence[DepartmentRow],
    released: bool,
    confirm: bool = False,
) -> Card:
    title = t("grades.dist_title", cycle=cycle_code)
    items = []
    warnings: list[str] = []
    for row in rows[:20]:
        total = sum(row.counts.values())
        value = " · ".join(f"{g} {row.counts.get(g, 0)}" for g in scale) + f" ({total})"
        flag = " ⚠" if row.deviations else ""
        items.append(KeyValue(label=cut(row.name + flag, 40), value=cut(value, 200)))
        warnings.extend(f"{row.name}: {_deviation_text(t, d)}" for d in row.deviations)
    elements: list[Any] = [Fields(items=items) if items else Markdown(text=t("grades.none"))]
    if warnings:
        elements.append(Markdown(text=cut(t("grades.dist_warnings") + "\n" + "\n".join(warnings), 2000)))
    if released:
        elements.append(Note(text=t("grades.already_released")))
    else:
        label = "grades.release_anyway" if confirm else "grades.release"
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=t(label),
                        value=pack(GradesRelease(cycle_id=cycle_id, confirm=confirm)),
                        style="danger" if confirm else "primary",
                    )
                ]
            )
        )
    return Card(
        header=Header(title=cut(title, 60), colour="purple"), elements=elements, summary=cut(title, 100)
    )


def alert_card(t: Translator, *, cycle_code: str, department: str, deviations: Sequence[Deviation]) -> Card:
    title = t("grades.alert_title", department=department, cycle=cycle_code)
    lines = "\n".join(f"- {_deviation_text(t, d)}" for d in deviations)
    return Card(
        header=Header(title=cut(title, 60), colour="red"),
        elements=[Markdown(text=cut(t("grades.alert_body", department=department) + "\n" + lines, 2000))],
        summary=cut(title, 100),
    )


def released_card(t: Translator, *, cycle_code: str, grade: str) -> Card:
    title = t("grades.released_title", cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60), colour="green"),
        elements=[Markdown(text=t("grades.released_body", cycle=cycle_code, grade=grade))],
        summary=cut(title, 100),
    )
