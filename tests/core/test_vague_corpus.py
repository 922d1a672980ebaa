"""The vague-word guard measured on a corpus of real-looking sentences (issue 15 #7): precision and recall
of "vague", printed, with floors. Precision is the one people feel (a concrete sentence bounced); recall is
the one the issue was about (a slogan saved)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.core.vague import is_vague

CORPUS = Path(__file__).parents[1] / "data" / "vague_corpus.toml"
MIN_PRECISION = 0.95
MIN_RECALL = 0.9


@dataclass(frozen=True)
class Sentence:
    text: str
    vague: bool
    context: str


def _corpus() -> list[Sentence]:
    with CORPUS.open("rb") as fh:
        rows = tomllib.load(fh)["sentence"]
    return [Sentence(r["text"], r["label"] == "vague", r["context"]) for r in rows]


def _scores(sentences: list[Sentence]) -> tuple[float, float, list[str]]:
    tp = fp = fn = 0
    misses: list[str] = []
    for s in sentences:
        said = is_vague(s.text)
        tp += said and s.vague
        fp += said and not s.vague
        fn += s.vague and not said
        if said != s.vague:
            misses.append(f"{'false alarm' if said else 'missed'}: {s.text}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / (tp + fn), misses


def test_corpus_is_big_balanced_and_labelled() -> None:
    corpus = _corpus()
    assert len(corpus) >= 60
    assert sum(s.vague for s in corpus) * 2 == len(corpus)
    assert {s.context for s in corpus} >= {"checkin", "action", "objective", "key_result", "grade", "example"}
    assert any(s.text.isascii() for s in corpus) and any(not s.text.isascii() for s in corpus)
    assert len({s.text for s in corpus}) == len(corpus)


def test_precision_and_recall(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus()
    precision, recall, misses = _scores(corpus)
    with capsys.disabled():
        print(f"\nvague guard on {len(corpus)} sentences: precision {precision:.3f}, recall {recall:.3f}")
        for language, part in (
            ("zh", [s for s in corpus if not s.text.isascii()]),
            ("en", [s for s in corpus if s.text.isascii()]),
        ):
            p, r, _ = _scores(part)
            print(f"  {language}: {len(part)} sentences, precision {p:.3f}, recall {r:.3f}")
        for miss in misses:
            print(f"  {miss}")
    assert precision >= MIN_PRECISION, misses
    assert recall >= MIN_RECALL, misses


@pytest.mark.parametrize("context", ["checkin", "action", "grade", "key_result"])
def test_no_context_is_left_behind(context: str) -> None:
    """A floor per kind of text, so a good average cannot hide one field the guard gets wrong."""
    precision, recall, misses = _scores([s for s in _corpus() if s.context == context])
    assert precision >= 0.9 and recall >= 0.8, misses
