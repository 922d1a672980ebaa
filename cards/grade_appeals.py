"""Cards for a grade after release: HR's correction (form, and the card telling the person), the employee's
appeal (form, "received" card with a withdraw button), the HRBP's decision card (uphold or change, with a
reason, in one form) and the outcome card the person gets, coloured by the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut
from cards.flow_common import form_card, grade_select, reason_input
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
)

Outcome = Literal["upheld", "changed"]
DECISIONS: tuple[Outcome, ...] = ("upheld", "changed")


@action("grades.appeal_start")
class GradeAppealStart(Action):
    """Open the appeal form for one's own released grade."""

    grade_id: int


@action("grades.appeal_file")
class GradeAppealFile(Action):
    """Submit the appeal form (``reason``)."""

    grade_id: int


@action("grades.appeal_withdraw")
class GradeAppealWithdraw(Action):
    appeal_id: int


@action("grades.appeal_decide")
class GradeAppealDecide(Action):
    """The HRBP's one form: ``decision`` (upheld / changed), ``grade`` (when changed), ``reason``."""

    appeal_id: int


@action("grades.correct")
class GradeCorrect(Action):
    """HR's correction of a released grade: ``grade`` and ``reason``."""

    grade_id: int


def appeal_form_card(
    t: Translator,
    *,
    grade_id: int,
    cycle_code: str,
    grade: str,
    closes: str,
    decider: str,
    error: str | None = None,
    reason: str | None = None,
) -> Card:
    title = t("grade_appeals.form_title", cycle=cycle_code)
    elements: list[Any] = [
        Markdown(text=t("grade_appeals.form_body", grade=grade, closes=closes, decider=decider)),
    ]
    form = Form(
        name="appeal",
        inputs=[reason_input(t("grade_appeals.reason_label"), t("grade_appeals.reason_hint"), reason)],
        submit=Button(
            label=t("grade_appeals.submit"),
            value=pack(GradeAppealFile(grade_id=grade_id)),
            style="primary",
        ),
    )
    return form_card(title, elements, form, error=error, colour="blue")


def appeal_received_card(
    t: Translator,
    *,
    appeal_id: int,
    cycle_code: str,
    grade: str,
    reason: str,
    decider: str,
    filed_at: str,
    live: bool = True,
) -> Card:
    """What the person sees after appealing; ``live`` keeps the withdraw button (gone once decided)."""
    title = t("grade_appeals.received_title", cycle=cycle_code)
    elements: list[Any] = [
        Fields(
            items=[
                KeyValue(label=t("grade_appeals.grade"), value=grade),
                KeyValue(label=t("grade_appeals.filed_at"), value=filed_at),
                KeyValue(label=t("grade_appeals.your_reason"), value=cut(reason, 200)),
            ]
        ),
        Markdown(text=t("grade_appeals.received_next", decider=decider)),
    ]
    if live:
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=t("grade_appeals.withdraw"),
                        value=pack(GradeAppealWithdraw(appeal_id=appeal_id)),
                    )
                ]
            )
        )
    return Card(header=Header(title=cut(title, 60)), elements=elements, summary=cut(title, 100))


def decision_card(
    t: Translator,
    *,
    appeal_id: int,
    person_name: str,
    cycle_code: str,
    grade: str,
    grade_reason: str | None,
    appeal_reason: str,
    filed_at: str,
    scale: Sequence[str],
    error: str | None = None,
    decision: str | None = None,
    new_grade: str | None = None,
    reason: str | None = None,
) -> Card:
    """Uphold or change in ONE form: a grade picked with "uphold" is ignored, a change needs a new grade."""
    title = t("grade_appeals.decide_title", name=person_name, cycle=cycle_code)
    elements: list[Any] = [
        Fields(
            items=[
                KeyValue(label=t("grade_appeals.grade"), value=grade),
                KeyValue(label=t("grade_appeals.grade_reason"), value=cut(grade_reason or "—", 200)),
                KeyValue(label=t("grade_appeals.appeal_reason"), value=cut(appeal_reason, 200)),
                KeyValue(label=t("grade_appeals.filed_at"), value=filed_at),
            ]
        ),
        Markdown(text=t("grade_appeals.decide_body", name=person_name)),
    ]
    form = Form(
        name="decision",
        inputs=[
            Select(
                name="decision",
                label=t("grade_appeals.decision_label"),
                options=[Option(label=t(f"grade_appeals.decision.{d}"), value=d) for d in DECISIONS],
                required=True,
                default=decision if decision in DECISIONS else None,
            ),
            grade_select(
                t("grade_appeals.new_grade_label"),
                scale,
                new_grade if new_grade in scale else None,
                required=False,
            ),
            reason_input(
                t("grade_appeals.decision_reason_label"), t("grade_appeals.decision_reason_hint"), reason
            ),
        ],
        submit=Button(
            label=t("grade_appeals.decide_submit"),
            value=pack(GradeAppealDecide(appeal_id=appeal_id)),
            style="primary",
        ),
    )
    return form_card(title, elements, form, error=error, colour="orange")


def outcome_card(
    t: Translator, *, cycle_code: str, outcome: Outcome, before: str, after: str, reason: str, decider: str
) -> Card:
    """The person's answer, green when the grade changed and grey when it stands, with what happens next."""
    title = t(f"grade_appeals.outcome_title.{outcome}", cycle=cycle_code)
    body = t(f"grade_appeals.outcome_body.{outcome}", before=before, after=after, decider=decider)
    return Card(
        header=Header(title=cut(title, 60), colour="green" if outcome == "changed" else "grey"),
        elements=[
            Markdown(text=body),
            Fields(items=[KeyValue(label=t("grade_appeals.decision_reason"), value=cut(reason, 200))]),
            Note(text=t(f"grade_appeals.outcome_next.{outcome}", grade=after)),
        ],
        summary=cut(title, 100),
    )


def correction_form_card(
    t: Translator,
    *,
    grade_id: int,
    person_name: str,
    cycle_code: str,
    grade: str,
    grade_reason: str | None,
    released_on: str,
    scale: Sequence[str],
    error: str | None = None,
    new_grade: str | None = None,
    reason: str | None = None,
) -> Card:
    title = t("grade_appeals.correct_title", name=person_name, cycle=cycle_code)
    elements: list[Any] = [
        Fields(
            items=[
                KeyValue(label=t("grade_appeals.grade"), value=grade),
                KeyValue(label=t("grade_appeals.released_on"), value=released_on),
                KeyValue(label=t("grade_appeals.grade_reason"), value=cut(grade_reason or "—", 200)),
            ]
        ),
        Markdown(text=t("grade_appeals.correct_body", name=person_name)),
    ]
    form = Form(
        name="correct",
        inputs=[
            grade_select(
                t("grade_appeals.new_grade_label"), scale, new_grade if new_grade in scale else None
            ),
            reason_input(
                t("grade_appeals.correct_reason_label"), t("grade_appeals.decision_reason_hint"), reason
            ),
        ],
        submit=Button(
            label=t("grade_appeals.correct_submit"),
            value=pack(GradeCorrect(grade_id=grade_id)),
            style="danger",
        ),
    )
    return form_card(title, elements, form, error=error, colour="purple")


def corrected_card(
    t: Translator, *, grade_id: int, cycle_code: str, before: str, after: str, reason: str, closes: str
) -> Card:
    """The person is told: old and new grade, HR's reason, and until when they may appeal the new one."""
    title = t("grade_appeals.corrected_title", cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60), colour="orange"),
        elements=[
            Markdown(text=t("grade_appeals.corrected_body", cycle=cycle_code, before=before, after=after)),
            Fields(items=[KeyValue(label=t("grade_appeals.correct_reason"), value=cut(reason, 200))]),
            Note(text=t("grade_appeals.may_appeal", closes=closes)),
            Actions(
                buttons=[
                    Button(
                        label=t("grade_appeals.appeal_button"),
                        value=pack(GradeAppealStart(grade_id=grade_id)),
                    )
                ]
            ),
        ],
        summary=cut(title, 100),
    )
