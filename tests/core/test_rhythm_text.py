"""A key result's rhythm in words (issue 17 item 7): what is read, and what is refused with which reason."""

from __future__ import annotations

from datetime import time

import pytest

from handlers.goals.rhythm_text import Rhythm, RhythmInvalid, parse_rhythm


@pytest.mark.parametrize(
    ("sentence", "weekday", "due", "action"),
    [
        ("每周三 10:00 前上传客户拜访照片", 2, time(10, 0), "上传客户拜访照片"),
        ("每周三10:00前上传客户拜访照片", 2, time(10, 0), "上传客户拜访照片"),
        ("周五下午5点半前提交周报", 4, time(17, 30), "提交周报"),
        ("每星期一 9：30 前 晒晨会照片", 0, time(9, 30), "晒晨会照片"),
        ("礼拜天晚上8点前：复盘本周", 6, time(20, 0), "复盘本周"),
        ("每周三上午十点前上传照片", 2, time(10, 0), "上传照片"),
        ("周二十二点前提交日报", 1, time(12, 0), "提交日报"),
        ("每周四 9点15分前 发站会纪要", 3, time(9, 15), "发站会纪要"),
        ("每周7 23:00前 总结", 6, time(23, 0), "总结"),
        ("每周六中午1点前巡店", 5, time(13, 0), "巡店"),
        (
            "every Wednesday by 10:00 upload a customer-visit photo",
            2,
            time(10, 0),
            "upload a customer-visit photo",
        ),
        ("Fridays by 5:30pm: send the weekly report", 4, time(17, 30), "send the weekly report"),
        ("on Mon at 9am, post the stand-up photo", 0, time(9, 0), "post the stand-up photo"),
        ("every tue before 10.30 check the dashboard", 1, time(10, 30), "check the dashboard"),
        ("each Sunday by 12am plan the week", 6, time(0, 0), "plan the week"),
        ("every thursday by 12pm demo", 3, time(12, 0), "demo"),
    ],
)
def test_rhythms_people_write(sentence: str, weekday: int, due: time, action: str) -> None:
    rhythm = parse_rhythm(sentence)
    assert rhythm == Rhythm(weekday=weekday, due=due, action=action)
    assert rhythm.due_text == f"{due.hour:02d}:{due.minute:02d}"


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("", "no_weekday"),
        ("上传客户拜访照片", "no_weekday"),
        ("upload a photo every Wednesday by 10:00", "no_weekday"),
        ("每天 10:00 前上传照片", "daily"),
        ("每个工作日 9 点前打卡", "daily"),
        ("every day by 10:00 upload", "daily"),
        ("每周三上传照片", "no_time"),
        ("every Thursday 10 upload", "no_time"),
        ("每周三 25:00 前上传", "bad_time"),
        ("每周三 10:75 前上传", "bad_time"),
        ("every wednesday by 13pm upload", "bad_time"),
        ("每周三 10:00 前", "no_action"),
        ("every Friday by 17:00:", "no_action"),
    ],
)
def test_what_is_not_a_rhythm_says_why(sentence: str, reason: str) -> None:
    with pytest.raises(RhythmInvalid) as refused:
        parse_rhythm(sentence)
    assert refused.value.reason == reason


def test_a_long_action_is_cut_to_what_the_card_shows() -> None:
    rhythm = parse_rhythm("每周一 9:00 前" + "拍" * 500)
    assert len(rhythm.action) == 200
