"""The vague-word guard: a comment, action item, goal or reason that is only a direction ("加强沟通",
"improve"), a quality ("执行力") or a verdict ("表现一般") gets one request for something checkable before
it is saved. One guard for every free text a flow promises to make concrete, so that "concrete" means the
same thing on every card.

How a text is read (the word lists live in ``cards/catalogue/*/vague.toml``; both languages are always
checked, since people mix them):

- An *anchor* makes a text concrete on its own: a number (a digit, 三次, 两周, 第一版, "twice"), a
  deadline or a frequency (``vague.markers``: 每周, 周五前, 月底, weekly, Friday…), a named person
  (发给张三, 和小王, 李总, 我来, @name, a capitalised name inside an English sentence), a product or system
  name (a Latin word or acronym inside Chinese text: PR, CI, Wiki; a quoted title: 《新人手册》).
- Otherwise *work words* (``vague.objects`` 文档, 接口, checklist; ``vague.actions`` 上线, 重构, send) are
  weighed against *vague terms* (``vague.terms`` 提升, 沟通, 能力, 表现, quality; and any quality noun built
  with 性/感: 规范性, 责任感). More work words than vague terms is concrete: "上线新版会员积分系统",
  "提升效率，把代码评审流程改为双人制"; "提高代码质量" is not.
- A text that is not concrete is vague when it has a vague term, or the *shape* of a slogan
  (``vague.slogan``: a modal, a comparative or a hedge, 要, 更加, 进一步, should, more) and a few words, or
  when it is a whole statement (8 CJK characters, 4 words) with no anchor and no work word at all. The last
  rule is what catches a slogan made of words no list holds ("树立正确的价值观", "加大市场开拓力度"): it
  names no one, no date, no number and no work product, however long it is.
- Courtesies (``vague.courtesy``: 收到, 辛苦了, 再说, thanks, looks good) are left out before the
  size is measured, so a reply is not taken for a slogan; "好的", "ok", "不用担心，有问题随时找我" pass.

Why rules and not a segmenter or a model: the texts are one sentence long and the decision has to be
explainable to the person who is bounced ("name a date, a person, a number or a work product"). A word
segmenter (jieba) was weighed: it would help split words, but its part-of-speech tags do not tell a work
product from an abstract noun, it is unmaintained since 2020 and loads a large dictionary at start-up.
Precision and recall are measured by ``tests/core/test_vague_corpus.py`` on ``tests/data/vague_corpus.toml``.

"Asks once" is literal: the first vague submission for a record is bounced (recorded in the audit log as
``vague.bounced``, so it survives across clicks); the next submission is saved as written, and if it is
still vague that is recorded as ``vague.accepted`` for the numbers rather than nagging the person again.

Anonymous answers (peer feedback) use ``must_bounce_anonymous`` instead: the same rule, asked once, but no
audit row per answer. The audit log is exportable and names its actor, so a ``vague.bounced`` row with the
text (or even without it: "this rater's example was vague", next to the published examples) would tie a
rater to an example (issue 16 #3). The caller keeps the "already asked" mark on the answer's own row, and
counts vague examples only per released batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

from bot.core.context import Context
from cards.catalogue import LOCALES, Translator
from storage.queries.audit import has_entry


class _Kind(Enum):
    MARKER = "markers"
    OBJECT = "objects"
    ACTION = "actions"
    TERM = "terms"
    SLOGAN = "slogan"
    COURTESY = "courtesy"


_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}")
_DIGIT = re.compile(r"\d")
_NUMERAL = "零一二两三四五六七八九十百千万半"
_UNITS = (
    "个月|季度|小时|分钟|毫秒|百分之|次|遍|天|日|周|月|年|秒|位|名|家|场|份|条|页|人|轮|项|版|倍|张|篇|套|台|批|"
    "期|节|章|件|笔|单|段|点|个"
)
_CN_QUANTITY = re.compile(rf"[{_NUMERAL}]+(?:{_UNITS})|第[{_NUMERAL}]+|百分之[{_NUMERAL}]+")
_NOT_A_QUANTITY = frozenset({"一个", "一点", "一期", "一行"})
""""一个"/"一点" are the Chinese "a"/"a bit" ("做一个有担当的人", "再细心一点"), not a count."""
_LATIN_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+#._-]*")
_CAPITALISED = re.compile(r"(?<![\w'’])[A-Z][a-zA-Z]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?;:。！？；：\n])\s*[\"'“‘(（]?\s*$")
_TAG = re.compile(r"[@#]\w+")
_QUOTED = re.compile(r"《[^》]{2,}》|「[^」]{2,}」|“[^”]{2,}”|\"[^\"]{2,}\"")
_PERSON_SUFFIX = "总|工|老师|经理|主管|姐|哥"
_BEFORE_PERSON = "交给|发给|抄送|给|和|跟|与|找|同|让|请|向|由|带|教|帮|问|约"
_MIN_SLOGAN_CJK = 4
_MIN_SLOGAN_WORDS = 3
_MIN_STATEMENT_CJK = 8
_MIN_STATEMENT_WORDS = 4
_MASK = "\x00"
_QUALITY_NOUN = re.compile(r"[\u4e00-\u9fff]{2}[性感](?=$|[^\u4e00-\u9fff]|[的和与及、])")
"""规范性, 积极性, 责任感: a quality named by its suffix is a vague term whatever word it is built on (read
after the listed words are masked, so 可用性 in a key result stays a work word)."""


@dataclass(frozen=True)
class Reading:
    """What the guard found in one text; ``concrete`` and ``vague`` are the two decisions built on it.

    ``cjk``/``words``: the size of the text without its courtesies (CJK characters, Latin words).
    """

    anchored: bool
    work: int
    terms: int
    slogan: int
    cjk: int
    words: int

    @property
    def concrete(self) -> bool:
        return self.anchored or self.work > self.terms

    @property
    def vague(self) -> bool:
        if self.concrete:
            return False
        if self.terms:
            return True
        if self.slogan and (self.cjk >= _MIN_SLOGAN_CJK or self.words >= _MIN_SLOGAN_WORDS):
            return True
        return self.work == 0 and (self.cjk >= _MIN_STATEMENT_CJK or self.words >= _MIN_STATEMENT_WORDS)


@cache
def _words_of(key: str) -> tuple[str, ...]:
    """One word list, both locales merged."""
    words = {w.strip().lower() for locale in LOCALES for w in Translator(locale).words(key) if w.strip()}
    return tuple(sorted(words))


def _words(kind: _Kind) -> tuple[str, ...]:
    return _words_of(f"vague.{kind.value}")


@cache
def _lexicon() -> tuple[tuple[str, _Kind], ...]:
    """Every listed word with its kind, longest first: "需要" is read before "要", "更新" before "更"."""
    entries = [(w, kind) for kind in _Kind for w in _words(kind)]
    return tuple(sorted(entries, key=lambda e: (-len(e[0]), e[0])))


@cache
def _pattern(word: str, kind: _Kind) -> re.Pattern[str]:
    """CJK words match as substrings. A Latin vague term matches a word's start (improv → improving); other
    Latin words match whole, with an inflection (report → reports, fix → fixed)."""
    if not word.isascii():
        return re.compile(re.escape(word))
    if kind is _Kind.TERM:
        return re.compile(rf"\b{re.escape(word)}\w*")
    return re.compile(rf"\b{re.escape(word)}(?:s|es|ed|d|ing)?\b")


@cache
def _person_pattern() -> re.Pattern[str]:
    surnames = "".join(sorted(w for w in _words_of("vague.surnames") if len(w) == 1))
    return re.compile(
        rf"[小老][{surnames}]|[{surnames}](?:{_PERSON_SUFFIX})|(?:{_BEFORE_PERSON})[{surnames}][\u4e00-\u9fff]"
        r"|我来"
    )


@cache
def _soft_latin() -> tuple[tuple[str, ...], frozenset[str]]:
    """Latin words that name nothing even inside Chinese text: vague terms (as prefixes) and slogan words."""
    terms = tuple(w for w in _words(_Kind.TERM) if w.isascii())
    return terms, frozenset(w for w in _words(_Kind.SLOGAN) if w.isascii())


def _is_soft(token: str) -> bool:
    terms, slogan = _soft_latin()
    low = token.lower()
    return low in slogan or low.startswith(terms)


def _has_quantity(text: str) -> bool:
    return any(m.group() not in _NOT_A_QUANTITY for m in _CN_QUANTITY.finditer(text))


def _names_someone_or_something(text: str) -> bool:
    """A person, a product or a title: the parts of an anchor that need the original capitalisation."""
    if _TAG.search(text) or _QUOTED.search(text) or _person_pattern().search(text):
        return True
    tokens = _LATIN_TOKEN.findall(text)
    if _CJK.search(text):
        return any(len(t) >= 2 and not _is_soft(t) for t in tokens)
    if any(len(t) >= 2 and t.isupper() and not _is_soft(t) for t in tokens):
        return True
    words = [t for t in tokens if len(t) > 1]
    if len(words) >= 3 and sum(t[0].isupper() for t in words) * 2 > len(words):
        return False  # Title Case Text: a capital letter names nothing here
    for match in _CAPITALISED.finditer(text):
        if _is_soft(match.group()) or _SENTENCE_START.search(text[: match.start()]):
            continue
        return True
    return False


def read(text: str) -> Reading:
    """Read ``text`` once: anchors first (on the text as typed), then every listed word, longest first,
    each masked out once counted so that a shorter word inside it ("要" in "需要") is not counted again."""
    anchored = bool(_DIGIT.search(text)) or _has_quantity(text) or _names_someone_or_something(text)
    rest = text.lower()
    counts = dict.fromkeys(_Kind, 0)
    courteous: list[str] = []
    for word, kind in _lexicon():
        rest, n = _pattern(word, kind).subn(_MASK, rest)
        counts[kind] += n
        courteous += [word] * n if kind is _Kind.COURTESY else []
    said = " ".join(courteous)
    return Reading(
        anchored=anchored or counts[_Kind.MARKER] > 0,
        work=counts[_Kind.OBJECT] + counts[_Kind.ACTION],
        terms=counts[_Kind.TERM] + len(_QUALITY_NOUN.findall(rest)),
        slogan=counts[_Kind.SLOGAN],
        cjk=len(_CJK.findall(text)) - len(_CJK.findall(said)),
        words=len(_LATIN_WORD.findall(text.lower())) - len(_LATIN_WORD.findall(said)),
    )


def is_concrete(text: str) -> bool:
    return read(text).concrete


def is_vague(text: str) -> bool:
    return bool(text.strip()) and read(text.strip()).vague


async def must_bounce(ctx: Context, text: str | None, *, entity: str, entity_id: int) -> bool:
    """True when ``text`` is vague and this record has not been bounced yet; records the bounce.

    The caller must then *return* (not raise) a card asking again, with every value the person entered
    kept, so the audit row commits while the record itself stays untouched.
    """
    return bool(await must_bounce_any(ctx, [text or ""], entity=entity, entity_id=entity_id))


async def must_bounce_any(ctx: Context, texts: Sequence[str], *, entity: str, entity_id: int) -> list[int]:
    """For a record with several free texts (a goal list): the positions of the vague ones when this is
    the record's first vague submission, else ``[]``. One ``vague.bounced`` row covers them all, so the
    person is asked once per record, not once per text."""
    vague = [i for i, text in enumerate(texts) if text and is_vague(text)]
    if not vague:
        return []
    quoted = " | ".join(texts[i] for i in vague)[:500]
    if await has_entry(ctx.session, action="vague.bounced", entity=entity, entity_id=entity_id):
        ctx.audit("vague.accepted", entity, entity_id, text=quoted)
        return []
    ctx.audit("vague.bounced", entity, entity_id, text=quoted)
    return vague


def must_bounce_anonymous(text: str | None, *, already_bounced: bool) -> bool:
    """True when ``text`` is vague and this anonymous answer was not bounced yet. Writes nothing: the caller
    marks its row (``PeerFeedback.vague_bounced``) and returns a card asking again."""
    return bool(text) and not already_bounced and is_vague(text or "")
