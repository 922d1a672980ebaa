"""Company and department objective cards (issue 17 item 2): the form a leader, HR admin or department head
fills for the running cycle, and the summary after saving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_common import clip
from cards.goal_actions import ObjectiveSubmit
from cards.goals import ParentChoice, objective_inputs, parent_select
from cards.model import Button, Card, Element, Form, Header, Input, Markdown, Note

MAX_OBJECTIVES = 5
"""Objective, key results and (for a department) the company objective: three inputs, five objectives."""


@dataclass(frozen=True)
class ObjectiveRow:
    """One objective as the form shows it; ``parent``/``suggested`` as on the goals form."""

    objective: str
    key_results: str
    parent: str = ""
    suggested: str = ""

    @property
    def empty(self) -> bool:
        return not (self.objective or self.key_results)


@dataclass(frozen=True)
class ObjectiveView:
    objective: str
    key_results: Sequence[str] = field(default_factory=tuple)
    aligned_to: str | None = None
    children: int = 0


def _title(t: Translator, key: str, code: str, department: str | None) -> str:
    if department is None:
        return t(f"objectives.{key}_company", code=code)[:60]
    return t(f"objectives.{key}_department", department=clip(department, 20), code=code)[:60]


def objectives_form_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    department_id: int | None,
    department: str | None,
    max_key_results: int,
    choices: Sequence[ParentChoice] = (),
    parent_required: bool = False,
    defaults: Sequence[ObjectiveRow] = (),
    kept: Sequence[str] = (),
    error: str | None = None,
    warning: str | None = None,
) -> Card:
    """``department`` None: the company's objectives. ``choices``: the company objectives a department
    objective may align to (none for the company form). ``kept``: objectives that stay whatever is
    submitted, because goals are aligned to them."""
    inputs: list[Input] = []
    for i in range(1, MAX_OBJECTIVES + 1):
        row = defaults[i - 1] if i <= len(defaults) else None
        inputs += objective_inputs(
            t,
            i,
            label=t("objectives.objective", n=i),
            objective=row.objective if row else "",
            key_results=row.key_results if row else "",
            max_key_results=max_key_results,
        )
        if department_id is not None and choices:
            select = parent_select(
                t,
                f"parent_{i}",
                t("objectives.parent", n=i),
                choices,
                chosen=row.parent if row else "",
                suggested=row.suggested if row else "",
                allow_none=not parent_required,
            )
            # Only the first objective must be there: a later one's parent is checked on submit when it is
            # filled in, so an empty slot neither blocks the form nor adds a question in chat.
            inputs.append(select.model_copy(update={"required": select.required and i == 1}))
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=t("goals.error", error=error)[:2000]))
    elif warning:
        elements.append(Markdown(text=warning[:2000]))
    intro = "objectives.intro_company" if department_id is None else "objectives.intro_department"
    elements.append(Markdown(text=t(intro, max=MAX_OBJECTIVES, max_krs=max_key_results)[:2000]))
    if kept:
        listed = "、".join(f"“{clip(k, 40)}”" for k in kept)
        elements.append(Note(text=t("objectives.kept_note", objectives=listed)[:300]))
    elements.append(
        Form(
            name="objectives",
            inputs=inputs,
            submit=Button(
                label=t("common.submit"),
                value=pack(ObjectiveSubmit(cycle_id=cycle_id, department_id=department_id)),
                style="primary",
            ),
        )
    )
    title = _title(t, "form_title", code, department)
    return Card(
        header=Header(title=title, colour="red" if error else "orange" if warning else "blue"),
        elements=elements,
        summary=title[:100],
    )


def objectives_text(t: Translator, views: Sequence[ObjectiveView]) -> str:
    blocks = []
    for i, v in enumerate(views, start=1):
        lines = [t("objectives.line", n=i, objective=clip(v.objective, 120))]
        lines += [t("goals.kr_line", text=clip(kr, 160)) for kr in v.key_results]
        if v.aligned_to:
            lines.append(t("goals.aligned", parent=clip(v.aligned_to, 80)))
        if v.children:
            lines.append(t("objectives.children", count=v.children))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)[:2000] or t("goals.none_yet")


def objectives_saved_card(
    t: Translator,
    *,
    code: str,
    department: str | None,
    views: Sequence[ObjectiveView],
    kept: Sequence[str],
    note: str,
) -> Card:
    """After saving: every objective of the level now (kept ones included), and which were kept."""
    elements: list[Element] = [Markdown(text=objectives_text(t, views))]
    if kept:
        listed = "、".join(f"“{clip(k, 40)}”" for k in kept)
        elements.append(Markdown(text=t("objectives.kept", objectives=listed)[:2000]))
    elements.append(Note(text=note[:300]))
    title = _title(t, "saved_title", code, department)
    return Card(header=Header(title=title, colour="green"), elements=elements, summary=title[:100])
