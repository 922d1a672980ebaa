"""Numbers as people type them into a form or a chat: "38", "３８", "1,200", "38.5%", "38 分".

Two strictnesses, one rule each. ``looks_like_number`` is the chat form's check of an answer as it arrives
(a number first, whatever unit follows: "很多" is refused at once, the question asked again). ``parse_number``
is the flow's reading against the key result's own unit: a trailing word is accepted only when it is that
unit (or "%"), so "3.5万" is never quietly read as 3.5 on a key result counted in 元.
"""

from __future__ import annotations

import math
import re
import unicodedata

_NUMBER = re.compile(r"^([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(.*)$")


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().replace("，", ",")


def looks_like_number(text: str) -> bool:
    """Starts with a number (a unit may follow)."""
    return _NUMBER.match(_plain(text)) is not None


def parse_number(text: str, unit: str | None = None) -> float | None:
    """The number in ``text``, or None: not a number, a trailing word other than ``unit`` (or "%"), or not
    finite."""
    m = _NUMBER.match(_plain(text))
    if m is None:
        return None
    suffix = m.group(2).strip()
    units = {"", "%"}
    if unit:
        units.add(_plain(unit).replace(" ", ""))
    if suffix.replace(" ", "") not in units:
        return None
    value = float(m.group(1).replace(",", ""))
    return value if math.isfinite(value) else None
