"""The key-result box of a goal or objective form: one text input, one key result per line (issue 17 items 1
and 8). Every line goes through the parser (``kr_parse``); a line it cannot read into a measurable target is
refused with a concrete example, naming the goal and the line. Shared by a person's goals form and the
company and department objectives form, so "measurable" means the same at every level of the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.core.vague import is_vague
from cards.catalogue import Translator
from cards.flow_common import clip
from handlers.goals.kr_lines import line_of
from handlers.goals.kr_parse import KrRefused, ParsedKr, parse_kr, split_lines
from handlers.goals.progress import KrKind
from handlers.goals.versions import kr_entry
from storage.models import KeyResult
from storage.queries.goals import KrDraft


@dataclass(frozen=True)
class KrBox:
    krs: list[ParsedKr]
    errors: list[str]


def read_box(t: Translator, text: str, *, n: int, ref: date, max_krs: int) -> KrBox:
    """The key results of goal ``n`` (1-based, for the messages) as typed in its box; ``ref`` is the day
    year-less dates count from (the cycle's first day)."""
    lines = split_lines(text)
    if not lines:
        return KrBox([], [t("goals.kr_missing", n=n)])
    errors: list[str] = []
    if len(lines) > max_krs:
        errors.append(t("goals.kr_too_many", n=n, count=len(lines), max=max_krs))
    krs: list[ParsedKr] = []
    for k, line in enumerate(lines, start=1):
        try:
            krs.append(parse_kr(line, ref))
        except KrRefused as refused:
            where = t("goals.kr_where", n=n, k=k, line=clip(line, 60))
            errors.append(t(f"goals.kr_{refused.reason.value}", where=where))
    weights = [kr.weight for kr in krs]
    if not errors and any(weights) and (not all(weights) or sum(weights) != 100):
        errors.append(t("goals.kr_weights", n=n, total=sum(weights)))
    return KrBox(krs, errors)


def draft_of(kr: ParsedKr) -> KrDraft:
    number = kr.kind == KrKind.NUMBER
    return KrDraft(
        title=kr.title,
        kind=kr.kind.value,
        unit=kr.unit if number else None,
        start=kr.start if number else 0.0,
        target=kr.target if number else None,
        target_date=kr.target_date,
        current=kr.current if number else None,
        deadline=kr.deadline,
        milestones=[m.as_json() for m in kr.milestones],
        weight=kr.weight,
    )


def vague_kr(krs: Sequence[ParsedKr]) -> str:
    """The work named by the first date or deliverable key result that names only a direction
    ("3 月 31 日前提升团队能力": the date is checkable, "提升团队能力" is not), or "". A number key result
    is measured by its number."""
    for kr in krs:
        if kr.kind != KrKind.NUMBER and is_vague(kr.what):
            return kr.what
    return ""


def row_lines(krs: Sequence[KeyResult]) -> str:
    """Stored key results as the box's text, one line each (what the form shows again)."""
    return "\n".join(line_of(kr_entry(kr)) for kr in krs)
