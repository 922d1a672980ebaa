"""A key result's rhythm in words: "每周三 10:00 前上传客户拜访照片" → Wednesday, 10:00, "上传客户拜访照片".

A rhythm is a recurring checkable action bound to a key result (issue 17 item 7): the weekday, the local time
the proof is due by, and what to do. People type it as a sentence, in Chinese or English::

    每周三 10:00 前上传客户拜访照片          周五下午5点半前提交周报          每星期一 9：30 前 晒晨会照片
    every Wednesday by 10:00 upload a customer-visit photo          Fridays by 5:30pm: send the weekly report

Pure: no database, no clock, so the table of accepted and refused sentences is a plain unit test. What is
refused says why (``reason``, a catalogue key suffix) so the card can answer with a concrete example; a daily
or "every workday" rhythm is refused on purpose: one rhythm is one weekday (several rhythms may share a key
result).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

MAX_ACTION = 200
"""The action's words, as stored and shown on the request card."""

_ZH_DAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_EN_DAYS = {
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
_ZH_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZH_PERIODS_PM = ("下午", "晚上", "傍晚")
_ZH_PERIODS = "上午|早上|早晨|中午|下午|晚上|傍晚|凌晨"

_ZH_DAY = re.compile(r"^\s*(?:每个?)?(?:周|星期|礼拜)\s*([一二三四五六日天七1-7])\s*[,，、]?\s*")
_ZH_TIME = re.compile(
    rf"^(?P<period>{_ZH_PERIODS})?\s*(?P<hour>\d{{1,2}}|[零〇一二两三四五六七八九十]{{1,3}})\s*"
    r"(?:[:：]\s*(?P<minute>\d{2})|(?P<dian>[点點时])\s*(?:(?P<half>半)|(?P<mins>\d{1,2})\s*分?)?)"
)
_ZH_BEFORE = re.compile(r"^\s*(?:之前|以前|前)")
_EN_DAY = re.compile(
    r"^\s*(?:(?:every|each|on)\s+)?"
    r"(?P<day>mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:r|rs|rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)"
    r"s?\b\s*,?\s*",
    re.IGNORECASE,
)
_EN_TIME = re.compile(
    r"^(?P<kw>(?:by|before|until|till|at)\s+)?(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?\s*"
    r"(?P<ampm>a\.?m\.?|p\.?m\.?)?(?=\W|$)",
    re.IGNORECASE,
)
_DAILY = re.compile(
    r"^\s*(?:每天|每日|天天|每个工作日|工作日|every\s*day|daily|every\s+(?:work|week)day)", re.I
)
_SEPARATORS = " \t,，:：、-—–;；"


class RhythmInvalid(ValueError):
    """A sentence that is not a rhythm; ``reason`` is the catalogue key suffix that says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rhythm:
    weekday: int
    """0 = Monday … 6 = Sunday, as ``date.weekday()`` and ``KeyResultRhythm.weekday``."""
    due: time
    """Local time the proof is due by."""
    action: str

    @property
    def due_text(self) -> str:
        """``HH:MM``, as stored in ``KeyResultRhythm.due_time``."""
        return f"{self.due.hour:02d}:{self.due.minute:02d}"


def parse_rhythm(sentence: str) -> Rhythm:
    """The rhythm a sentence describes; raises ``RhythmInvalid`` (``no_weekday``, ``daily``, ``no_time``,
    ``bad_time``, ``no_action``) when it is not one."""
    text = " ".join(sentence.split())
    if not text:
        raise RhythmInvalid("no_weekday")
    if _DAILY.match(text):
        raise RhythmInvalid("daily")
    zh = _ZH_DAY.match(text)
    if zh is not None:
        day_char = zh.group(1)
        weekday = int(day_char) - 1 if day_char.isdigit() else _ZH_DAYS[day_char]
        due, rest = _zh_time(text[zh.end() :])
        return _rhythm(weekday, due, rest)
    en = _EN_DAY.match(text)
    if en is not None:
        weekday = _EN_DAYS[en.group("day")[:3].lower()]
        due, rest = _en_time(text[en.end() :])
        return _rhythm(weekday, due, rest)
    raise RhythmInvalid("no_weekday")


def _rhythm(weekday: int, due: time, rest: str) -> Rhythm:
    action = rest.strip(_SEPARATORS).strip()
    if not action:
        raise RhythmInvalid("no_action")
    return Rhythm(weekday=weekday, due=due, action=action[:MAX_ACTION])


def _zh_number(token: str) -> int | None:
    """``10`` or ``十``/``十二``/``二十``/``二十三`` → the number; anything else None."""
    if token.isdigit():
        return int(token)
    if "十" not in token:
        return _ZH_DIGITS.get(token) if len(token) == 1 else None
    tens, _, ones = token.partition("十")
    high = 1 if not tens else _ZH_DIGITS.get(tens)
    low = 0 if not ones else _ZH_DIGITS.get(ones)
    if high is None or low is None:
        return None
    return high * 10 + low


def _clock(hour: int, minute: int) -> time:
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise RhythmInvalid("bad_time")
    return time(hour, minute)


def _zh_time(text: str) -> tuple[time, str]:
    m = _ZH_TIME.match(text)
    if m is None:
        raise RhythmInvalid("no_time")
    hour = _zh_number(m.group("hour"))
    if hour is None:
        raise RhythmInvalid("bad_time")
    minute = 30 if m.group("half") else int(m.group("minute") or m.group("mins") or 0)
    period = m.group("period")
    if period in _ZH_PERIODS_PM and hour < 12:
        hour += 12
    elif period == "中午" and hour < 6:
        hour += 12
    elif period == "凌晨" and hour == 12:
        hour = 0
    if hour == 24 and minute == 0:
        hour, minute = 23, 59
    due = _clock(hour, minute)
    rest = text[m.end() :]
    before = _ZH_BEFORE.match(rest)
    return due, rest[before.end() :] if before else rest


def _en_time(text: str) -> tuple[time, str]:
    m = _EN_TIME.match(text)
    if m is None or not (m.group("kw") or m.group("minute") or m.group("ampm")):
        raise RhythmInvalid("no_time")
    hour, minute = int(m.group("hour")), int(m.group("minute") or 0)
    ampm = (m.group("ampm") or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            raise RhythmInvalid("bad_time")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    return _clock(hour, minute), text[m.end() :]
