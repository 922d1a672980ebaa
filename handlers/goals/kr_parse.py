"""A key result typed as one line of text, read into a typed, measurable target (issue 17 items 1 and 8).

People write key results the way they say them, so the form takes one line per key result and this module
reads each line into one of three kinds (``progress.KrKind``):

* **number**: a start, a target and a unit. "NPS 从 32 提高到 40", "流失率从 5% 降到 3%", "客户拜访 ≥ 60 次",
  "签约 20 家客户", "收入 500 万元", "Reduce churn from 5% to 3%", "Sign 20 customers". A count or an amount
  with no stated start starts from 0. A line that only says where a level should *go* ("降到 3%", "提高到
  40", "≤ 1 次") must say where it stands now, in the line ("流失率从 5% 降到 3%") or beside it ("流失率降到
  3%（当前 5%）"): without a start there is no progress to compute, and a guessed 0 would be wrong.
* **date**: done by a day. "3 月 31 日前上线计费系统", "2026-06-30 前完成迁移", "Launch billing by
  March 31".
* **deliverable**: a named work product. "交付：迁移方案文档", "完成《数据安全规范》", "Deliver:
  migration plan".

Around the target a line may carry, anywhere: a weight within the objective "[30%]" (all key results of an
objective have one, adding up to 100, or none has: equal shares), a deadline "截止 6/30" / "due 2026-06-30"
(a number with a date in it, "3 月 31 日前签约 20 家客户", takes that date as its deadline), and for dates and
deliverables milestones "（里程碑：设计 4/15, 开发, 上线）" (comma-separated, each with an optional date).

A date without a year is the next such day on or after the reference day (the cycle's first day), so
"1 月 15 日" typed for a Q4 cycle means next January; a date with a year before the reference is refused.

What is refused, each with a reason the form turns into a concrete example: a line with no measurable
target ("提升客户满意度"), two targets in one line, a level without a start, a start already past its target,
an impossible date, a bad weight, milestones on a number. Pure functions: no database, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from handlers.goals.progress import KrKind

MAX_LINE = 200
MAX_MILESTONES = 8


class KrRefusal(StrEnum):
    """Why a line is not a key result; the form's message key is ``goals.kr_<value>``."""

    NO_TARGET = "no_target"
    NO_START = "no_start"
    DIRECTION = "direction"
    TWO_TARGETS = "two_targets"
    BAD_DATE = "bad_date"
    PAST_DATE = "past_date"
    BAD_WEIGHT = "bad_weight"
    MILESTONES_ON_NUMBER = "milestones_on_number"
    UNITS = "units"
    TOO_LONG = "too_long"


class KrRefused(ValueError):
    def __init__(self, reason: KrRefusal, line: str) -> None:
        super().__init__(f"{reason.value}: {line}")
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class Milestone:
    name: str
    due: date | None = None

    def as_json(self) -> dict[str, Any]:
        """The shape ``KeyResult.milestones`` stores."""
        return {"name": self.name, "due": self.due.isoformat() if self.due else None, "done": False}


@dataclass(frozen=True)
class ParsedKr:
    """One key result as read. ``title`` is the line without its weight, deadline, current value and
    milestones; ``what`` is what the vague-word guard reads for a date or a deliverable (the work named,
    without the date that would otherwise make any slogan look concrete)."""

    title: str
    kind: KrKind
    unit: str | None = None
    start: float = 0.0
    target: float | None = None
    target_date: date | None = None
    current: float | None = None
    deadline: date | None = None
    milestones: tuple[Milestone, ...] = ()
    weight: int = 0
    what: str = ""


# ---------------------------------------------------------------------------------------------- lexicon

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?(?!\d)")),
    ("md", re.compile(r"(?<![\d.])(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]")),
    ("m_end", re.compile(r"(?<![\d.])(\d{1,2})\s*月\s*(?:底|末|份?结束)")),
    ("q_end", re.compile(r"(?<![A-Za-z])[Qq]([1-4])\s*(?:末|底|结束|end\b)|\bend of [Qq]([1-4])\b")),
    ("y_end", re.compile(r"年底|年末|\bend of (?:the )?year\b", re.I)),
    ("en_md", re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(\d{{4}})\b)?", re.I)),
    ("en_dm", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\b\.?(?:,?\s*(\d{{4}})\b)?", re.I)),
    ("en_end", re.compile(rf"\bend of ({_MONTH})\b", re.I)),
)
_SLASH_DATE = re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})(?![\d/%.])")
"""6/30: a date only in a deadline clause or next to 前 / by / before, never a fraction (完成 2/3 的迁移)."""
_SLASH_CONTEXT_BEFORE = re.compile(r"(?:by|before|due|截止|截至|于|在)\s*$", re.I)
_SLASH_CONTEXT_AFTER = re.compile(r"^\s*(?:前|之前|以前|为止)")

_NUM = r"(?<![A-Za-z\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_CN_UNITS = (
    "个百分点|百分点|万元|亿元|千元|百万|万|亿|千|元|美元|块|人次|个月|小时|分钟|毫秒|秒|天|周|次|遍|位|名|家|"
    "场|份|条|页|人|轮|项|版|倍|张|篇|套|台|批|期|节|章|件|笔|单|段|户|所|座|辆|吨|度|分|星|级|款|门|支|例|起|处|"
    "间|本|封|个"
)
_UNIT = rf"%|‰|pp\b|ms\b|GB\b|TB\b|MB\b|{_CN_UNITS}"
_MULT = {"k": 1_000.0, "K": 1_000.0, "m": 1_000_000.0, "M": 1_000_000.0}
_EN_STOP = frozenset(
    "to from by before in within per of and or at on the a an for with vs than more less over under due "
    "until till after since this that each every is are be it".split()
)
_TIME_UNITS = frozenset({"个月", "小时", "分钟", "毫秒", "秒", "天", "周"})


def _qty(name: str) -> str:
    """A quantity: optional currency, a number, an optional k/M multiplier, an optional unit."""
    return (
        rf"(?P<{name}_cur>[$¥€£])?\s*(?P<{name}_num>{_NUM})(?:(?P<{name}_mult>[kKmM])(?![A-Za-z]))?"
        rf"(?:\s*(?P<{name}_unit>{_UNIT}))?"
    )


_UP = r"提高|提升|增长|增加|上升|拉升|扩大|升|涨"
_DOWN = r"降低|下降|减少|压缩|缩短|压降|降|减|控制"
_EN_UP = r"increase|raise|grow|boost|improve|lift|push"
_EN_DOWN = r"reduce|cut|lower|decrease|bring down|drop|shrink"
_AT_MOST = r"≤|<=|<|不超过|不高于|不多于|最多|至多|低于|少于|\b(?:at most|no more than|below|under)\b"
_AT_LEAST = (
    r"≥|>=|>|不少于|不低于|至少|最少|达到|达成|超过|高于|做到"
    r"|\b(?:at least|no less than|more than|reach|hit|exceed)\b"
)

_RANGE = re.compile(
    rf"(?:从|由|\bfrom\b)\s*{_qty('a')}\s*[^\d\x00]{{0,12}}?(?:到|至|\bto\b|->|→|=>)\s*(?:≤|<=|≥|>=)?\s*{_qty('b')}"
    rf"|{_qty('c')}\s*(?:->|→|=>)\s*{_qty('d')}",
    re.I,
)
_UP_TO = re.compile(
    rf"(?:{_UP})(?:到|至)\s*{_qty('a')}|\b(?:{_EN_UP})\b[^\d\x00]{{0,40}}?\bto\s+{_qty('b')}", re.I
)
_DOWN_TO = re.compile(
    rf"(?:{_DOWN})(?:到|至|在)\s*(?:≤|<=)?\s*{_qty('a')}|\b(?:{_EN_DOWN})\b[^\d\x00]{{0,40}}?\bto\s+{_qty('b')}",
    re.I,
)
_CEILING = re.compile(
    rf"(?:{_AT_MOST})\s*{_qty('a')}|{_qty('b')}\s*(?:以内|以下|or less\b|or fewer\b)",
    re.I,
)
_FLOOR = re.compile(rf"(?:{_AT_LEAST})\s*{_qty('a')}|{_qty('b')}\s*(?:以上|及以上|or more\b|\+)", re.I)
_BARE = re.compile(_qty("a"), re.I)
_EN_UNIT_WORDS = re.compile(r"(?:\s+[A-Za-z][A-Za-z-]{0,30}){1,3}")

_WEIGHT = re.compile(r"[\[【]\s*(?:权重|weight|w)?\s*[:=]?\s*(\d{1,3})\s*%?\s*[\]】]", re.I)
_MILESTONES = re.compile(
    r"[(（]\s*(?:里程碑|milestones?)\s*[:：]?\s*([^()（）]*)[)）]|(?:里程碑|milestones?)\s*[:：]\s*(.+)$",
    re.I,
)
_DEADLINE = re.compile(
    r"(?P<open>[(（]\s*)?(?:截止|截至|\bdeadline\b|\bdue\b)\s*(?:日期|时间)?\s*[:：]?\s*(?:到|于|on\b|by\b)?\s*",
    re.I,
)
_CLOSE = re.compile(r"^\s*[)）]")
_CURRENT = re.compile(
    rf"(?:[(（]\s*|^|(?<=[,，;；\s]))(?:当前|目前|现在|现为|现状|现|基线|baseline|currently|current|now)"
    rf"\s*(?:值|水平)?\s*(?:为|是|:|=|at)?\s*{_qty('a')}\s*[)）]?",
    re.I,
)
_DELIVER_PREFIX = re.compile(
    r"^\s*(?:交付物?|产出|输出|成果|deliverables?|deliver)\s*[:：]\s*(?P<name>.*)$", re.I
)
_DELIVER_QUOTED = re.compile(
    r"(?:完成|交付|发布|提交|上线|输出|产出|撰写|编写|写完|出版|publish|ship|deliver|complete|finish|write|release"
    r"|launch)\s*(?:the\s+)?(?P<name>《[^》]+》|“[^”]+”|\"[^\"]+\"|「[^」]+」)",
    re.I,
)
_BULLET = re.compile(
    r"^\s*(?:[-*•·▪]\s*|\d{1,2}[.、)](?=\s*\D)\s*|\(\d{1,2}\)\s*|KR\s*\d{1,2}\s*[:.、]\s*)", re.I
)
_GLUE_BEFORE = re.compile(r"^\s*(?:(?:之前|以前|前|为止|内|截止|截至|于|在)|(?:by|before|on|in)\b)?\s*", re.I)
_GLUE_AFTER = re.compile(r"\s*(?:(?:之前|以前|前|为止|截止|截至|于|在)|\b(?:by|before|on|in))?\s*$", re.I)
_TRIM = " \t,，;；。.:：、"
_LINE_SPLIT = re.compile(r"[\r\n;；]+")


# ----------------------------------------------------------------------------------------------- helpers


def _fold(text: str) -> str:
    """Full-width digits, letters and punctuation to ASCII, one character for one, so a position in the
    folded line is the same position in the line as typed (the title keeps the person's own characters)."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out).replace("≧", "≥").replace("≦", "≤")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def fmt_number(x: float) -> str:
    """40.0 → "40", 0.8 → "0.8": how a number is written back into a line."""
    if x == int(x):
        return str(int(x))
    return f"{x:.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Qty:
    value: float
    unit: str | None
    span: tuple[int, int]


def _qty_of(m: re.Match[str], name: str, folded: str) -> _Qty | None:
    num = m.group(f"{name}_num")
    if num is None:
        return None
    value = _number(num)
    mult = m.group(f"{name}_mult")
    if mult:
        value *= _MULT[mult]
    unit = m.group(f"{name}_unit")
    cur = m.group(f"{name}_cur")
    end = m.end(f"{name}_unit") if unit else m.end(f"{name}_mult") if mult else m.end(f"{name}_num")
    if not unit:
        unit, end = _en_unit(folded, end)
    if cur:
        unit = f"{cur}{unit}" if unit else cur
    start = m.start(f"{name}_cur") if cur else m.start(f"{name}_num")
    return _Qty(value, unit[:32] if unit else None, (start, end))


def _en_unit(folded: str, end: int) -> tuple[str | None, int]:
    """The counted noun after a number in English: of the (up to three) words before a preposition or a
    month, the first plural one ("20 new customers", "3 features customers asked for"), else the first."""
    words = _EN_UNIT_WORDS.match(folded, end)
    if words is None:
        return None, end
    found: list[tuple[str, int]] = []
    for w in re.finditer(r"[A-Za-z][A-Za-z-]*", words.group()):
        low = w.group().lower()
        if low in _EN_STOP or low in _MONTHS:
            break
        found.append((low, end + w.end()))
    if not found:
        return None, end
    unit, pos = next(((u, p) for u, p in found if len(u) > 3 and u.endswith("s")), found[0])
    return ("%" if unit == "percent" else unit), pos


def _first_qty(m: re.Match[str], names: tuple[str, ...], folded: str) -> _Qty | None:
    for name in names:
        q = _qty_of(m, name, folded)
        if q is not None:
            return q
    return None


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(a, b):
            chars[i] = "\x00"
    return "".join(chars)


def _valid_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError("no such day") from None


def _on_or_after(month: int, day: int, ref: date) -> date:
    """The day ``month``/``day`` on or after ``ref`` (a year-less date never lies in the past)."""
    for year in range(ref.year, ref.year + 9):  # 29 February waits for a leap year
        try:
            d = date(year, month, day)
        except ValueError:
            if month == 2 and day == 29:
                continue
            raise ValueError("no such day") from None
        if d >= ref:
            return d
    raise ValueError("no such day")


def _month_end(month: int, year: int) -> date:
    return date(year, month, monthrange(year, month)[1])


def _date_of(kind: str, m: re.Match[str], ref: date) -> tuple[date, bool]:
    """(the day, whether a year was written). Raises ValueError for a day that does not exist."""
    g = m.groups()
    if kind == "ymd":
        return _valid_date(int(g[0]), int(g[1]), int(g[2])), True
    if kind == "md":
        return _on_or_after(int(g[0]), int(g[1]), ref), False
    if kind == "m_end":
        month = int(g[0])
        if not 1 <= month <= 12:
            raise ValueError("no such month")
        end = _month_end(month, ref.year)
        return (end if end >= ref else _month_end(month, ref.year + 1)), False
    if kind == "q_end":
        q = int(g[0] or g[1])
        end = _month_end(q * 3, ref.year)
        return (end if end >= ref else _month_end(q * 3, ref.year + 1)), False
    if kind == "y_end":
        return date(ref.year, 12, 31), False
    if kind == "en_end":
        month = _MONTHS[g[0].lower()]
        end = _month_end(month, ref.year)
        return (end if end >= ref else _month_end(month, ref.year + 1)), False
    if kind == "en_md":
        month, day, year = _MONTHS[g[0].lower()], int(g[1]), g[2]
    else:
        day, month, year = int(g[0]), _MONTHS[g[1].lower()], g[2]
    if year:
        return _valid_date(int(year), month, day), True
    return _on_or_after(month, day, ref), False


def _dates_in(folded: str, ref: date, *, slash_anywhere: bool) -> list[tuple[date, bool, tuple[int, int]]]:
    """Every date written in ``folded``: (day, year written, span), in order, overlapping matches dropped."""
    found: list[tuple[date, bool, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(folded):
            if not free(m.start(), m.end()):
                continue
            day, has_year = _date_of(kind, m, ref)
            found.append((day, has_year, m.span()))
            taken.append(m.span())
    for m in _SLASH_DATE.finditer(folded):
        if not free(m.start(), m.end()):
            continue
        in_context = _SLASH_CONTEXT_BEFORE.search(folded[: m.start()]) or _SLASH_CONTEXT_AFTER.match(
            folded[m.end() :]
        )
        if not (slash_anywhere or in_context):
            continue
        found.append((_on_or_after(int(m.group(1)), int(m.group(2)), ref), False, m.span()))
        taken.append(m.span())
    return sorted(found, key=lambda f: f[2])


# ------------------------------------------------------------------------------------------------ parse


def split_lines(text: str) -> list[str]:
    """The key-result lines of one form field: one per line (a chat answer may separate them with "；"),
    list bullets ("1.", "-", "KR1:") removed, blank lines dropped."""
    lines = []
    for raw in _LINE_SPLIT.split(text or ""):
        line = _BULLET.sub("", raw, count=1).strip()
        if line:
            lines.append(line)
    return lines


def parse_kr(line: str, ref: date) -> ParsedKr:
    """Read one key-result line (already split, see ``split_lines``). Raises ``KrRefused``."""
    raw = line.strip()
    if len(raw) > MAX_LINE:
        raise KrRefused(KrRefusal.TOO_LONG, raw[:60])
    folded = _fold(raw)
    cut: list[tuple[int, int]] = []

    def refuse(reason: KrRefusal) -> KrRefused:
        return KrRefused(reason, raw)

    def check_day(day: date, has_year: bool) -> date:
        if has_year and day < ref:
            raise refuse(KrRefusal.PAST_DATE)
        return day

    weight = 0
    weights = list(_WEIGHT.finditer(folded))
    if len(weights) > 1:
        raise refuse(KrRefusal.BAD_WEIGHT)
    if weights:
        weight = int(weights[0].group(1))
        if not 1 <= weight <= 100:
            raise refuse(KrRefusal.BAD_WEIGHT)
        cut.append(weights[0].span())

    milestones: tuple[Milestone, ...] = ()
    found = _MILESTONES.search(_mask(folded, cut))
    if found:
        items = [i.strip(_TRIM) for i in re.split(r"[,，、|]", found.group(1) or found.group(2) or "")]
        parsed: list[Milestone] = []
        for item in (i for i in items if i):
            try:
                dates = _dates_in(_fold(item), ref, slash_anywhere=True)
            except ValueError:
                raise refuse(KrRefusal.BAD_DATE) from None
            if len(dates) > 1:
                raise refuse(KrRefusal.BAD_DATE)
            name, due = item, None
            if dates:
                a, b = dates[0][2]
                name, due = (item[:a] + item[b:]).strip(_TRIM), check_day(dates[0][0], dates[0][1])
            if name:
                parsed.append(Milestone(name[:60], due))
        milestones = tuple(parsed[:MAX_MILESTONES])
        cut.append(found.span())

    deadline: date | None = None
    deadline_span: tuple[int, int] | None = None
    found = _DEADLINE.search(_mask(folded, cut))
    if found:
        after = _mask(folded, cut)[found.end() :]
        try:
            dates = _dates_in(after, ref, slash_anywhere=True)
        except ValueError:
            raise refuse(KrRefusal.BAD_DATE) from None
        if not dates or dates[0][2][0] != 0:
            raise refuse(KrRefusal.BAD_DATE)
        deadline = check_day(dates[0][0], dates[0][1])
        end = found.end() + dates[0][2][1]
        close = _CLOSE.match(folded, end) if found.group("open") else None
        deadline_span = (found.start(), close.end() if close else end)
        cut.append(deadline_span)

    current: float | None = None
    found = _CURRENT.search(_mask(folded, cut))
    if found:
        q = _qty_of(found, "a", folded)
        if q is not None:
            current = q.value
            cut.append(found.span())

    rest = _mask(folded, cut)
    try:
        dates = _dates_in(rest, ref, slash_anywhere=False)
    except ValueError:
        raise refuse(KrRefusal.BAD_DATE) from None
    if len(dates) > 1:
        raise refuse(KrRefusal.TWO_TARGETS)
    on: date | None = check_day(dates[0][0], dates[0][1]) if dates else None
    date_span = dates[0][2] if dates else None

    title = _clean(raw, cut)
    deliverable = _deliverable(_mask(rest, [date_span] if date_span else []))
    if deliverable is not None:
        return ParsedKr(
            title=title,
            kind=KrKind.DELIVERABLE,
            deadline=deadline or on,
            milestones=milestones,
            weight=weight,
            what=deliverable,
            current=None,
        )

    numbers = _mask(rest, [date_span] if date_span else [])
    number = _number_target(numbers, current)
    if number is not None:
        if milestones:
            raise refuse(KrRefusal.MILESTONES_ON_NUMBER)
        start, target, unit, cur = number
        if start == target:
            raise refuse(KrRefusal.DIRECTION)
        return ParsedKr(
            title=title,
            kind=KrKind.NUMBER,
            unit=unit,
            start=start,
            target=target,
            current=cur,
            deadline=deadline or on,
            weight=weight,
            what=title,
        )

    if on is None and deadline is not None:  # "截止 3 月 31 日完成迁移": the deadline is the target
        on, deadline, date_span = deadline, None, deadline_span
        cut = [c for c in cut if c != deadline_span]
        title = _clean(raw, cut)
    if on is not None:
        what = _glue_off(_clean(raw, [*cut, date_span] if date_span else cut))
        if what:
            return ParsedKr(
                title=title,
                kind=KrKind.DATE,
                target_date=on,
                deadline=deadline,
                milestones=milestones,
                weight=weight,
                what=what,
            )
    raise refuse(KrRefusal.NO_TARGET)


def _glue_off(text: str) -> str:
    """ "前上线计费系统" → "上线计费系统", "Launch billing by" → "Launch billing": the words that tied a
    removed date to the line."""
    return _GLUE_AFTER.sub("", _GLUE_BEFORE.sub("", text)).strip(_TRIM)


def _clean(raw: str, cut: list[tuple[int, int]]) -> str:
    kept = "".join(ch for i, ch in enumerate(raw) if not any(a <= i < b for a, b in cut))
    return re.sub(r"\s+", " ", kept).strip(_TRIM)


def _deliverable(rest: str) -> str | None:
    """The named work product of a deliverable line, or None."""
    m = _DELIVER_PREFIX.match(rest)
    if m is not None:
        name = _glue_off(re.sub(r"[\s\x00]+", " ", m.group("name")))
        return name if len(name) >= 2 else None
    m = _DELIVER_QUOTED.search(rest)
    if m is not None:
        return m.group("name")
    return None


_NumberTarget = tuple[float, float, str | None, float | None]


def _number_target(text: str, current: float | None) -> _NumberTarget | None:
    """(start, target, unit, current) of the one number target in ``text``; None when there is none.

    Tried in order of how much a form says: a range (从 A 到 B), a level to reach or to get under (提高到,
    降到, ≤: these need a start), a floor (≥, 至少: counted from 0), a bare quantity with a unit."""
    m = _RANGE.search(text)
    if m is not None:
        a = _first_qty(m, ("a", "c"), text)
        b = _first_qty(m, ("b", "d"), text)
        assert a is not None and b is not None
        _only_one(text, [m.span()])
        return _in_unit(a, b.unit, text), b.value, b.unit or a.unit, current
    for pattern, down in ((_DOWN_TO, True), (_CEILING, True), (_UP_TO, False)):
        m = pattern.search(text)
        if m is None:
            continue
        q = _first_qty(m, ("a", "b"), text)
        assert q is not None
        _only_one(text, [m.span()])
        if current is None:
            raise KrRefused(KrRefusal.NO_START, text.replace("\x00", ""))
        if (down and current <= q.value) or (not down and current >= q.value):
            raise KrRefused(KrRefusal.DIRECTION, text.replace("\x00", ""))
        return current, q.value, q.unit, current
    m = _FLOOR.search(text)
    if m is not None:
        q = _first_qty(m, ("a", "b"), text)
        assert q is not None
        _only_one(text, [m.span()])
        return 0.0, q.value, q.unit, current
    bare = _bare_quantities(text)
    if not bare:
        return None
    if len(bare) > 1:
        raise KrRefused(KrRefusal.TWO_TARGETS, text.replace("\x00", ""))
    return 0.0, bare[0].value, bare[0].unit, current


_SCALE = {
    "元": 1.0, "块": 1.0, "千": 1e3, "千元": 1e3, "万": 1e4, "万元": 1e4, "百万": 1e6, "亿": 1e8, "亿元": 1e8,
}  # fmt: skip
"""Chinese amounts change unit with size ("从 8000 万元到 1.2 亿元"): a start in another of these units is
converted to the target's."""


def _in_unit(start: _Qty, unit: str | None, text: str) -> float:
    """The start of a range in the target's unit; a start in a unit that does not convert is refused."""
    if start.unit is None or unit is None or start.unit == unit:
        return start.value
    if start.unit in _SCALE and unit in _SCALE:
        return start.value * _SCALE[start.unit] / _SCALE[unit]
    raise KrRefused(KrRefusal.UNITS, text.replace("\x00", ""))


def _bare_quantities(text: str) -> list[_Qty]:
    """Numbers with a unit ("20 家", "500 万元", "20 customers"), leaving out durations ("30 天内") and
    ordinals ("第 3 版")."""
    out: list[_Qty] = []
    for m in _BARE.finditer(text):
        q = _qty_of(m, "a", text)
        if q is None or q.unit is None:
            continue
        before = text[: q.span[0]].rstrip()
        after = text[q.span[1] :].lstrip()
        if before.endswith(("第", "每")):
            continue
        if q.unit in _TIME_UNITS and re.match(r"^(?:内|以内|之内)", after):
            continue
        if re.match(r"^(?:within|in)\s*$", before[-7:].strip(), re.I) and q.unit in {
            "days",
            "weeks",
            "months",
        }:
            continue
        out.append(q)
    return out


def _only_one(text: str, spans: list[tuple[int, int]]) -> None:
    """A line holds one target: a second quantity outside the one taken is a second target."""
    masked = _mask(text, spans)
    if _bare_quantities(masked):
        raise KrRefused(KrRefusal.TWO_TARGETS, text.replace("\x00", ""))


# ----------------------------------------------------------------------------------------------- write


def format_kr(kr: ParsedKr) -> str:
    """The line that reads back as ``kr`` (``parse_kr(format_kr(kr), ref)`` gives the same key result):
    what a form shows for a key result that is stored but was never typed as a line (an adjustment, a
    carried-over key result). The start is written as "（当前 …）" only when the title does not hold it."""
    parts = [kr.title]
    if kr.kind == KrKind.NUMBER and not _title_holds_start(kr):
        parts.append(f"（当前 {fmt_number(kr.start)}{kr.unit or ''}）")
    if kr.milestones:
        items = [f"{m.name} {m.due.isoformat()}" if m.due else m.name for m in kr.milestones]
        parts.append(f"（里程碑：{', '.join(items)}）")
    if kr.deadline is not None and kr.deadline not in (kr.target_date,) and not _title_has_date(kr):
        parts.append(f" 截止 {kr.deadline.isoformat()}")
    if kr.weight:
        parts.append(f" [{kr.weight}%]")
    return "".join(parts)


def _title_holds_start(kr: ParsedKr) -> bool:
    try:
        again = parse_kr(kr.title, date.min)
    except KrRefused:
        return False
    return again.start == kr.start


def _title_has_date(kr: ParsedKr) -> bool:
    try:
        return bool(_dates_in(_fold(kr.title), date.min, slash_anywhere=False))
    except ValueError:
        return False
