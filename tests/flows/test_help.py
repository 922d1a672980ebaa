"""``/help`` shows each person the commands they may use (issue 15 #13), including ``/review`` and the
list of one's own open action items; refusals say who may act and what to do next (#11)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app.service import Service
from cards.actions import pack
from cards.catalogue import Translator
from cards.model import Card
from cards.snooze import Snooze
from storage.models import CheckIn
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows2 import click, text

HR_ONLY = ("/kickoff", "/cancelcycle", "/grades")
MANAGER_ONLY = ("/evidence", "/skip", "/grade @")


async def _help(service: Service, recorder: RecordingAdapter, who: str, body: str = "/help") -> str:
    recorder.clear()
    answer = await service.dispatcher.dispatch(text(who, body))
    await service.outbox.drain()
    cards: list[Card] = [answer.card] if answer.card is not None else recorder.to(who)
    assert cards, f"no help for {who}"
    return cards[-1].model_dump_json()


async def test_an_employee_sees_only_what_an_employee_may_use(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    shown = await _help(service, recorder, "emp1")
    for command in ("/goals", "/checkin", "/review", "/actions", "/history", "/kudos", "/leave", "/cancel"):
        assert command in shown, command
    for command in (*HR_ONLY, *MANAGER_ONLY):
        assert command not in shown, command
    assert "@张三" in shown  # their own action item names them, as a mention would


async def test_a_manager_also_sees_the_team_commands_but_not_hr_ones(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    shown = await _help(service, recorder, "mgr")
    for command in ("/evidence", "/skip", "/team", "/grade @", "/history @", "/checkin", "/review"):
        assert command in shown, command
    for command in HR_ONLY:
        assert command not in shown, command


async def test_hr_leaders_and_hrbps(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    hr = await _help(service, recorder, "hr")
    for command in (*HR_ONLY, "/grade @", "/history @"):
        assert command in hr, command
    assert "/checkin" not in hr and "/evidence" not in hr  # no manager of their own, nobody reporting

    hrbp = await _help(service, recorder, "hrbp")
    assert "/history @" in hrbp
    assert not any(c in hrbp for c in (*HR_ONLY, *MANAGER_ONLY))

    leader = await _help(service, recorder, "leader")
    t = Translator("zh-CN")
    assert t("help.digest") in leader and t("help.section_manager") in leader  # 刘总 has two managers
    assert not any(c in leader for c in HR_ONLY)


async def test_help_is_in_the_persons_language_and_answers_stray_text(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    english = await _help(service, recorder, "emp2")
    assert Translator("en")("help.title") in english and "/review" in english

    stray = await _help(service, recorder, "emp1", "随便说点什么")
    assert Translator("zh-CN")("help.title") in stray
    assert "/kickoff" not in stray


# ------------------------------------------------------------------ refusals say why and what next (#11)


async def test_someone_elses_snooze_button_says_whose_it_is(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    async with service.factory() as s, s.begin():
        row = CheckIn(
            person_id=org.emp1.id, period="2026-11-27", due_at=datetime(2026, 11, 27, 8, tzinfo=UTC)
        )
        s.add(row)
        await s.flush()
        checkin_id = row.id
    answer = await service.dispatcher.dispatch(click("emp2", pack(Snooze(flow="checkin", ref_id=checkin_id))))
    assert answer.toast_kind == "error" and answer.toast is not None
    # 李四 reads English: whose it is, and whom to ask.
    assert "张三" in answer.toast and "HR admin" in answer.toast
    assert answer.toast != Translator("en")("common.not_allowed")


async def test_role_refusals_name_the_role_and_the_next_step(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    hr_only = await service.dispatcher.dispatch(text("emp1", "/kickoff 2026-Q4"))
    assert hr_only.toast is not None and "HR 管理员" in hr_only.toast and "联系" in hr_only.toast
    not_manager = await service.dispatcher.dispatch(text("seller", "/evidence @张三"))
    assert not_manager.toast is not None
    assert "张三" in not_manager.toast and "上级" in not_manager.toast and "HR 管理员" in not_manager.toast


def test_the_generic_refusal_says_who_may_and_whom_to_ask() -> None:
    for locale, who, ask in (("zh-CN", "上级", "HR 管理员"), ("en", "manager", "HR admin")):
        message = Translator(locale)("common.not_allowed")
        assert who in message and ask in message, message


async def test_the_goal_tree_commands_by_role(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """Issue 17: everyone sees ``/okr``, ``/adjust``, ``/rhythm``; a department's head sets its objectives,
    leaders the company's, HR both and the visibility; a manager sets a report's rhythm."""
    employee = await _help(service, recorder, "emp1")
    for command in ("/okr", "/okr tree", "/adjust", "/rhythm", "/carry"):
        assert command in employee, command
    assert "/objective" not in employee and "/okr visibility" not in employee and "/rhythm @" not in employee

    head = await _help(service, recorder, "mgr")  # 王经理 heads 研发部
    assert "/objective department" in head and "/rhythm @" in head
    assert "/objective company" not in head

    leader = await _help(service, recorder, "leader")
    assert "/objective company" in leader and "/objective department" not in leader

    hr = await _help(service, recorder, "hr")
    for command in ("/objective company", "/objective department 部门名", "/okr visibility"):
        assert command in hr, command

    assert "/adjust" in await _help(service, recorder, "emp2")  # in English too
