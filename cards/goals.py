"""Goal cards: the entry form (objectives with their key results, weights and alignment), the employee's
summary, the manager's review and the team overview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cards.actions import pack
from cards.catalogue import Translator
from cards.flow_actions import GoalsConfirm, GoalsCopy, GoalsEdit, GoalsReturn, GoalsReview, GoalsSubmit
from cards.flow_common import clip, reason_input
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

MAX_GOALS_ON_CARD = 5
"""A form holds at most 15 inputs: five goals of objective, key results and weight."""
MAX_INPUTS = 15
KR_BOX_LENGTH = 1000
NO_PARENT = "none"
"""The "不对齐" option's value (a goal id is all digits, so the two never meet)."""


@dataclass(frozen=True)
class ParentChoice:
    """One objective a goal may align to: ``value`` its id, ``label`` whose it is and what it says."""

    value: str
    label: str


@dataclass(frozen=True)
class GoalRow:
    """One goal as the form shows it. ``parent``: "" (not chosen), ``NO_PARENT`` or an objective's id;
    ``suggested``: the id the bot suggests, marked in the list and pre-selected while nothing is chosen."""

    objective: str
    key_results: str
    weight: str
    parent: str = ""
    suggested: str = ""

    @property
    def empty(self) -> bool:
        return not (self.objective or self.key_results or self.weight)


@dataclass(frozen=True)
class GoalView:
    """One saved goal as a summary shows it: its key results one per line, and where it aligns."""

    objective: str
    weight: int
    key_results: Sequence[str] = field(default_factory=tuple)
    aligned_to: str | None = None
    suggested: bool = False


def layout(*, max_goals: int, has_choices: bool, rows_needed: int) -> tuple[int, bool]:
    """(goal slots, whether each has an alignment select). With a select a goal takes four of the form's
    fifteen inputs, so three goals fit; a form that must show more goals than that (older goals, a cycle
    allowing five) leaves the select out, and unchosen goals take the suggested parent."""
    with_select = has_choices and rows_needed <= MAX_INPUTS // 4
    per_goal = 4 if with_select else 3
    slots = min(max_goals, MAX_INPUTS // per_goal, MAX_GOALS_ON_CARD)
    return max(1, slots, min(rows_needed, MAX_INPUTS // per_goal)), with_select


def parent_select(
    t: Translator,
    name: str,
    label: str,
    choices: Sequence[ParentChoice],
    *,
    chosen: str,
    suggested: str,
    allow_none: bool = True,
) -> Select:
    """The "对齐到" select: the candidates (the suggested one marked) and, last, "不对齐" (unless the
    objective must align: a department objective while the company has objectives)."""
    options = []
    for c in choices:
        text = c.label
        if c.value == suggested:
            mark = t("goals.suggested_mark")
            text = clip(c.label, 60 - len(mark)) + mark
        options.append(Option(label=text[:60], value=c.value))
    options = options[:49]
    if allow_none or not options:
        options.append(Option(label=t("goals.parent_none"), value=NO_PARENT))
    values = {o.value for o in options}
    default = chosen if chosen in values else suggested if suggested in values else None
    return Select(name=name, label=label[:60], options=options, required=not allow_none, default=default)


def objective_inputs(
    t: Translator, i: int, *, label: str, objective: str, key_results: str, max_key_results: int
) -> list[Input]:
    """The two inputs every slot of the goals and objectives forms starts with: the objective, and its key
    results one per line (both required in the first slot only)."""
    return [
        TextInput(
            name=f"objective_{i}", label=label, required=i == 1, max_length=300, default=objective or None
        ),
        TextInput(
            name=f"key_results_{i}",
            label=t("goals.key_results", n=i, max=max_key_results)[:60],
            placeholder=t("goals.key_results_placeholder")[:100],
            multiline=True,
            required=i == 1,
            max_length=KR_BOX_LENGTH,
            default=key_results or None,
        ),
    ]


def goals_text(t: Translator, views: Sequence[GoalView]) -> str:
    if not views:
        return t("goals.none_yet")
    blocks = []
    for i, v in enumerate(views, start=1):
        lines = [t("goals.line", n=i, objective=clip(v.objective, 120), weight=v.weight)]
        lines += [t("goals.kr_line", text=clip(kr, 160)) for kr in v.key_results]
        if v.aligned_to:
            key = "goals.aligned_suggested" if v.suggested else "goals.aligned"
            lines.append(t(key, parent=clip(v.aligned_to, 80)))
        else:
            lines.append(t("goals.unaligned"))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)[:2000]


def goals_form_card(
    t: Translator,
    *,
    cycle_id: int,
    code: str,
    max_goals: int,
    max_key_results: int,
    choices: Sequence[ParentChoice] = (),
    defaults: Sequence[GoalRow] = (),
    error: str | None = None,
    warning: str | None = None,
    returned_comment: str | None = None,
) -> Card:
    """``error``: the form cannot be saved as it is (red). ``warning``: it can, but the vague-word guard asks
    once to sharpen it (orange); either way ``defaults`` carries what the person typed."""
    needed = max((i + 1 for i, r in enumerate(defaults) if not r.empty), default=0)
    slots, with_select = layout(max_goals=max_goals, has_choices=bool(choices), rows_needed=needed)
    inputs: list[Input] = []
    for i in range(1, slots + 1):
        row = defaults[i - 1] if i <= len(defaults) else None
        inputs += [
            *objective_inputs(
                t,
                i,
                label=t("goals.objective", n=i),
                objective=row.objective if row else "",
                key_results=row.key_results if row else "",
                max_key_results=max_key_results,
            ),
            TextInput(
                name=f"weight_{i}",
                label=t("goals.weight", n=i),
                max_length=4,
                placeholder=t("goals.weight_placeholder"),
                default=row.weight if row and row.weight else None,
            ),
        ]
        if with_select:
            inputs.append(
                parent_select(
                    t,
                    f"parent_{i}",
                    t("goals.parent", n=i),
                    choices,
                    chosen=row.parent if row else "",
                    suggested=row.suggested if row else "",
                )
            )
    elements: list[Element] = []
    if error:
        elements.append(Markdown(text=t("goals.error", error=error)[:2000]))
    elif warning:
        elements.append(Markdown(text=warning[:2000]))
    if returned_comment:
        elements.append(Markdown(text=t("goals.returned_with", comment=clip(returned_comment, 1000))))
    intro = t("goals.form_intro", max_goals=slots, max_krs=max_key_results)
    if choices and not with_select:
        intro += "\n" + t("goals.form_no_select")
    elements += [
        Markdown(text=intro[:2000]),
        Form(
            name="goals",
            inputs=list(inputs),
            submit=Button(
                label=t("common.submit"), value=pack(GoalsSubmit(cycle_id=cycle_id)), style="primary"
            ),
        ),
        Actions(buttons=[Button(label=t("goals.copy_last"), value=pack(GoalsCopy(cycle_id=cycle_id)))]),
    ]
    return Card(
        header=Header(
            title=t("goals.form_title", code=code)[:60],
            colour="red" if error else "orange" if warning else "blue",
        ),
        elements=elements,
        summary=t("goals.form_title", code=code)[:100],
    )


def goals_submitted_card(
    t: Translator, *, cycle_id: int, code: str, views: Sequence[GoalView], note: str, extra: str | None = None
) -> Card:
    """What the employee sees after submitting: the goals, and an Edit button until the manager confirms.
    ``extra``: something the save changed beyond the goals themselves (goals aligned to a removed one)."""
    elements: list[Element] = [Markdown(text=goals_text(t, views))]
    if extra:
        elements.append(Markdown(text=extra[:2000]))
    elements += [
        Note(text=note[:300]),
        Actions(buttons=[Button(label=t("goals.edit"), value=pack(GoalsEdit(cycle_id=cycle_id)))]),
    ]
    return Card(
        header=Header(title=t("goals.submitted_title", code=code)[:60], colour="green"),
        elements=elements,
        summary=t("goals.submitted_title", code=code)[:100],
    )


def goals_review_card(
    t: Translator,
    *,
    participant_id: int,
    employee_name: str,
    code: str,
    views: Sequence[GoalView],
    comment_default: str | None = None,
    warning: str | None = None,
) -> Card:
    elements: list[Element] = [Markdown(text=goals_text(t, views))]
    if warning:
        elements.append(Markdown(text=warning[:2000]))
    elements += [
        Actions(
            buttons=[
                Button(
                    label=t("goals.confirm"),
                    style="primary",
                    value=pack(GoalsConfirm(participant_id=participant_id)),
                )
            ]
        ),
        Form(
            name="goals_return",
            inputs=[reason_input(t("goals.return_comment"), None, comment_default, name="comment")],
            submit=Button(
                label=t("goals.return"),
                value=pack(GoalsReturn(participant_id=participant_id)),
                style="danger",
            ),
        ),
    ]
    title = t("goals.review_title", name=employee_name, code=code)[:60]
    return Card(
        header=Header(title=title, colour="orange" if warning else "blue"),
        elements=elements,
        summary=title[:100],
    )


def team_card(t: Translator, *, code: str, members: Sequence[tuple[str, str, int]]) -> Card:
    """``members``: (name, goals status, participant id). Those awaiting review get a button each."""
    items = [KeyValue(label=clip(name, 40), value=t(f"goals.status_{status}")) for name, status, _ in members]
    elements: list[Element] = [Fields(items=items[:20]) if items else Markdown(text=t("goals.team_empty"))]
    waiting = [(name, pid) for name, status, pid in members if status == "submitted"]
    buttons = [
        Button(
            label=t("goals.review_button", name=name[:12])[:20], value=pack(GoalsReview(participant_id=pid))
        )
        for name, pid in waiting
    ]
    for start in range(0, min(len(buttons), 60), 6):
        elements.append(Actions(buttons=buttons[start : start + 6]))
    if not waiting:
        elements.append(Note(text=t("goals.team_nothing_waiting")))
    return Card(
        header=Header(title=t("goals.team_title", code=code)[:60]),
        elements=elements[:30],
        summary=t("goals.team_title", code=code)[:100],
    )
