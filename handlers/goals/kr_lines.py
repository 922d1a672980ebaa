"""The key results of one goal as numbered, editable lines, and back: the monthly adjustment form (issue 17
item 6) shows each goal's key results in one text box, which works the same on a Feishu form and in a WeCom
or DingTalk chat (one question per goal)::

    1. 签约 20 家客户
    2. 3 月 31 日前上线计费系统 [40%]
    3. 交付：迁移方案文档（里程碑：设计 2026-12-01, 评审）

Each line is read by the goals form's own parser (``handlers.goals.kr_parse``: the same key-result language,
the same refusals) and written back by its ``format_kr``; this module only adds the number in front. The
number names an existing key result (its position in the goal), so an edited target keeps the key result's
id and its value history; a line without a number, or with one no key result has, is a new key result; a
key result whose line is gone is removed. A key result's id is never typed or shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.goals.kr_parse import Milestone, ParsedKr, format_kr, parse_kr
from handlers.goals.progress import KrKind

_REF = re.compile(r"^\s*(?:KR\s*)?(\d{1,2})\s*[.、．)）:：](?=\s*\D)\s*", re.IGNORECASE)
_LINES = re.compile(r"[\r\n;；]+")


@dataclass(frozen=True, slots=True)
class EditedLine:
    """One line as read: ``ref`` the position it names (None: a new key result)."""

    ref: int | None
    kr: ParsedKr
    text: str


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def parsed_of(kr: Mapping[str, Any]) -> ParsedKr:
    """A version's key result (``handlers.goals.versions.kr_entry``) as the parser would have read it."""
    milestones = tuple(
        Milestone(str(m.get("name") or ""), _day(m.get("due")))
        for m in kr.get("milestones") or []
        if isinstance(m, dict) and m.get("name")
    )
    return ParsedKr(
        title=str(kr.get("title") or ""),
        kind=KrKind(kr.get("kind") or KrKind.NUMBER),
        unit=kr.get("unit"),
        start=float(kr.get("start") or 0.0),
        target=None if kr.get("target") is None else float(kr["target"]),
        target_date=_day(kr.get("target_date")),
        deadline=_day(kr.get("deadline")),
        milestones=milestones,
        weight=int(kr.get("weight") or 0),
    )


def line_of(kr: Mapping[str, Any]) -> str:
    """One key result as a line (cards quote it; the form shows it behind its number)."""
    return format_kr(parsed_of(kr))


def lines_of(krs: Sequence[Mapping[str, Any]]) -> str:
    """A goal's key results as the form's default text, numbered from 1."""
    return "\n".join(f"{i}. {line_of(kr)}" for i, kr in enumerate(krs, start=1))


def split(text: str) -> list[str]:
    """The non-empty lines of a text box (a chat answer may separate them with "；")."""
    return [line.strip() for line in _LINES.split(text or "") if line.strip()]


def read_line(line: str, ref_day: date) -> EditedLine:
    """One line → (the position it names, the key result). Raises ``kr_parse.KrRefused``."""
    found = _REF.match(line)
    ref = int(found.group(1)) if found else None
    rest = line[found.end() :] if found else line
    return EditedLine(ref, parse_kr(rest, ref_day), rest.strip())


def entry_of(kr: ParsedKr, base: Mapping[str, Any] | None) -> dict[str, Any]:
    """A version's key-result entry for a line: the key result it names (id kept) with what the line now
    says, or a new one (``"id": None``). A milestone keeps its "done" mark while its name stays."""
    done = {
        str(m.get("name")): bool(m.get("done"))
        for m in (base or {}).get("milestones") or []
        if isinstance(m, dict)
    }
    return {
        "id": base.get("id") if base is not None else None,
        "title": kr.title,
        "kind": str(kr.kind),
        "unit": kr.unit if kr.kind == KrKind.NUMBER else None,
        "start": kr.start if kr.kind == KrKind.NUMBER else 0.0,
        "target": kr.target if kr.kind == KrKind.NUMBER else None,
        "target_date": kr.target_date.isoformat() if kr.target_date else None,
        "deadline": kr.deadline.isoformat() if kr.deadline else None,
        "milestones": [{**m.as_json(), "done": done.get(m.name, False)} for m in kr.milestones],
        "weight": kr.weight,
    }
