"""A goal tree written as rows (issue 17 item 3 tests): a cycle from 1 October to 31 December 2026 (on the
test clock, 24 November, 59 % of it has passed), company, department and person objectives linked by
``parent_id``, key results with their cached progress, independent of the goals form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bot.app.service import Service
from cards.model import Card
from storage.models import Cycle, CycleParticipant, Goal, KeyResult, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import say

STARTS = date(2026, 10, 1)
ENDS = date(2026, 12, 31)
EXPECTED = (date(2026, 11, 24) - STARTS).days / (ENDS - STARTS).days


@dataclass(frozen=True)
class Kr:
    title: str
    current: float | None
    target: float
    unit: str | None = None
    start: float = 0.0
    weight: int = 0

    @property
    def progress(self) -> float:
        if self.current is None:
            return 0.0
        return max(0.0, min(1.0, (self.current - self.start) / (self.target - self.start)))


async def add_cycle(
    service: Service, people: Sequence[Person], *, visibility: str = "company", code: str = "2026-Q4"
) -> Cycle:
    async with service.factory() as s, s.begin():
        cycle = Cycle(
            workspace_id=people[0].workspace_id,
            code=code,
            status="active",
            starts_on=STARTS,
            ends_on=ENDS,
            started_at=datetime(2026, 10, 1, 1, tzinfo=UTC),
            goal_visibility=visibility,
        )
        s.add(cycle)
        await s.flush()
        s.add_all(
            CycleParticipant(cycle_id=cycle.id, person_id=p.id, goals_status="confirmed") for p in people
        )
    return cycle


async def add_goal(
    service: Service,
    cycle: Cycle,
    owner: Person,
    objective: str,
    *,
    level: str = "person",
    parent: int | None = None,
    weight: int = 0,
    own: float | None = None,
    krs: Sequence[Kr] = (),
    department_id: int | None = None,
    position: int = 0,
) -> int:
    """One objective; its cached own progress is its key results' equal-weight mean unless ``own`` says."""
    async with service.factory() as s, s.begin():
        if own is None:
            own = sum(k.progress for k in krs) / len(krs) if krs else 0.0
        goal = Goal(
            cycle_id=cycle.id,
            person_id=owner.id,
            parent_id=parent,
            position=position,
            objective=objective,
            weight=weight,
            level=level,
            department_id=department_id,
            own_progress=own,
        )
        s.add(goal)
        await s.flush()
        for i, k in enumerate(krs):
            s.add(
                KeyResult(
                    goal_id=goal.id,
                    position=i,
                    title=k.title,
                    kind="number",
                    unit=k.unit,
                    start_value=k.start,
                    target_value=k.target,
                    current_value=k.current,
                    weight=k.weight,
                    progress=k.progress,
                )
            )
        return goal.id


async def ask(service: Service, recorder: RecordingAdapter, uid: str, text: str) -> tuple[Card | None, str]:
    """The card ``uid`` gets back for ``text`` (None when refused) and the toast."""
    recorder.clear()
    answer = await say(service, uid, text)
    await service.outbox.drain()
    cards = recorder.to(uid)
    return (cards[-1] if cards and answer.toast_kind != "error" else None), answer.toast or ""


async def seed_tree(service: Service, org: Org, *, visibility: str = "company") -> dict[str, int]:
    """The tree the view tests read (progress in brackets)::

    刘总 提升客户满意度 (company, NPS 32 → 40 at 36: 50 %)
      王经理 新版本按期上线 (研发部, 60 %)
        王经理 完成架构评审 (75 %)
          张三 计费系统上线 (90 %, weight 60)
        张三 带新人 (20 %, weight 40)
      周销售 签约 20 家 (50 %)
    刘总 伞形目标 (company, no key results)
      孙经理 销售额 (40 %)
    李四 写文档 (0 %, not aligned)
    """
    cycle = await add_cycle(service, org.everyone, visibility=visibility)
    ids: dict[str, int] = {"cycle": cycle.id}
    ids["c1"] = await add_goal(
        service, cycle, org.leader, "提升客户满意度", level="company", krs=[Kr("NPS", 36, 40, "分", start=32)]
    )
    ids["d1"] = await add_goal(
        service,
        cycle,
        org.manager,
        "新版本按期上线",
        level="department",
        department_id=org.rnd.id,
        parent=ids["c1"],
        weight=100,
        krs=[Kr("上线功能", 6, 10, "个")],
    )
    ids["m1"] = await add_goal(
        service,
        cycle,
        org.manager,
        "完成架构评审",
        parent=ids["d1"],
        weight=100,
        krs=[Kr("评审", 3, 4, "次")],
    )
    ids["e1"] = await add_goal(
        service,
        cycle,
        org.emp1,
        "计费系统上线",
        parent=ids["m1"],
        weight=60,
        krs=[Kr("签约客户", 36, 40, "个")],
    )
    ids["e2"] = await add_goal(
        service,
        cycle,
        org.emp1,
        "带新人",
        parent=ids["d1"],
        weight=40,
        krs=[Kr("独立值班", 1, 5, "人")],
        position=1,
    )
    ids["f1"] = await add_goal(service, cycle, org.emp2, "写文档", weight=100, krs=[Kr("文档", 0, 10, "篇")])
    ids["s1"] = await add_goal(
        service, cycle, org.seller, "签约 20 家", parent=ids["c1"], weight=100, krs=[Kr("签约", 10, 20, "家")]
    )
    ids["umbrella"] = await add_goal(service, cycle, org.leader, "伞形目标", level="company", position=1)
    ids["u1"] = await add_goal(
        service,
        cycle,
        org.sales_manager,
        "销售额",
        parent=ids["umbrella"],
        weight=100,
        own=0.4,
        krs=[Kr("额", 4, 10)],
    )
    return ids
