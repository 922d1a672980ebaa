"""Seeing the goal tree (issue 17 item 3): ``/okr`` with progress bars, colours and where each goal aligns;
``/okr @name`` allowed or refused with the reason; ``/okr tree`` (company and department) as a card and a
picture with coverage for leaders; one objective's subtree (``OkrTree``); HR's ``/okr visibility``. On
SQLite and PostgreSQL (the ``service`` fixture)."""

from __future__ import annotations

import io

from PIL import Image as PILImage
from sqlalchemy import select

from adapters.dingtalk.render import render_card as dingtalk_render
from adapters.feishu.render import render_card as feishu_render
from adapters.sim.render import render_card as sim_render
from adapters.wecom.render import render_card as wecom_render
from bot.app.service import Service
from cards.actions import unpack
from cards.catalogue import Translator
from cards.goal_actions import OkrTree, OkrView
from cards.goal_comments import goal_buttons
from cards.model import Actions, Button, Card, Image, Markdown
from cards.okr import bar
from cards.okr_tree_image import MAX_ROWS, WIDTH, TreePicture, TreeRow, height_of, render_png, texts_of
from cards.snapshot_chart import missing_glyphs
from storage.media import MediaStore
from storage.models import AuditLog, Cycle
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, last_update, text_of
from tests.support.goal_tree import Kr, add_cycle, add_goal, ask, seed_tree


def markdown(card: Card) -> str:
    return "\n".join(el.text for el in card.elements if isinstance(el, Markdown))


ZH = Translator("zh-CN")


def values_of(buttons: list[Button]) -> set[str]:
    return {b.value for b in buttons}


def payloads(card: Card) -> list[object]:
    return [unpack(b.value) for b in card.buttons()]


async def set_visibility(service: Service, cycle_id: int, visibility: str) -> None:
    async with service.factory() as s, s.begin():
        cycle = await s.get(Cycle, cycle_id)
        assert cycle is not None
        cycle.goal_visibility = visibility


# ------------------------------------------------------------------ cards without a database
def test_progress_bar_is_text_every_platform_shows() -> None:
    assert bar(0.6) == "▓▓▓▓▓▓░░░░ 60%"
    assert bar(0.0) == "░░░░░░░░░░ 0%"
    assert bar(1.4) == "▓▓▓▓▓▓▓▓▓▓ 100%"


def test_tree_image_renders_chinese_labels_at_phone_width() -> None:
    rows = [
        TreeRow(
            0,
            "公司目标 1：提升客户满意度（NPS 从 32 到 40）",
            "刘总 · 对齐 1,203 个目标 · 覆盖 87%",
            62,
            "on_track",
        ),
        TreeRow(1, "研发部：新版本按期上线，质量达标", "王经理 · 320 个目标", 48, "at_risk"),
        TreeRow(2, "计费系统上线", "张三", 20, "off_track"),
        TreeRow(2, "+37 人 · 111 个目标"),
    ] * 15
    picture = TreePicture(
        "公司目标 · 目标树 · 2026-Q4", "周期已过 59%", tuple(rows), ("按计划", "有风险", "落后")
    )
    assert missing_glyphs(texts_of(picture)) == set()
    png = render_png(picture)
    image = PILImage.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (WIDTH, height_of(picture))
    assert image.size[1] < 4500  # folded to MAX_ROWS rows, not 60
    assert len(png) < 400_000
    pixels = image.convert("RGB")
    # the title band is blue, and the first row's dot is green (on track)
    assert pixels.getpixel((5, 5)) == (0x33, 0x70, 0xFF)
    assert pixels.getpixel((24 + 8, 112 + 20)) == (0x2E, 0xA0, 0x43)
    assert len(texts_of(picture)) == 5 + 2 * MAX_ROWS - MAX_ROWS // 4  # folded rows have no detail


# ------------------------------------------------------------------ /okr
async def test_my_goals_card_shows_bars_colours_krs_and_alignment(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org)
    card, _ = await ask(service, recorder, "emp1", "/okr")
    assert card is not None
    assert card.header.title == "我的目标 · 2026-Q4"
    assert card.header.colour == "green"  # (0.9 × 60 + 0.2 × 40) / 100 = 62 % against 59 % of the cycle
    assert "加权进度 62%" in (card.header.subtitle or "")
    text = markdown(card)
    assert "**O1** 计费系统上线（权重 60%）\n▓▓▓▓▓▓▓▓▓░ 90% · 🟢 按计划" in text
    assert "· 签约客户：36 / 40 个（90%）" in text
    assert "对齐到：完成架构评审（王经理）" in text
    assert "▓▓░░░░░░░░ 20% · 🔴 落后" in text and "对齐到：新版本按期上线（王经理）" in text
    # my own goals: comment and tree on each, no challenge (the comment flow's buttons)
    values = [b.value for b in card.buttons()]
    for gid in (ids["e1"], ids["e2"]):
        assert values_of(goal_buttons(ZH, gid, challenge=False)) <= set(values)
        assert not values_of(goal_buttons(ZH, gid)) <= set(values)
    assert OkrTree(goal_id=ids["e2"]) in payloads(card)

    card, _ = await ask(service, recorder, "emp2", "/okr")
    assert card is not None and "Not aligned" in markdown(card)  # 李四 reads English
    assert card.header.colour == "red"  # 0 % at 59 % of the cycle


async def test_a_manager_sees_the_roll_up_of_their_goal(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed_tree(service, org)
    card, _ = await ask(service, recorder, "mgr", "/okr")
    assert card is not None
    text = markdown(card)
    # his department objective first: own 60 %, three goals below it, rolled up to 62 %
    assert "**O1** 新版本按期上线（权重 100%）\n▓▓▓▓▓▓░░░░ 62% · 🟢 按计划" in text
    assert "自身关键结果 60%，下级对齐 3 个目标" in text
    # 完成架构评审: own 75 %, 张三's 90 % below it: 82.5 %, shown as 82 % (round half to even)
    assert "**O2** 完成架构评审（权重 100%）\n▓▓▓▓▓▓▓▓░░ 82% · 🟢 按计划" in text
    assert "自身关键结果 75%，下级对齐 1 个目标" in text


async def test_a_leaders_company_objectives(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    """Company objectives are roots: never "not aligned"; an umbrella objective without key results of its
    own is as far as its aligned goals."""
    await seed_tree(service, org)
    card, _ = await ask(service, recorder, "leader", "/okr")
    assert card is not None
    text = markdown(card)
    assert "**O2** 伞形目标（权重 0%）\n▓▓▓▓░░░░░░ 40% · 🟠 有风险" in text
    assert "没有自身的关键结果：进度来自下级对齐的 1 个目标" in text
    assert "自身关键结果 50%，下级对齐 5 个目标" in text
    assert "未对齐" not in text
    assert card.header.subtitle == "周期已过 59%"  # no personal goals: no weighted progress


async def test_a_colleagues_goals_allowed_with_the_challenge_button(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org)
    card, _ = await ask(service, recorder, "seller", "/okr @张三")
    assert card is not None
    assert card.header.title == "张三 的目标 · 2026-Q4"
    assert values_of(goal_buttons(ZH, ids["e1"])) <= {b.value for b in card.buttons()}
    assert len(card.buttons()) == 6  # two goals × comment, challenge, tree: the most a WeCom card holds
    async with service.factory() as s:
        audit = await s.scalar(select(AuditLog).where(AuditLog.action == "okr.viewed"))
    assert audit is not None and audit.entity_id == org.emp1.id and audit.actor_id == org.seller.id


async def test_a_colleague_refused_says_who_may_see_and_why(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org, visibility="manager")
    card, toast = await ask(service, recorder, "seller", "/okr @张三")
    assert card is None
    assert toast.startswith(
        "你不能查看 张三 的个人目标：本周期（2026-Q4）的个人目标只对本人的上级（管理链）公开"
    )
    assert "可以直接问 张三" in toast
    card, toast = await ask(service, recorder, "emp2", "/okr @张三")
    assert card is None and "open only to the person's managers" in toast
    card, _ = await ask(service, recorder, "mgr", "/okr @张三")  # the manager always may
    assert card is not None and "计费系统上线" in markdown(card)

    await set_visibility(service, ids["cycle"], "department")
    card, toast = await ask(service, recorder, "seller", "/okr @张三")
    assert card is None and "张三 在研发部" in toast
    card, _ = await ask(service, recorder, "emp2", "/okr @张三")  # same department
    assert card is not None

    card, toast = await ask(service, recorder, "emp1", "/okr @没有这个人")
    assert card is None and "找不到唯一的 没有这个人" in toast


async def test_hidden_personal_goals_leave_the_department_objective_visible(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Under ``manager``, 王经理's department objective is still open to 周销售; his personal goal is not."""
    await seed_tree(service, org, visibility="manager")
    card, _ = await ask(service, recorder, "seller", "/okr @王经理")
    assert card is not None
    text = text_of(card)
    assert "新版本按期上线" in text and "完成架构评审" not in text
    assert "王经理 的 1 个个人目标没有显示" in text


async def test_many_goals_get_one_button_each(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    cycle = await add_cycle(service, org.everyone)
    goals = [
        await add_goal(service, cycle, org.emp1, f"目标{i}", weight=25, krs=[Kr("数", i, 4)], position=i)
        for i in range(4)
    ]
    card, _ = await ask(service, recorder, "seller", "/okr @张三")
    assert card is not None
    assert payloads(card) == [OkrTree(goal_id=g) for g in goals]
    assert [b.label for b in card.buttons()] == ["O1 详情", "O2 详情", "O3 详情", "O4 详情"]


async def test_no_cycle_is_a_refusal_with_the_next_step(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    card, toast = await ask(service, recorder, "emp1", "/okr")
    assert card is None and "/goals" in toast
    card, toast = await ask(service, recorder, "emp1", "/目标树 tree")
    assert card is None and "没有进行中的绩效周期" in toast


async def test_okr_view_button_opens_a_persons_goals(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org, visibility="manager")
    answer = await click(service, "mgr", OkrView(cycle_id=ids["cycle"], person_id=org.emp1.id))
    assert answer.toast_kind != "error"
    answer = await click(service, "seller", OkrView(cycle_id=ids["cycle"], person_id=org.emp1.id))
    assert answer.toast_kind == "error" and "只对本人的上级" in (answer.toast or "")


# ------------------------------------------------------------------ /okr tree
async def test_company_tree_with_coverage_for_the_leader(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org)
    card, _ = await ask(service, recorder, "leader", "/okr tree")
    assert card is not None
    assert card.header.title == "公司目标 · 目标树 · 2026-Q4"
    text = markdown(card)
    # 提升客户满意度: (50 % own + (62.3 % × 100 + 50 % × 100) / 200) / 2 = 53 %
    assert (
        "**提升客户满意度**（刘总）\n▓▓▓▓▓░░░░░ 53% · 🟢 按计划\n对齐 5 个目标 · 覆盖 38%（3/8 人）" in text
    )
    assert "└ 新版本按期上线 62% 🟢 按计划 · 王经理 · 对齐 3 个目标" in text
    assert "覆盖 12%（1/8 人）" in text  # the umbrella objective: 孙经理 only
    assert card.header.colour == "orange"  # the umbrella objective at 40 % is at risk
    assert OkrTree(goal_id=ids["c1"]) in payloads(card) and OkrTree(goal_id=ids["umbrella"]) in payloads(card)
    images = [el for el in card.elements if isinstance(el, Image)]
    assert len(images) == 1
    data, mime = await MediaStore(service.settings.media.dir, max_bytes=10**7).read(images[0].media_id)
    assert mime == "image/png" and PILImage.open(io.BytesIO(data)).size[0] == WIDTH

    card, _ = await ask(service, recorder, "emp1", "/okr tree")
    assert card is not None and "覆盖" not in markdown(card)  # coverage is for leaders


async def test_department_tree_and_its_coverage_for_the_head(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    await seed_tree(service, org)
    card, _ = await ask(service, recorder, "mgr", "/okr tree 研发部")
    assert card is not None
    assert card.header.title == "研发部 · 目标树 · 2026-Q4"
    text = markdown(card)
    assert "**新版本按期上线**（王经理）" in text and "覆盖 67%（2/3 人）" in text
    assert "　　└ 计费系统上线 90% 🟢 按计划 · 张三" in text
    card, _ = await ask(service, recorder, "seller", "/okr tree 研发部")
    assert card is not None and "覆盖" not in markdown(card)
    card, toast = await ask(service, recorder, "emp1", "/okr tree 市场部")
    assert card is None and "找不到部门“市场部”" in toast
    card, toast = await ask(service, recorder, "emp1", "/okr tree 销售部")
    assert card is None and "销售部在本周期（2026-Q4）还没有部门目标" in toast


async def test_a_tree_folds_what_the_viewer_may_not_see(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Under ``manager``, 周销售 sees the department objective but 王经理's and 张三's goals below it only as
    a folded count."""
    await seed_tree(service, org, visibility="manager")
    card, _ = await ask(service, recorder, "seller", "/okr tree 研发部")
    assert card is not None
    text = markdown(card)
    assert "新版本按期上线" in text and "完成架构评审" not in text and "带新人" not in text
    assert "└ +2 人 · 2 个目标" in text


async def test_drilling_into_an_objective(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    ids = await seed_tree(service, org)
    answer = await click(service, "seller", OkrTree(goal_id=ids["d1"]))
    assert answer.toast_kind != "error"
    await service.outbox.drain()
    card = last_update(recorder, "seller")  # the clicked card turns into the objective's
    text = markdown(card)
    assert "**新版本按期上线**" in text and "· 上线功能：6 / 10 个（60%）" in text
    assert "对齐到：提升客户满意度（刘总）" in text
    assert "└ 完成架构评审" in text
    kinds = payloads(card)
    assert values_of(goal_buttons(ZH, ids["d1"])) <= {b.value for b in card.buttons()}
    assert OkrTree(goal_id=ids["c1"]) in kinds  # up to the company objective
    assert OkrTree(goal_id=ids["m1"]) in kinds  # down into the manager's goal, which has goals below it

    await set_visibility(service, ids["cycle"], "manager")
    answer = await click(service, "seller", OkrTree(goal_id=ids["e1"]))
    assert answer.toast_kind == "error" and "你不能查看这个目标" in (answer.toast or "")
    answer = await click(service, "seller", OkrTree(goal_id=10**9))
    assert answer.toast_kind == "error" and "不存在" in (answer.toast or "")


async def test_a_leaf_goal_has_nothing_below(service: Service, org: Org, recorder: RecordingAdapter) -> None:
    ids = await seed_tree(service, org)
    answer = await click(service, "emp1", OkrTree(goal_id=ids["e2"]))
    assert answer.toast_kind != "error"
    await service.outbox.drain()
    card = last_update(recorder, "emp1")
    assert "还没有目标对齐到这里" in text_of(card)
    assert not [el for el in card.elements if isinstance(el, Image)]
    assert not any(isinstance(el, Actions) and len(el.buttons) > 6 for el in card.elements)


# ------------------------------------------------------------------ /okr visibility
async def test_hr_sets_visibility_and_it_is_audited(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    ids = await seed_tree(service, org)
    _, toast = await ask(service, recorder, "emp1", "/okr visibility manager")
    assert "只有 HR 管理员" in toast and "全公司可见" in toast
    _, toast = await ask(service, recorder, "hr", "/okr visibility everyone")
    assert "用法" in toast
    _, toast = await ask(service, recorder, "hr", "/okr visibility department")
    assert toast == "已把 2026-Q4 的目标可见范围设为：同部门可见（含上下级部门）。"
    _, toast = await ask(service, recorder, "hr", "/okr 可见范围 部门")
    assert "已经是" in toast
    async with service.factory() as s:
        cycle = await s.get(Cycle, ids["cycle"])
        audits = list(await s.scalars(select(AuditLog).where(AuditLog.action == "cycle.goal_visibility")))
    assert cycle is not None and cycle.goal_visibility == "department"
    assert len(audits) == 1 and audits[0].detail == {"before": "company", "after": "department"}
    assert audits[0].actor_id == org.hr.id
    card, toast = await ask(service, recorder, "seller", "/okr @张三")
    assert card is None and "同部门" in toast


async def test_the_cards_render_on_every_platform(
    service: Service, org: Org, recorder: RecordingAdapter
) -> None:
    """Six buttons at most (WeCom's template cards), keys within the platforms' limits."""
    await seed_tree(service, org)
    cards = [
        (await ask(service, recorder, uid, text))[0]
        for uid, text in (
            ("seller", "/okr @张三"),
            ("leader", "/okr tree"),
            ("mgr", "/okr tree 研发部"),
            ("mgr", "/okr"),
        )
    ]
    for card in cards:
        assert card is not None
        wecom_render(card, task_id="okr-1", link_url="http://127.0.0.1/sim")
        image_keys = {el.media_id: "img_key" for el in card.elements if isinstance(el, Image)}
        feishu_render(card, image_keys=image_keys)
        dingtalk_render(card)
        sim_render(card)
