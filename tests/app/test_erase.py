"""Erasing a person (issue 16 #13): ``perfloop person-erase`` and the leavers policy, SQLite and PostgreSQL.

After an erasure no row anywhere (nor the audit archive, nor the media store) holds the person's name,
platform user id or texts; the department's metrics are what they were; the audit rows are all still there,
their actor now the pseudonym ``erased-<id>``."""

from __future__ import annotations

import io
import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from bot.app import audit_archive
from bot.app.cli import main
from bot.app.erase import EraseError, erase_person
from bot.app.retention import run_retention
from bot.app.service import Service
from bot.core.clock import FixedClock
from bot.core.config import RetentionConfig, Settings
from cards.model import Card, Header, Markdown
from storage.media import MediaStore
from storage.models import (
    ActionItem,
    AuditLog,
    Base,
    CardMessage,
    CheckIn,
    ConversationState,
    Cycle,
    CycleParticipant,
    DeliverableRating,
    Evidence,
    Goal,
    GoalComment,
    GoalVersion,
    Grade,
    InboundEvent,
    KeyResult,
    KeyResultRhythm,
    KeyResultValue,
    OutboxMessage,
    PeerFeedback,
    Person,
    QuietHours,
    Recognition,
    Review321,
    SelfAssessment,
    Snapshot,
)
from storage.queries.metrics import Scope, Window, metrics_by
from tests.support.factories import Org

UID = "u-zhang-7f3a9c"
NAME = "张三丰"
TEXTS = {
    "obstacles": "测试环境总是在周五下午崩溃",
    "support": "需要运维同事帮忙排查数据库",
    "manager_comment": "经理对张三丰本周进展的评语",
    "review": "这个月完成了支付模块的重构",
    "goal": "季度目标：把接口延迟降到一百毫秒",
    "goals_comment": "目标权重需要再平衡一下",
    "deliverable": "交付物：上线新版对账报表",
    "evidence_comment": "照片里的白板很清楚",
    "kudos": "感谢三丰周末帮忙值班",
    "self_example": "自评例子：主导了一次故障复盘",
    "peer_example": "他给同事的反馈例子：代码评审很细致",
    "rating_comment": "评分备注：交付比预期早两天",
    "grade_reason": "等级理由：全年稳定交付",
    "vague": "还行吧，差不多就这样了",
    "checkin_note": "进展说明：周三和客户对齐了验收口径",
    "snapshot_goal": "快照里的目标：对账报表上线",
    "kr_title": "对账报表延迟从 9 秒降到 2 秒",
    "kr_milestone": "灰度发布到华东区机房",
    "kr_note": "数值备注：本周给对账接口加了缓存",
    "comment_by_him": "写给李四的评论：接口文档写得很清楚",
    "comment_on_him": "经理对这个目标的评论：再加一条可用性指标",
    "answer_by_him": "他作为代理人的回复：目标维持不变",
    "version_reason": "调整理由：客户把验收提前到十二月",
    "version_comment": "退回意见：先和财务确认口径",
    "version_kr": "版本里的关键结果：对账差错降到每月一笔",
    "rhythm": "每周三十点前上传对账截图",
}


def png_bytes(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def erasable(settings: Settings, tmp_path: Path, **kw: Any) -> Settings:
    return settings.model_copy(update={"retention": RetentionConfig(archive_dir=tmp_path / "archive", **kw)})


async def seed_person_data(
    service: Service, org: Org, clock: FixedClock, settings: Settings
) -> dict[str, Any]:
    """Everything a person leaves behind, written directly (the flows are tested elsewhere)."""
    now = clock.now()
    stored = await MediaStore(settings.media.dir, max_bytes=10_000_000).store_image(png_bytes())
    snapshot_image = await MediaStore(settings.media.dir, max_bytes=10_000_000).store_image(
        png_bytes((30, 200, 30))
    )
    async with service.factory() as session, session.begin():
        emp = await session.get(Person, org.emp1.id)
        assert emp is not None
        emp.platform_user_id, emp.name = UID, NAME
        pid, mgr = emp.id, org.manager.id
        cycle = Cycle(workspace_id=org.workspace.id, code="2026-H2", status="active")
        session.add(cycle)
        await session.flush()
        session.add(CycleParticipant(cycle_id=cycle.id, person_id=pid, goals_comment=TEXTS["goals_comment"]))
        goal = Goal(
            cycle_id=cycle.id, person_id=pid, objective=TEXTS["goal"], key_result=TEXTS["goal"], weight=100
        )
        ci = CheckIn(
            person_id=pid,
            period="2026-11-19",
            status="followup",
            obstacles=TEXTS["obstacles"],
            support=TEXTS["support"],
            progress={"0": 60, "note": TEXTS["checkin_note"]},
            manager_comment=TEXTS["manager_comment"],
            answered_by_id=mgr,
            due_at=now - timedelta(days=5),
            submitted_at=now - timedelta(days=5, hours=-2),
            answered_at=now - timedelta(days=4),
        )
        other_ci = CheckIn(
            person_id=org.emp2.id, period="2026-11-19", status="submitted", due_at=now - timedelta(days=5)
        )
        review = Review321(person_id=pid, period="2026-10", status="confirmed", solid_action=TEXTS["review"])
        item = ActionItem(
            owner_id=pid,
            created_by_id=mgr,
            source="manual",
            deliverable=TEXTS["deliverable"],
            deadline=(now - timedelta(days=3)).date(),
            status="done",
            evidence_required=True,
            done_at=now - timedelta(days=4),
            first_response_at=now - timedelta(days=6),
            created_at=now - timedelta(days=7),
        )
        session.add_all([goal, ci, other_ci, review, item])
        await session.flush()
        session.add(
            Evidence(
                person_id=pid,
                action_item_id=item.id,
                file_path=str(stored.path),
                sha256=stored.info.sha256,
                size=stored.info.size,
                mime=stored.info.mime,
                platform_media_ref="media-ref-of-zhang",
                comment=TEXTS["evidence_comment"],
                rated_by_id=mgr,
            )
        )
        session.add(
            Recognition(
                from_person_id=org.emp2.id,
                to_person_id=pid,
                reason=TEXTS["kudos"],
                points=3,
                created_at=now - timedelta(days=2),
            )
        )
        session.add(
            SelfAssessment(
                cycle_id=cycle.id,
                person_id=pid,
                status="submitted",
                answers={
                    "goals": {str(goal.id): {"score": 4, "example": TEXTS["self_example"]}},
                    "dims": {"quality": 4},
                },
            )
        )
        peer = PeerFeedback(
            cycle_id=cycle.id,
            subject_id=org.emp2.id,
            rater_id=pid,
            status="answered",
            scores={"quality": 5},
            example=TEXTS["peer_example"],
        )
        session.add(peer)
        session.add(
            DeliverableRating(
                kind="action",
                ref_id=item.id,
                owner_id=pid,
                rater_id=mgr,
                role="acceptor",
                status="submitted",
                completeness=5,
                comment=TEXTS["rating_comment"],
            )
        )
        session.add(
            Grade(
                cycle_id=cycle.id,
                person_id=pid,
                department_id=org.rnd.id,
                grade="A",
                reason=TEXTS["grade_reason"],
                proposed_by_id=mgr,
            )
        )
        session.add(
            ConversationState(
                person_id=pid,
                kind="chatform",
                ref_id=1,
                data={"answers": {"x": TEXTS["obstacles"]}},
                expires_at=now + timedelta(hours=1),
            )
        )
        session.add(QuietHours(person_id=pid, starts="22:00", ends="08:00"))
        await session.flush()
        # The goal tree (issue 17): a key result of theirs with a value note and a rhythm, comments by and
        # on them, a challenge they answered, and a returned adjustment of their goals.
        kr = KeyResult(
            goal_id=goal.id,
            title=TEXTS["kr_title"],
            start_value=9,
            target_value=2,
            milestones=[{"name": TEXTS["kr_milestone"], "due": None, "done": True}],
        )
        other_goal = Goal(cycle_id=cycle.id, person_id=org.emp2.id, objective="李四的目标", weight=100)
        session.add_all([kr, other_goal])
        await session.flush()
        session.add(
            KeyResultValue(
                key_result_id=kr.id, value=5, source="owner", recorded_by_id=pid, note=TEXTS["kr_note"]
            )
        )
        session.add(KeyResultRhythm(key_result_id=kr.id, person_id=pid, text=TEXTS["rhythm"], weekday=2))
        session.add_all(
            [
                GoalComment(goal_id=other_goal.id, author_id=pid, body=TEXTS["comment_by_him"]),
                GoalComment(goal_id=goal.id, author_id=mgr, body=TEXTS["comment_on_him"]),
                GoalComment(
                    goal_id=other_goal.id,
                    author_id=mgr,
                    kind="challenge",
                    direction="up",
                    body="二十家客户太少，去年就做到了二十五家",
                    status="kept",
                    answer=TEXTS["answer_by_him"],
                    answered_by_id=pid,
                ),
                GoalVersion(
                    cycle_id=cycle.id,
                    person_id=pid,
                    version=2,
                    status="returned",
                    reason=TEXTS["version_reason"],
                    comment=TEXTS["version_comment"],
                    decided_by_id=mgr,
                    content={
                        "goals": [
                            {
                                "id": goal.id,
                                "objective": TEXTS["goal"],
                                "weight": 100,
                                "key_results": [{"id": None, "title": TEXTS["version_kr"], "kind": "number"}],
                            }
                        ]
                    },
                ),
            ]
        )
        await session.flush()
        # The audit trail: their own rows, the manager's rows about their records, one row by someone else.
        session.add(
            AuditLog(
                at=now - timedelta(days=500),
                actor_id=pid,
                action="checkin.submitted",
                entity="checkin",
                entity_id=ci.id,
                detail={},
            )
        )
        session.add(
            AuditLog(
                at=now - timedelta(days=500),
                actor_id=mgr,
                action="checkin.followup",
                entity="checkin",
                entity_id=ci.id,
                detail={"comment": TEXTS["manager_comment"]},
            )
        )
        session.add(
            AuditLog(
                at=now,
                actor_id=pid,
                action="vague.bounced",
                entity="peer_feedback",
                entity_id=peer.id,
                detail={"text": TEXTS["vague"]},
            )
        )
        session.add(
            AuditLog(
                at=now,
                actor_id=mgr,
                action="grade.proposed",
                entity="grade",
                entity_id=1,
                detail={"person_id": pid, "to": "A", "why": TEXTS["grade_reason"]},
            )
        )
        session.add(
            AuditLog(
                at=now,
                actor_id=mgr,
                action="cycle.started",
                entity="cycle",
                entity_id=cycle.id,
                detail={"code": "2026-H2"},
            )
        )
        # Events and messages.
        session.add(
            InboundEvent(
                platform="rec",
                event_id="ev-zhang",
                kind="text",
                person_id=pid,
                answer={"toast": TEXTS["vague"]},
            )
        )
        session.add(
            InboundEvent(
                platform="rec",
                event_id="ev-mgr",
                kind="card_action",
                person_id=mgr,
                answer={"toast": None, "card": {"title": f"{NAME} 的签到"}},
            )
        )
        session.add(
            InboundEvent(
                platform="rec", event_id="ev-other", kind="text", person_id=mgr, answer={"toast": "ok"}
            )
        )

        def card(body: str) -> dict[str, Any]:
            return Card(header=Header(title="t"), elements=[Markdown(text=body)]).model_dump(mode="json")

        ws = org.workspace.id
        session.add_all(
            [
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=[UID],
                    card=card("hi"),
                    status="sent",
                    sent_at=now,
                    card_key=f"checkin:{ci.id}",
                ),
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=["mgr"],
                    card=card(f"{NAME}: {TEXTS['obstacles']}"),
                    status="sent",
                    sent_at=now,
                ),
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=["mgr"],
                    card=card(TEXTS["support"]),
                    status="pending",
                ),
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=["mgr"],
                    card=card("unrelated"),
                    status="pending",
                    dedupe_key="keep-me",
                ),
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=[UID, "emp2"],
                    card=card("kickoff"),
                    status="sent",
                    sent_at=now,
                    result={"refs": {UID: "m1", "emp2": "m2"}, "invalid": []},
                ),
                OutboxMessage(
                    workspace_id=ws,
                    platform="rec",
                    recipients=[UID],
                    card=card("x"),
                    status="sent",
                    sent_at=now,
                    dedupe_key=f"unknown-user:rec:rec-app:{UID}:2026-11-24",
                ),
            ]
        )
        session.add(
            CardMessage(
                platform="rec", card_key=f"checkin:{ci.id}", platform_user_id=UID, message_ref="m-zhang"
            )
        )
        session.add(
            CardMessage(
                platform="rec", card_key=f"checkin:{other_ci.id}", platform_user_id="emp2", message_ref="m-li"
            )
        )
        session.add(
            Snapshot(
                person_id=pid,
                month="2026-10",
                figures={"goals": [{"title": TEXTS["snapshot_goal"], "progress": 40}]},
                media_id=snapshot_image.info.sha256,
            )
        )
        await session.execute(update(Person).where(Person.id == pid).values(active=False))
    return {
        "sha": stored.info.sha256,
        "path": stored.path,
        "snapshot_path": snapshot_image.path,
        "pid": org.emp1.id,
    }


async def department_metrics(service: Service, org: Org, clock: FixedClock) -> dict[Any, dict[str, Any]]:
    window = Window.ending(clock.now().date() + timedelta(days=1), 30, UTC)
    async with service.factory() as session:
        grouped = await metrics_by(session, Scope(org.workspace.id), window, "department")
    return {k: v.as_dict() for k, v in grouped.items()}


async def everything(service: Service) -> str:
    """Every row of every table, as text."""
    out: list[str] = []
    async with service.factory() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                out.append(json.dumps(dict(row), ensure_ascii=False, default=str))
    return "\n".join(out)


def needles() -> list[str]:
    return [NAME, UID, "media-ref-of-zhang", *TEXTS.values()]


async def test_erase_leaves_no_trace_and_keeps_metrics_and_the_audit_trail(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    settings = erasable(service.settings, tmp_path)
    seeded = await seed_person_data(service, org, clock, settings)
    await run_retention(service.factory, settings, clock)  # two old audit rows go to the archive first
    archive = settings.retention.archive_dir
    assert audit_archive.count(archive, lambda r: True) == 2
    before = await department_metrics(service, org, clock)
    assert before[org.rnd.id]["checkins_done"] >= 1 and before[org.rnd.id]["kudos_points"] == 3
    audit_before = await _audit_rows(service)
    seeded_dump = await everything(service)
    assert all(n in seeded_dump for n in needles())  # the data really is there

    dry = await erase_person(service.factory, settings, seeded["pid"], apply=False)
    assert not dry.applied and dry.counts["checkins"] == 1 and dry.media_files == 2 and dry.archive_rows == 2
    assert dry.counts["snapshots"] == 1
    assert NAME in await everything(service) and seeded["path"].exists()  # a dry run changes nothing

    report = await erase_person(service.factory, settings, seeded["pid"], apply=True)

    assert report.counts == dry.counts and report.media_files == 2
    dump = await everything(service)
    left = [n for n in needles() if n in dump]
    assert left == [], left
    archived = "\n".join(json.dumps(r, ensure_ascii=False) for r in audit_archive.read_all(archive))
    assert [n for n in needles() if n in archived] == []
    assert not seeded["path"].exists() and not seeded["snapshot_path"].exists()
    assert await department_metrics(service, org, clock) == before
    assert await _audit_rows(service) == audit_before  # every audit row is still there
    async with service.factory() as session:
        person = await session.get(Person, seeded["pid"])
        assert person is not None and person.name == person.platform_user_id == f"erased-{seeded['pid']}"
        actors = list(
            await session.scalars(select(AuditLog.actor_id).where(AuditLog.action == "vague.bounced"))
        )
        assert actors == [seeded["pid"]]  # the audit row's actor now reads as the pseudonym
        # Someone else's unrelated message still goes out; the multi-recipient row only lost them.
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert [r.dedupe_key for r in rows if r.status == "pending"] == ["keep-me"]
        assert [r.recipients for r in rows if r.result.get("refs")] == [["emp2"]]
        assert (await session.scalar(select(func.count()).select_from(CardMessage))) == 1
        assert (await session.scalar(select(func.count()).select_from(InboundEvent))) == 2
        # The ids that counts are made of are all still there.
        assert await session.scalar(
            select(PeerFeedback.scores).where(PeerFeedback.rater_id == seeded["pid"])
        ) == {"quality": 5}
        # The goal tree keeps its numbers and statuses; the rhythm of a person who is gone stops.
        kr = await session.scalar(select(KeyResult))
        assert kr is not None and (kr.title, kr.start_value, kr.target_value) == ("", 9, 2)
        assert kr.milestones == [{"name": "", "due": None, "done": True}]
        assert await session.scalar(select(KeyResultValue.value)) == 5
        rhythm = await session.scalar(select(KeyResultRhythm))
        assert rhythm is not None and (rhythm.text, rhythm.active) == ("", False)
        challenge = await session.scalar(select(GoalComment).where(GoalComment.kind == "challenge"))
        assert challenge is not None and challenge.status == "kept" and challenge.answer is None
        assert challenge.body  # someone else's challenge of someone else's goal stays
        version = await session.scalar(select(GoalVersion))
        assert version is not None and version.content["goals"][0]["weight"] == 100
    assert report.counts["comments on goals"] == 2 and report.counts["goal versions"] == 1
    with pytest.raises(EraseError, match="already erased"):
        await erase_person(service.factory, settings, seeded["pid"], apply=True)


async def _audit_rows(service: Service) -> list[tuple[int, int | None, str]]:
    async with service.factory() as session:
        db = [(r.id, r.actor_id, r.action) for r in await session.scalars(select(AuditLog))]
    return sorted(db)


async def test_a_published_anonymous_example_is_kept_so_the_aggregate_does_not_name_its_author(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    settings = erasable(service.settings, tmp_path)
    seeded = await seed_person_data(service, org, clock, settings)
    released = "客户回访流程改成周报后，漏回访从 6 单降到 1 单"
    async with service.factory() as session, session.begin():
        cycle_id = await session.scalar(
            select(PeerFeedback.cycle_id).where(PeerFeedback.rater_id == seeded["pid"])
        )
        assert cycle_id is not None
        session.add(
            PeerFeedback(
                cycle_id=cycle_id,
                subject_id=org.manager.id,
                rater_id=seeded["pid"],
                status="answered",
                scores={"quality": 4},
                example=released,
                released_at=clock.now(),
            )
        )
    await erase_person(service.factory, settings, seeded["pid"], apply=True)
    async with service.factory() as session:
        examples = list(
            await session.scalars(select(PeerFeedback.example).where(PeerFeedback.rater_id == seeded["pid"]))
        )
    # The unpublished example went; the published one is unchanged, so the manager's aggregate is too.
    assert sorted(e or "" for e in examples) == sorted(["", released])


async def test_leavers_are_erased_by_the_retention_sweep_after_n_days(
    service: Service, org: Org, clock: FixedClock, tmp_path: Path
) -> None:
    settings = erasable(service.settings, tmp_path, leavers_erase_days=30)
    async with service.factory() as session, session.begin():
        long_gone = clock.now() - timedelta(days=31)
        await session.execute(
            update(Person).where(Person.id == org.emp1.id).values(active=False, updated_at=long_gone)
        )
        await session.execute(
            update(Person).where(Person.id == org.emp2.id).values(active=False)
        )  # left today
        await session.execute(
            update(Person).where(Person.id == org.seller.id).values(updated_at=long_gone)
        )  # active

    report = await run_retention(service.factory, settings, clock)

    assert report.counts.get("leavers erased") == 1
    async with service.factory() as session:
        names = dict((await session.execute(select(Person.id, Person.name))).all())
    assert names[org.emp1.id] == f"erased-{org.emp1.id}"
    assert names[org.emp2.id] == "李四" and names[org.seller.id] == "周销售"
    again = await run_retention(service.factory, settings, clock)
    assert "leavers erased" not in again.counts  # erased once, never again


async def test_erase_refuses_an_active_or_unknown_person(service: Service, org: Org, tmp_path: Path) -> None:
    settings = erasable(service.settings, tmp_path)
    with pytest.raises(EraseError, match="still active"):
        await erase_person(service.factory, settings, org.emp1.id, apply=True)
    with pytest.raises(EraseError, match="no person"):
        await erase_person(service.factory, settings, 999_999, apply=True)
    async with service.factory() as session:
        assert (await session.get(Person, org.emp1.id)).name == "张三"  # type: ignore[union-attr]


def test_person_erase_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import sqlite3

    for key in list(os.environ):
        if key.startswith("PERFLOOP_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "cli.db"
    monkeypatch.setenv("PERFLOOP_DATABASE__URL", f"sqlite+aiosqlite:///{db}")
    assert main(["migrate"]) == 0
    (tmp_path / "org.csv").write_text(
        "department,user_id,name,manager_id,hrbp_id,roles,timezone,locale\n"
        "研发部,boss,刘总,,,employee;leader,,\n研发部,leaver,王离职,boss,,,,\n",
        encoding="utf-8",
    )
    assert main(["org", "import", "org.csv"]) == 0
    capsys.readouterr()

    with pytest.raises(SystemExit) as helped:
        main(["person-erase", "--help"])
    assert helped.value.code == 0 and "--yes" in capsys.readouterr().out
    assert main(["person-erase", "nobody"]) == 2
    assert "no person with user id 'nobody'" in capsys.readouterr().err
    assert main(["person-erase", "leaver"]) == 2  # still active
    assert "still active" in capsys.readouterr().err

    con = sqlite3.connect(db)
    con.execute("UPDATE people SET active = 0 WHERE platform_user_id = 'leaver'")
    con.commit()
    assert main(["person-erase", "leaver"]) == 0  # dry run
    assert "dry run" in capsys.readouterr().out
    assert con.execute("SELECT name FROM people WHERE platform_user_id = 'leaver'").fetchone() == ("王离职",)
    assert main(["person-erase", "leaver", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "erased as erased-" in out
    assert con.execute(
        "SELECT count(*) FROM people WHERE name = '王离职' OR platform_user_id = 'leaver'"
    ).fetchone() == (0,)
    assert main(["person-erase", "leaver", "--yes"]) == 2  # the id is gone now
    con.close()
