"""Grade cards: the manager's proposal (with the facts it should rest on), HR's distribution per
department, the release confirmation (how many are released, how many are still ungraded, the calibration
warnings HR must have seen), the list of who is ungraded, the calibration alert, and the released grade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut
from cards.flow_common import form_card, grade_select, reason_input
from cards.grade_appeals import GradeAppealStart
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
)
from storage.grade_scales import Deviation


@action("grades.propose")
class GradePropose(Action):
    cycle_id: int
    person_id: int


@action("grades.release")
class GradesRelease(Action):
    """Without ``confirm``: show the release confirmation. With it: release, if what the confirmation
    showed still holds and every calibration warning has been seen."""

    cycle_id: int
    confirm: bool = False


@action("grades.alert_seen")
class GradesAlertSeen(Action):
    """HR has read the calibration warnings shown on the release confirmation."""

    cycle_id: int


@action("grades.ungraded")
class GradesUngraded(Action):
    """Who in this cycle has no grade yet (sent as a separate card, so the confirmation stays)."""

    cycle_id: int


@action("grades.review")
class GradesReview(Action):
    """HR has reviewed a department whose grades the calibration check locked: unlock them."""

    cycle_id: int
    department_id: int


@dataclass(frozen=True)
class DepartmentRow:
    name: str
    counts: dict[str, int]
    deviations: list[Deviation]


@dataclass(frozen=True)
class Progress:
    """How far grading has got in one cycle: participants, grades proposed (not yet released), released, and
    proposed grades locked by a calibration anomaly until HR reviews them (never released while locked)."""

    participants: int
    proposed: int
    released: int
    locked: int = 0

    @property
    def ungraded(self) -> int:
        return max(self.participants - self.proposed - self.released - self.locked, 0)


@dataclass(frozen=True)
class Ungraded:
    name: str
    department: str | None
    manager: str | None


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
    grade: str | None = None,
    reason: str | None = None,
) -> Card:
    """``grade`` and ``reason`` are what was just submitted: a bounced form shows them again as entered."""
    title = t("grades.propose_title", name=person_name, cycle=cycle_code)
    elements: list[Any] = [
        Fields(items=[KeyValue(label=cut(k, 40), value=cut(v, 200)) for k, v in facts[:20]]),
    ]
    if current:
        elements.append(Note(text=t("grades.current", grade=current)))
    form = Form(
        name="grade",
        inputs=[
            grade_select(t("grades.grade_label"), scale, grade if grade in scale else current),
            reason_input(t("grades.reason_label"), t("grades.reason_hint"), reason),
        ],
        submit=Button(
            label=t("grades.propose_submit"),
            value=pack(GradePropose(cycle_id=cycle_id, person_id=person_id)),
            style="primary",
        ),
    )
    return form_card(title, elements, form, error=error, colour="blue")


def _deviation_text(t: Translator, d: Deviation) -> str:
    return t(
        f"grades.deviation_{d.rule}",
        grade=d.grade,
        share=f"{d.share:.0%}",
        low=f"{max(d.low, 0.0):.0%}",
        high=f"{min(d.high, 1.0):.0%}",
    )


def _department_lines(
    t: Translator, scale: Sequence[str], rows: Sequence[DepartmentRow]
) -> tuple[list[KeyValue], list[str]]:
    items = []
    warnings: list[str] = []
    for row in rows[:20]:
        total = sum(row.counts.values())
        value = " · ".join(f"{g} {row.counts.get(g, 0)}" for g in scale) + f" ({total})"
        flag = " ⚠" if row.deviations else ""
        items.append(KeyValue(label=cut(row.name + flag, 40), value=cut(value, 200)))
        warnings.extend(f"{row.name}: {_deviation_text(t, d)}" for d in row.deviations)
    return items, warnings


def _progress_text(t: Translator, progress: Progress) -> str:
    text = t(
        "grades.progress",
        graded=progress.proposed + progress.released + progress.locked,
        total=progress.participants,
        released=progress.released,
        ungraded=progress.ungraded,
    )
    return text + (t("grades.progress_locked", n=progress.locked) if progress.locked else "")


def distribution_card(
    t: Translator,
    *,
    cycle_id: int,
    cycle_code: str,
    scale: Sequence[str],
    rows: Sequence[DepartmentRow],
    progress: Progress,
) -> Card:
    """HR's overview. "Release" never releases: it opens the confirmation."""
    title = t("grades.dist_title", cycle=cycle_code)
    items, warnings = _department_lines(t, scale, rows)
    elements: list[Any] = [
        Markdown(text=_progress_text(t, progress)),
        Fields(items=items) if items else Markdown(text=t("grades.none")),
    ]
    if warnings:
        elements.append(Markdown(text=cut(t("grades.dist_warnings") + "\n" + "\n".join(warnings), 2000)))
    buttons = []
    if progress.proposed:
        buttons.append(
            Button(
                label=t("grades.release"),
                value=pack(GradesRelease(cycle_id=cycle_id)),
                style="primary",
            )
        )
    elif progress.released:
        elements.append(Note(text=t("grades.already_released")))
    if progress.ungraded:
        buttons.append(Button(label=t("grades.who_ungraded"), value=pack(GradesUngraded(cycle_id=cycle_id))))
    if buttons:
        elements.append(Actions(buttons=buttons))
    return Card(
        header=Header(title=cut(title, 60), colour="purple"), elements=elements, summary=cut(title, 100)
    )


def release_card(
    t: Translator,
    *,
    cycle_id: int,
    cycle_code: str,
    scale: Sequence[str],
    rows: Sequence[DepartmentRow],
    progress: Progress,
    unseen_warnings: bool,
) -> Card:
    """The confirmation before anyone sees a grade: how many are released now, how many have none yet
    (they get nothing now; their grades can be released later), and the calibration warnings. While a
    warning has not been marked as seen, the card offers "I have read the warnings" instead of "release"."""
    title = t("grades.confirm_title", cycle=cycle_code)
    items, warnings = _department_lines(t, scale, rows)
    facts = [
        KeyValue(label=t("grades.to_release"), value=str(progress.proposed)),
        KeyValue(label=t("grades.ungraded"), value=f"{progress.ungraded} / {progress.participants}"),
    ]
    elements: list[Any] = [Fields(items=facts)]
    if progress.ungraded:
        elements.append(Markdown(text=t("grades.ungraded_warning", n=progress.ungraded)))
    if progress.locked:
        elements.append(Markdown(text=t("grades.locked_warning", n=progress.locked)))
    if items:
        elements.append(Fields(items=items))
    if warnings:
        elements.append(Markdown(text=cut(t("grades.dist_warnings") + "\n" + "\n".join(warnings), 2000)))
    buttons: list[Button] = []
    if unseen_warnings:
        elements.append(Note(text=t("grades.see_alert_first")))
        buttons.append(
            Button(
                label=t("grades.alert_seen"), value=pack(GradesAlertSeen(cycle_id=cycle_id)), style="primary"
            )
        )
    else:
        elements.append(Note(text=t("grades.release_note", n=progress.proposed)))
        buttons.append(
            Button(
                label=t("grades.release_confirm", n=progress.proposed),
                value=pack(GradesRelease(cycle_id=cycle_id, confirm=True)),
                style="danger" if progress.ungraded or warnings else "primary",
            )
        )
    if progress.ungraded:
        buttons.append(Button(label=t("grades.who_ungraded"), value=pack(GradesUngraded(cycle_id=cycle_id))))
    elements.append(Actions(buttons=buttons))
    colour = "red" if unseen_warnings or warnings else "orange"
    return Card(
        header=Header(title=cut(title, 60), colour=colour), elements=elements, summary=cut(title, 100)
    )


def released_summary_card(
    t: Translator, *, cycle_code: str, scale: Sequence[str], rows: Sequence[DepartmentRow], progress: Progress
) -> Card:
    """The confirmation card once the release is done: what went out and what is still missing."""
    title = t("grades.dist_title", cycle=cycle_code)
    items, _ = _department_lines(t, scale, rows)
    elements: list[Any] = [Markdown(text=_progress_text(t, progress))]
    if items:
        elements.append(Fields(items=items))
    return Card(
        header=Header(title=cut(title, 60), colour="purple"), elements=elements, summary=cut(title, 100)
    )


def ungraded_card(t: Translator, *, cycle_code: str, people: Sequence[Ungraded], total: int) -> Card:
    """Who has no grade yet, with department and manager: the person HR would ask to grade them."""
    title = t("grades.ungraded_title", cycle=cycle_code, n=total)
    lines = [
        t(
            "grades.ungraded_line",
            name=p.name,
            department=p.department or "—",
            manager=p.manager or "—",
        )
        for p in people[:50]
    ]
    if total > len(lines):
        lines.append(t("grades.ungraded_more", n=total - len(lines)))
    body = "\n".join(lines) + "\n\n" + t("grades.ungraded_next")
    return Card(
        header=Header(title=cut(title, 60), colour="orange"),
        elements=[Markdown(text=cut(body, 2000))],
        summary=cut(title, 100),
    )


def alert_card(
    t: Translator,
    *,
    cycle_code: str,
    department: str,
    deviations: Sequence[Deviation],
    locked: int = 0,
    review: GradesReview | None = None,
) -> Card:
    """The calibration alert. ``locked`` grades of the department are held until HR reviews them; HR's
    copy carries the ``review`` button that unlocks them, the department head's copy only informs."""
    title = t("grades.alert_title", department=department, cycle=cycle_code)
    lines = "\n".join(f"- {_deviation_text(t, d)}" for d in deviations)
    elements: list[Any] = [
        Markdown(text=cut(t("grades.alert_body", department=department) + "\n" + lines, 2000)),
    ]
    if locked:
        elements.append(Markdown(text=t("grades.alert_locked", n=locked, department=department)))
    elements.append(Note(text=t("grades.alert_note")))
    if review is not None:
        elements.append(
            Actions(buttons=[Button(label=t("grades.review"), value=pack(review), style="primary")])
        )
    return Card(header=Header(title=cut(title, 60), colour="red"), elements=elements, summary=cut(title, 100))


def released_card(
    t: Translator, *, cycle_code: str, grade: str, grade_id: int | None = None, closes: str | None = None
) -> Card:
    """The person's grade; with ``grade_id`` and ``closes``, how to appeal and until when."""
    title = t("grades.released_title", cycle=cycle_code)
    elements: list[Any] = [Markdown(text=t("grades.released_body", cycle=cycle_code, grade=grade))]
    if grade_id is not None and closes is not None:
        elements.append(Note(text=t("grade_appeals.may_appeal", closes=closes)))
        elements.append(
            Actions(
                buttons=[
                    Button(
                        label=t("grade_appeals.appeal_button"),
                        value=pack(GradeAppealStart(grade_id=grade_id)),
                    )
                ]
            )
        )
    return Card(
        header=Header(title=cut(title, 60), colour="green"), elements=elements, summary=cut(title, 100)
    )
