"""The vague-word guard's definition of vague vs concrete, in both languages (the corpus with precision
and recall is tests/core/test_vague_corpus.py)."""

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
        # issue 15 #7: a verdict, and a long slogan that used to pass
        "表现一般",
        "进一步加强团队沟通协作能力",
        "持续提升客户服务水平和专业素养",
        # slogans made of words no list holds: no one, no date, no number, no work product
        "树立正确的价值观",
        "加大市场开拓力度",
        "需要提升文档编写的规范性",
    ],
)
def test_vague(text: str) -> None:
    assert is_vague(text)
    assert not is_concrete(text)


@pytest.mark.parametrize(
    "text",
    [
        "每周五下班前给客户发一次进度邮件",  # frequency + deadline
        "加强沟通：周三和产品过三次需求",  # Chinese numeral with a unit
        "提升效率，把代码评审流程改为双人制",  # enough non-vague substance
        "improve communication: a weekly 15-minute sync with sales",
        "Improve the release checklist so QA signs off every release",
        "Strengthen tests by 2026-12-01",
        "加强沟通，周五前把客户回访表发给张三",
    ],
)
def test_concrete_with_vague_words(text: str) -> None:
    assert not is_vague(text)
    assert is_concrete(text)


@pytest.mark.parametrize(
    "text",
    [
        # a person, a time, a number, a work product: each is enough
        "周五前把客户回访表发给张三",
        "每周一和小王过一遍进度",
        "把接口超时从3秒降到1秒",
        "上线新版会员积分系统",
        "在发版检查表里加上数据库回滚这一项",
        "Pair with Tom on the billing refactor",
        "Write the onboarding checklist",
    ],
)
def test_concrete_without_vague_words(text: str) -> None:
    assert is_concrete(text) and not is_vague(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ok",
        "好的",
        "把周报模板改成三段式并发给全组",
        # replies are not slogans: the guard must not nag a manager who acknowledges
        "收到，辛苦了",
        "不用担心，有问题随时找我",
        "休假回来再说",
        "Thanks, looks good",
        "这个问题我来跟进",
    ],
)
def test_short_notes_and_replies_are_never_bounced(text: str) -> None:
    assert not is_vague(text)


def test_word_lists_live_in_both_catalogues() -> None:
    for kind in ("terms", "slogan", "markers", "objects", "actions", "courtesy"):
        assert Translator("zh-CN").words(f"vague.{kind}") and Translator("en").words(f"vague.{kind}"), kind
    assert "加强沟通" in Translator("zh-CN").words("vague.terms")
    assert "strengthen" in Translator("en").words("vague.terms")
