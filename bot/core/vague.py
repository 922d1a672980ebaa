"""The vague-word guard: a comment or action item that is only a direction ("加强沟通", "improve") gets one
request for a concrete, checkable behaviour before it is saved.

What counts as *vague*: the text uses at least one vague term (``vague.terms`` in the catalogue, both
languages are always checked, since people mix them) and is not *concrete*.

What counts as *concrete*, any of:
- it names a quantity, frequency or date: a digit, a Chinese numeral with a unit (三次, 两周), or a marker
  word from ``vague.markers`` (每周, 周五前, weekly, every, by, before, Monday…);
- or, once the vague terms and filler words (``vague.filler``) are removed, enough substance is left to
  describe an actual behaviour: at least 6 CJK characters or 3 Latin words of 3+ letters.

Text with no vague term at all is never bounced: the guard targets empty slogans, not short notes.

"Asks once" is literal: the first vague submission for a record is bounced (recorded in the audit log as
``vague.bounced``, so it survives across clicks); the next submission is saved as written, and if it is
still vague that is recorded as ``vague.accepted`` for the numbers rather than nagging the manager again.

Anonymous answers (peer feedback) use ``must_bounce_anonymous`` instead: the same rule, asked once, but no
audit row per answer. The audit log is exportable and names its actor, so a ``vague.bounced`` row with the
text (or even without it: "this rater's example was vague", next to the published examples) would tie a
rater to an example (issue 16 #3). The caller keeps the "already asked" mark on the answer's own row, and
counts vague examples only per released batch.
"""

from __future__ import annotations

import re
from functools import cache

from bot.core.context import Context
from cards.catalogue import LOCALES, Translator
from storage.queries.audit import has_entry

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z]{3,}")
_DIGIT = re.compile(r"\d")
_CN_QUANTITY = re.compile(
    r"[一二两三四五六七八九十百半]+\s*(次|遍|天|日|周|个|分钟|小时|月|号|份|条|页|人|轮)"
)
_CONCRETE_CJK = 6
_CONCRETE_WORDS = 3


@cache
def _lists() -> tuple[list[str], list[str], list[str]]:
    def merged(key: str) -> list[str]:
        words: list[str] = []
        for locale in LOCALES:
            words.extend(w.strip().lower() for w in Translator(locale).words(key) if w.strip())
        return sorted(set(words), key=len, reverse=True)

    return merged("vague.terms"), merged("vague.filler"), merged("vague.markers")


@cache
def _pattern(word: str) -> re.Pattern[str]:
    """CJK terms match as substrings; Latin terms match whole words, with any suffix (improv → improving)."""
    if word.isascii():
        return re.compile(rf"\b{re.escape(word)}\w*")
    return re.compile(re.escape(word))


def _strip(text: str, words: list[str]) -> tuple[str, bool]:
    hit = False
    for word in words:
        text, n = _pattern(word).subn(" ", text)
        hit = hit or n > 0
    return text, hit


def is_concrete(text: str) -> bool:
    norm = text.lower()
    terms, filler, markers = _lists()
    if _DIGIT.search(norm) or _CN_QUANTITY.search(norm):
        return True
    if any(_pattern(m).search(norm) for m in markers):
        return True
    rest, _ = _strip(norm, terms)
    rest, _ = _strip(rest, filler)
    return len(_CJK.findall(rest)) >= _CONCRETE_CJK or len(_LATIN_WORD.findall(rest)) >= _CONCRETE_WORDS


def is_vague(text: str) -> bool:
    norm = text.strip().lower()
    if not norm:
        return False
    terms, _, _ = _lists()
    _, hit = _strip(norm, terms)
    return hit and not is_concrete(norm)


async def must_bounce(ctx: Context, text: str | None, *, entity: str, entity_id: int) -> bool:
    """True when ``text`` is vague and this record has not been bounced yet; records the bounce.

    The caller must then *return* (not raise) a card asking again, so the audit row commits while the
    record itself stays untouched.
    """
    if not text or not is_vague(text):
        return False
    if await has_entry(ctx.session, action="vague.bounced", entity=entity, entity_id=entity_id):
        ctx.audit("vague.accepted", entity, entity_id, text=text[:500])
        return False
    ctx.audit("vague.bounced", entity, entity_id, text=text[:500])
    return True


def must_bounce_anonymous(text: str | None, *, already_bounced: bool) -> bool:
    """True when ``text`` is vague and this anonymous answer was not bounced yet. Writes nothing: the caller
    marks its row (``PeerFeedback.vague_bounced``) and returns a card asking again."""
    return bool(text) and not already_bounced and is_vague(text or "")
