"""The alignment suggestion (issue 17 item 2): the candidate whose objective and key results share the most
character bigrams with the goal, above a floor; digits and punctuation do not count."""

from __future__ import annotations

from handlers.goals.suggest import MIN_SCORE, bigrams, similarity, suggest

MANAGER = [
    (3, "华东区客户续约；续约率从 70% 提高到 85%；交付：续约预警看板"),
    (2, "计费系统稳定运行；计费故障从 6 次降到 1 次；3 月 31 日前上线新计费系统"),
    (1, "团队招聘；招聘 3 名后端工程师"),
]


def test_bigrams_fold_width_and_case_and_skip_digits() -> None:
    assert (
        bigrams("NPS 从３２提高到４０")
        == bigrams("nps从32提高到40")
        == frozenset({"np", "ps", "提高", "高到"})
    )
    assert bigrams("") == frozenset() and bigrams("1 2 3 %") == frozenset()


def test_similarity_is_dice() -> None:
    a, b = bigrams("计费系统"), bigrams("计费对账")
    assert similarity(a, b) == 2 * 1 / (3 + 3)
    assert similarity(a, a) == 1.0 and similarity(a, frozenset()) == 0.0


def test_the_most_similar_candidate_is_suggested() -> None:
    assert suggest("计费系统故障恢复提速；计费故障平均恢复时间从 60 分钟降到 15 分钟", MANAGER) == 2
    assert suggest("续约提升；华东区续约率达到 85%", MANAGER) == 3
    assert suggest("Hire backend engineers", [(7, "Hiring: hire 3 backend engineers"), (8, "Cut churn")]) == 7


def test_nothing_alike_suggests_nothing() -> None:
    assert suggest("个人成长；交付：《Go 性能调优》分享", MANAGER) is None
    assert suggest("", MANAGER) is None and suggest("计费系统", []) is None
    assert suggest("计费", [(1, "计费")], min_score=1.01) is None
    assert 0 < MIN_SCORE < 0.5


def test_a_tie_goes_to_the_newer_candidate() -> None:
    assert suggest("客户续约", [(9, "客户续约"), (4, "客户续约")]) == 9
