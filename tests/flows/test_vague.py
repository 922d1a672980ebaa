"""The vague-word guard's definition of vague vs concrete, in both languages."""

from __future__ import annotations

import pytest

from bot.core.vague import is_concrete, is_vague
from cards.catalogue import Translator


@pytest.mark.parametrize(
    "text",
    [
        "加强沟通",
        "提升效率",
        "注意细节",
        "要加强和客户的沟通",
        "进一步提升工作效率，注意细节",
        "improve communication",
        "Strengthen teamwork and improve efficiency",
        "Pay more attention to details",
        "be more proactive",
    ],
)
def test_vague(text: str) -> None:
    assert is_vague(text)


@pytest.mark.parametrize(
    "text",
    [
        "每周五下班前给客户发一次进度邮件",  # frequency + deadline
        "加强沟通：周三和产品过三次需求",  # Chinese numeral with a unit
        "提升效率，把代码评审流程改为双人制",  # enough non-vague substance
        "improve communication: a weekly 15-minute sync with sales",
        "Improve the release checklist so QA signs off every release",
        "Strengthen tests by 2026-12-01",
    ],
)
def test_concrete_with_vague_words(text: str) -> None:
    assert not is_vague(text)
    assert is_concrete(text)


@pytest.mark.parametrize("text", ["", "ok", "好的", "把周报模板改成三段式并发给全组"])
def test_no_vague_term_is_never_bounced(text: str) -> None:
    assert not is_vague(text)


def test_word_lists_live_in_both_catalogues() -> None:
    for key in ("vague.terms", "vague.filler", "vague.markers"):
        assert Translator("zh-CN").words(key) and Translator("en").words(key)
    assert "加强沟通" in Translator("zh-CN").words("vague.terms")
    assert "strengthen" in Translator("en").words("vague.terms")
