"""Which parent objective to suggest for a goal (issue 17 item 2): the candidate whose words overlap most.

Character bigrams, not words: Chinese has no spaces, and two objectives about the same thing share
two-character words ("续约", "客户", "计费") whatever else they say. Digits and punctuation are left out, so
"40" in one key result and "40" in another do not make two goals look alike. The score is the Dice
coefficient (twice the shared bigrams over the bigrams of both), so a long parent does not win by length.
A suggestion needs a minimum score: below it nothing is pre-selected and the person chooses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MIN_SCORE = 0.12
"""Below this, two objectives share a word or two by chance ("提升", "完成"), not a subject."""

_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z]+")


def bigrams(text: str) -> frozenset[str]:
    """The character bigrams of each run of CJK characters or Latin letters (case and width folded)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    out: set[str] = set()
    for run in _RUN.findall(folded):
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    return frozenset(out)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def suggest(text: str, candidates: Sequence[tuple[int, str]], *, min_score: float = MIN_SCORE) -> int | None:
    """The id of the candidate (id, objective and key results) most like ``text``; the earlier one wins a
    tie (candidates come newest first). None when nothing reaches ``min_score``."""
    mine = bigrams(text)
    best: int | None = None
    best_score = min_score
    for goal_id, other in candidates:
        score = similarity(mine, bigrams(other))
        if score > best_score or (best is None and score >= best_score and score > 0):
            best, best_score = goal_id, score
    return best
