"""A small company for the scheduled-wave tests: everyone's check-in due at Friday 2026-12-04 16:00 in
Shanghai and an action item each due that day, with the people the per-person rules treat differently.

- ``plain``: due, nothing special (most of the company);
- ``leave``: on leave that day (check-in ``skipped``, reminder waits);
- ``paused``: nothing at all;
- ``berlin``: lives in Europe/Berlin, so 16:00 there is seven hours later (not due at the Shanghai wave);
- ``monday``: their team checks in on Mondays (``team_settings``);
- ``quiet``: quiet hours 15:00-17:30: the check-in card waits until 17:30;
- ``early``: already answered this period's check-in early (``/checkin``): no second check-in, no card;
- ``weekly``: their own cadence of one week (due this Friday too).

The first goal of every person has a key result with a recorded value, so check-in cards carry key-result
lines; the owner cards of the items were delivered (``card_messages``) except ``queued``'s, still pending
in the outbox, and ``sending``'s, being sent right now (the three cases of ``Outbox.supersede``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cards.model import Card, Header, Markdown
from storage.models import (
    ActionItem,
    CardMessage,
    CheckIn,
    Cycle,
    CycleParticipant,
    Goal,
    KeyResult,
    KeyResultValue,
    OutboxMessage,
    Person,
    QuietHours,
    TeamSetting,
    Workspace,
)

WAVE_DAY = date(2026, 12, 4)
CHECKINS_AT = datetime(2026, 12, 4, 8, 0, 30, tzinfo=UTC)
"""Friday 16:00:30 in Shanghai: the check-in wave's minute."""
REMINDERS_AT = datetime(2026, 12, 4, 1, 30, 30, tzinfo=UTC)
"""Friday 09:30:30 in Shanghai: the reminder wave's minute."""
SPECIAL = ("leave", "paused", "berlin", "monday", "quiet", "early", "weekly", "queued", "sending")


@dataclass
class WaveOrg:
    workspace_id: int
    manager_id: int
    ids: dict[str, int] = field(default_factory=dict)
    """Person id by name: the special ones by role, the rest ``p<n>``."""
    items: dict[int, int] = field(default_factory=dict)
    """Action item id by owner id."""

    @property
    def due_checkins(self) -> set[int]:
        """Who the check-in wave opens a check-in for."""
        skip = {self.ids[n] for n in ("leave", "paused", "berlin", "monday", "early")}
        return {pid for name, pid in self.ids.items() if pid not in skip}

    @property
    def due_reminders(self) -> set[int]:
        """Who the reminder wave reminds: everyone but the paused, those on leave and the one in Berlin (it
        is 02:30 there)."""
        skip = {self.ids[n] for n in ("leave", "paused", "berlin")}
        return {pid for pid in self.ids.values() if pid not in skip}


async def seed_wave(session: AsyncSession, plain: int = 20) -> WaveOrg:
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    ws = Workspace(platform="rec", app_id="rec-app", name="波次公司")
    session.add(ws)
    await session.flush()
    boss = Person(workspace_id=ws.id, platform_user_id="boss", name="总经理", roles="employee,manager")
    session.add(boss)
    await session.flush()
    monday_boss = Person(
        workspace_id=ws.id,
        platform_user_id="mboss",
        name="周一经理",
        roles="employee,manager",
        manager_id=boss.id,
    )
    session.add(monday_boss)
    await session.flush()
    session.add(TeamSetting(manager_id=monday_boss.id, checkin_weekday=0))
    org = WaveOrg(workspace_id=ws.id, manager_id=boss.id)
    specials: dict[str, dict[str, Any]] = {
        "leave": {"leave_from": date(2026, 12, 1), "leave_until": date(2026, 12, 11)},
        "paused": {"paused": True},
        "berlin": {"timezone": "Europe/Berlin"},
        "monday": {"manager_id": monday_boss.id},
        "quiet": {},
        "early": {},
        "weekly": {"cadence_weeks": 1},
        "queued": {},
        "sending": {},
    }
    names = [*SPECIAL, *(f"p{i:03d}" for i in range(plain))]
    for name in names:
        values = {"manager_id": boss.id, **specials.get(name, {})}
        person = Person(
            workspace_id=ws.id, platform_user_id=name, name=f"员工{name}", roles="employee", **values
        )
        session.add(person)
        await session.flush()
        org.ids[name] = person.id
    org.ids["mboss"] = monday_boss.id  # due too: a Friday team member of the boss's team
    session.add(QuietHours(person_id=org.ids["quiet"], starts="15:00", ends="17:30"))
    cycle = Cycle(workspace_id=ws.id, code="2026-Q4", status="active", scope=[], started_at=now)
    session.add(cycle)
    await session.flush()
    people = sorted(org.ids.values())
    await session.execute(
        insert(CycleParticipant),
        [{"cycle_id": cycle.id, "person_id": pid, "goals_status": "confirmed"} for pid in people],
    )
    for pid in people:
        first = Goal(cycle_id=cycle.id, person_id=pid, position=0, objective=f"目标甲{pid}", weight=60)
        second = Goal(cycle_id=cycle.id, person_id=pid, position=1, objective=f"目标乙{pid}", weight=40)
        session.add_all([first, second])
        await session.flush()
        kr = KeyResult(goal_id=first.id, title=f"签约客户{pid}", kind="number", unit="家", target_value=10.0)
        session.add(kr)
        await session.flush()
        session.add(
            KeyResultValue(
                key_result_id=kr.id,
                value=float(pid % 7),
                progress=(pid % 7) / 10,
                source="owner",
                recorded_at=now,
            )
        )
    session.add(
        CheckIn(
            person_id=org.ids["early"],
            cycle_id=cycle.id,
            period=WAVE_DAY.isoformat(),
            status="submitted",
            due_at=CHECKINS_AT,
            progress={"note": "提前"},
        )
    )
    for pid in people:
        item = ActionItem(
            owner_id=pid,
            acceptor_id=boss.id,
            created_by_id=boss.id,
            source="manual",
            deliverable=f"交付物{pid}",
            deadline=WAVE_DAY,
            status="open",
            created_at=now,
        )
        session.add(item)
        await session.flush()
        org.items[pid] = item.id
    card = Card(header=Header(title="行动项"), elements=[Markdown(text="旧卡片")]).model_dump(mode="json")
    for name, pid in org.ids.items():
        key = f"action-item:{org.items[pid]}"
        if name in ("queued", "sending"):
            session.add(
                OutboxMessage(
                    workspace_id=ws.id,
                    platform="rec",
                    op="send",
                    recipients=[name],
                    card=card,
                    card_key=key,
                    status="pending" if name == "queued" else "sending",
                    next_attempt_at=now + timedelta(days=40),
                )
            )
        else:
            session.add(
                CardMessage(platform="rec", card_key=key, platform_user_id=name, message_ref=f"m-{pid}")
            )
    await session.flush()
    return org
