"""Erasing one person (PIPL's right to deletion, issue 16 #13): ``perfloop person-erase``, the leavers policy.

The person's row is *anonymised in place*, not deleted: name and platform user id become a stable pseudonym
``erased-<person id>``. Every foreign key that points at them (check-ins, action items, grades, ledger keys,
the audit trail's ``actor_id``) keeps pointing at the same row, so:
- aggregates stay computable: the rows that counts and rates are made of (statuses, dates, scores, points,
  department at the time) are untouched, only the words go;
- the audit trail keeps its integrity: no row is deleted from it, and the actor of the person's own rows now
  reads as the pseudonym; free texts in the details of the rows about them are replaced by ``[erased]``, in
  the database and in the archive files alike.

What goes: their name and platform id; the free texts they wrote and the texts written about them
(check-in and 3-2-1 answers, goals, deliverables they own, evidence comments, kudos reasons, self-assessment
examples, peer-feedback examples given or received, rating comments, grade reasons, manager comments; in the
goal tree: key results of their goals, value notes, comments and challenges by them or on their goals and the
answers they gave, their goal versions' texts, their key-result rhythms, which also stop);
their evidence photos in the media store (unless the same file belongs to someone else too); their inbound
events, their conversation state and quiet hours; every outbox row addressed only to them and their place
in multi-recipient rows; where their cards landed; and any other message, event answer or dedupe key that
still carries their name, id or texts.

What stays, deliberately: mentions of their name inside *other* people's free texts (which cannot be told
apart from a namesake), rows that hold only ids, and the examples they gave as an anonymous peer that were
already published (erasing one would let a reader diff the aggregate and learn which example was theirs;
the example itself is about someone else and no longer links to them).

Everything in the database happens in one transaction (a dry run does the same work and rolls it back, so
its counts are exact). Files are touched only outside the dry run: evidence photos are deleted before the
commit (a failed run is simply run again; the person is not marked erased until it commits), and the audit
archive is scrubbed before and after the commit (after: in case the retention sweep archived one of their
rows while this ran).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import audit_archive, person_lookup
from bot.core.config import Settings
from storage.media import MediaStore
from storage.models import (
    ActionItem,
    AuditLog,
    CardMessage,
    CheckIn,
    ConversationState,
    CycleParticipant,
    DeliverableRating,
    Evidence,
    EvidenceRequest,
    Goal,
    GoalComment,
    GoalVersion,
    Grade,
    GradeAppeal,
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
    Workspace,
)
from storage.queries.retention import ERASED_PREFIX

log = logging.getLogger("perfloop.erase")

ERASED = "[erased]"
FREE_TEXT_KEYS = frozenset(
    {
        "text",
        "comment",
        "reason",
        "why",
        "deliverable",
        "objective",
        "key_result",
        "example",
        "note",
        "sha256",
    }
)
"""Audit ``detail`` keys that hold words somebody typed (or a photo's fingerprint), not codes or ids."""
NEUTRAL_ANSWER: dict[str, Any] = {"toast": None, "toast_kind": "info", "card": None}
"""What a scrubbed inbound event answers a late retry with: still a duplicate, just silent."""
SCAN_CHUNK = 1000
MIN_MATCH = 2
"""Texts shorter than this are not searched for elsewhere (a one-character answer matches everything)."""
STRONG_MATCH = 12
"""A text at least this long is theirs for certain: enough to hold back someone else's unsent message."""


class EraseError(Exception):
    """Why a person cannot be erased, as one line for the operator."""


@dataclass
class EraseReport:
    person_id: int
    pseudonym: str
    applied: bool
    counts: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    archive_rows: int = 0

    def add(self, what: str, n: int) -> None:
        if n:
            self.counts[what] = self.counts.get(what, 0) + n

    def summary(self) -> str:
        verb = "erased" if self.applied else "would erase (dry run; pass --yes to erase)"
        parts = [f"{k} {v}" for k, v in sorted(self.counts.items())]
        if self.media_files:
            parts.append(f"media files {self.media_files}")
        if self.archive_rows:
            parts.append(f"archived audit rows {self.archive_rows}")
        return f"person {self.person_id} {verb} as {self.pseudonym}: " + (", ".join(parts) or "nothing else")


def pseudonym(person_id: int) -> str:
    return f"{ERASED_PREFIX}{person_id}"


async def find_person(session: AsyncSession, user_id: str, platform: str | None) -> Person:
    """The one person with this platform user id (``platform`` narrows it), or a clear ``EraseError``."""
    if not user_id.strip():
        raise EraseError("user id is empty")
    try:
        return await person_lookup.find_person(session, user_id, platform)
    except person_lookup.PersonLookupError as exc:
        raise EraseError(str(exc)) from None


async def erase_person(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    person_id: int,
    *,
    apply: bool,
    allow_active: bool = False,
) -> EraseReport:
    """Erase (``apply``) or count what erasing would change (a dry run). An active person is refused unless
    ``allow_active``: the org sync would bring them straight back from the platform's directory."""
    media = MediaStore(settings.media.dir, max_bytes=settings.media.max_image_bytes)
    archive = settings.retention.archive_dir
    async with factory() as session:
        tx = await session.begin()
        try:
            person = await session.get(Person, person_id, with_for_update=True)
            if person is None:
                raise EraseError(f"no person with id {person_id}")
            if person.platform_user_id.startswith(ERASED_PREFIX):
                raise EraseError(f"person {person_id} is already erased ({person.platform_user_id})")
            if person.active and not allow_active:
                raise EraseError(
                    f"person {person_id} ({person.platform_user_id}) is still active: deactivate them first "
                    "(they left the platform's directory, or `perfloop org import --deactivate-missing`)"
                )
            report = EraseReport(person_id=person.id, pseudonym=pseudonym(person.id), applied=apply)
            eraser = _Eraser(session, person, report)
            photos = await eraser.run()
            linked = eraser.linked
            needles = eraser.needles
            if apply:
                report.media_files = await asyncio.to_thread(_delete_media, media, photos)
                report.archive_rows = await asyncio.to_thread(_scrub_archive, archive, linked, needles)
                await tx.commit()
            else:
                report.media_files = sum(1 for sha in photos if _media_exists(media, sha))
                report.archive_rows = await asyncio.to_thread(_count_archive, archive, linked)
                await tx.rollback()
        except BaseException:
            if tx.is_active:
                await tx.rollback()
            raise
    if apply:
        report.archive_rows += await asyncio.to_thread(_scrub_archive, archive, linked, needles)
        log.info("person erased", extra={"person_id": person_id, "counts": report.counts})
    return report


class _Eraser:
    """One erasure inside one transaction; collects what it blanked so other rows can be searched for it."""

    def __init__(self, session: AsyncSession, person: Person, report: EraseReport) -> None:
        self.s = session
        self.p = person
        self.report = report
        self.texts: set[str] = {person.name, person.platform_user_id}
        self.linked: dict[str, set[int]] = {}
        """Audit entity name -> ids of the person's records (and ``"actor"`` -> their id)."""

    @property
    def needles(self) -> list[str]:
        return sorted((t for t in self.texts if t and len(t) >= MIN_MATCH), key=len, reverse=True)

    def keep(self, *texts: str | None) -> None:
        self.texts.update(t.strip() for t in texts if t and t.strip())

    async def ids(self, model: Any, *conds: Any) -> list[int]:
        return list(await self.s.scalars(select(model.id).where(or_(*conds))))

    async def blank(self, what: str, model: Any, conds: Iterable[Any], values: dict[str, Any]) -> list[int]:
        """Remember the texts about to go, then blank them; returns the ids touched."""
        conds = list(conds)
        cols = [getattr(model, name) for name in values]
        rows = (await self.s.execute(select(model.id, *cols).where(or_(*conds)))).all()
        for row in rows:
            self.keep(*(v for v in row[1:] if isinstance(v, str)))
        ids = [row[0] for row in rows]
        if ids:
            await self.s.execute(
                update(model)
                .where(model.id.in_(ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        self.report.add(what, len(ids))
        return ids

    async def run(self) -> set[str]:
        """Erase everything in the database; returns the sha256 of the photos whose files should go."""
        pid, uid = self.p.id, self.p.platform_user_id
        s = self.s
        link = self.linked
        link["actor"] = {pid}
        link["person"] = {pid}
        link["checkin"] = set(
            await self.blank(
                "checkins", CheckIn, [CheckIn.person_id == pid], {"obstacles": None, "support": None}
            )
        )
        await self._checkin_notes(pid)
        await self.blank(
            "checkin comments",
            CheckIn,
            [CheckIn.person_id == pid, CheckIn.answered_by_id == pid],
            {"manager_comment": None},
        )
        link["review"] = set(
            await self.blank(
                "3-2-1 reviews",
                Review321,
                [Review321.person_id == pid],
                {"solid_action": None, "change_brought": None, "blocker": None, "new_action": None},
            )
        )
        link["goal"] = set(
            await self.blank("goals", Goal, [Goal.person_id == pid], {"objective": "", "key_result": ""})
        )
        await self._goal_tree(pid, sorted(link["goal"]))
        link["cycle_participant"] = set(
            await self.blank(
                "goal comments",
                CycleParticipant,
                [CycleParticipant.person_id == pid],
                {"goals_comment": None},
            )
        )
        link["action_item"] = set(
            await self.blank("action items", ActionItem, [ActionItem.owner_id == pid], {"deliverable": ""})
        )
        photos = set(
            await s.scalars(select(Evidence.sha256).where(Evidence.person_id == pid, Evidence.sha256 != ""))
        )
        link["evidence"] = set(
            await self.blank(
                "evidence",
                Evidence,
                [Evidence.person_id == pid],
                {"file_path": "", "sha256": "", "platform_media_ref": "", "comment": None},
            )
        )
        await self.blank("evidence comments", Evidence, [Evidence.rated_by_id == pid], {"comment": None})
        self.keep(*photos)
        # A photo is content-addressed: the same file may belong to someone else's evidence too.
        shared = (
            set(await s.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(photos))))
            if photos
            else set()
        )
        photos -= shared
        photos |= await self._snapshots(pid)
        link["evidence_request"] = set(await self.ids(EvidenceRequest, EvidenceRequest.person_id == pid))
        link["recognition"] = set(
            await self.blank(
                "kudos",
                Recognition,
                [Recognition.from_person_id == pid, Recognition.to_person_id == pid],
                {"reason": ""},
            )
        )
        link["self_assessment"] = set(await self._self_assessments(pid))
        link["peer_feedback"] = set(
            await self.blank(
                "peer feedback",
                PeerFeedback,
                # An example the person gave that is already part of a published anonymous aggregate stays:
                # blanking it would change that aggregate by exactly one example, and the difference would
                # name its author. Its only link to them was the rater id, which now reads as the pseudonym.
                [
                    PeerFeedback.subject_id == pid,
                    and_(PeerFeedback.rater_id == pid, PeerFeedback.released_at.is_(None)),
                ],
                {"example": None},
            )
        )
        link["deliverable_rating"] = set(
            await self.blank(
                "ratings",
                DeliverableRating,
                [DeliverableRating.rater_id == pid, DeliverableRating.owner_id == pid],
                {"comment": None},
            )
        )
        link["grade"] = set(
            await self.blank(
                "grades", Grade, [Grade.person_id == pid, Grade.proposed_by_id == pid], {"reason": None}
            )
        )
        # Appeal audit rows sit on the grade (entity "grade"), so the line above already links them.
        await self.blank(
            "grade appeals",
            GradeAppeal,
            [GradeAppeal.person_id == pid, GradeAppeal.decided_by_id == pid],
            {"reason": "", "decision_reason": None},
        )
        self.report.add(
            "conversation states",
            await _delete(s, ConversationState, ConversationState.person_id == pid),
        )
        self.report.add("quiet hours", await _delete(s, QuietHours, QuietHours.person_id == pid))
        self.report.add("inbound events", await _delete(s, InboundEvent, InboundEvent.person_id == pid))
        self.report.add(
            "card messages",
            await _delete(
                s,
                CardMessage,
                CardMessage.platform_user_id == uid,
                CardMessage.platform == await self._platform(),
            ),
        )
        await self._audit()
        await self._outbox(uid)
        await self._other_events()
        # Last: the row itself. Ids stay, so every count and the audit trail still add up.
        name = pseudonym(pid)
        await s.execute(
            update(Person)
            .where(Person.id == pid)
            .values(
                name=name,
                platform_user_id=name,
                active=False,
                paused=True,
                leave_from=None,
                leave_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        self.report.add("people", 1)
        return photos

    async def _platform(self) -> str:
        platform = await self.s.scalar(select(Workspace.platform).where(Workspace.id == self.p.workspace_id))
        return str(platform)

    async def _goal_tree(self, pid: int, goal_ids: list[int]) -> None:
        """Issue 17: the key results of their goals (titles, milestone names), the notes on values recorded
        by them or on their key results, comments and challenges they wrote or that were written on their
        goals (and the answers they gave), their goal versions' texts (and the comments they wrote on someone
        else's), and their key-result rhythms (stopped). Numbers, weights, statuses and ids stay."""
        mine = Goal.id.in_(goal_ids) if goal_ids else false()
        kr_ids = list(await self.s.scalars(select(KeyResult.id).where(KeyResult.goal_id.in_(goal_ids))))
        link = self.linked
        link["key_result"] = set(
            await self.blank("key results", KeyResult, [KeyResult.id.in_(kr_ids)], {"title": ""})
        )
        await self._json_texts(KeyResult, KeyResult.milestones, [KeyResult.id.in_(kr_ids)], _blank_milestones)
        await self.blank(
            "key result notes",
            KeyResultValue,
            [KeyResultValue.recorded_by_id == pid, KeyResultValue.key_result_id.in_(kr_ids)],
            {"note": None},
        )
        on_mine = GoalComment.goal_id.in_(select(Goal.id).where(mine))
        link["goal_comment"] = set(
            await self.blank(
                "comments on goals", GoalComment, [GoalComment.author_id == pid, on_mine], {"body": ""}
            )
        )
        await self.blank(
            "goal comment answers",
            GoalComment,
            [GoalComment.answered_by_id == pid, on_mine],
            {"answer": None},
        )
        link["goal_version"] = set(
            await self.blank(
                "goal versions",
                GoalVersion,
                [GoalVersion.person_id == pid],
                {"reason": None, "comment": None},
            )
        )
        await self._json_texts(
            GoalVersion, GoalVersion.content, [GoalVersion.person_id == pid], _blank_content
        )
        await self.blank(
            "goal version comments", GoalVersion, [GoalVersion.decided_by_id == pid], {"comment": None}
        )
        link["kr_rhythm"] = set(
            await self.blank(
                "key result rhythms",
                KeyResultRhythm,
                [KeyResultRhythm.person_id == pid, KeyResultRhythm.key_result_id.in_(kr_ids)],
                {"text": "", "active": False},
            )
        )

    async def _json_texts(
        self, model: Any, column: Any, conds: list[Any], blank: Callable[[Any, set[str]], Any]
    ) -> None:
        """Rewrite a JSON column row by row through ``blank`` (which adds the texts it removes to the set),
        since JSON editing differs per database."""
        rows = (await self.s.execute(select(model.id, column).where(or_(*conds)))).all()
        for row_id, value in rows:
            gone: set[str] = set()
            new = blank(json.loads(json.dumps(value)), gone)
            if gone:
                self.keep(*gone)
                await self.s.execute(
                    update(model)
                    .where(model.id == row_id)
                    .values({column.key: new})
                    .execution_options(synchronize_session=False)
                )

    async def _checkin_notes(self, pid: int) -> None:
        """The check-in's own-words note lives inside ``progress`` (JSON, key ``note``) beside the numbers,
        which stay for the metrics: rewritten row by row, since JSON editing differs per database."""
        rows = (
            await self.s.execute(select(CheckIn.id, CheckIn.progress).where(CheckIn.person_id == pid))
        ).all()
        for row_id, progress in rows:
            if isinstance(progress, dict) and progress.get("note"):
                self.keep(str(progress["note"]))
                kept = {k: v for k, v in progress.items() if k != "note"}
                await self.s.execute(update(CheckIn).where(CheckIn.id == row_id).values(progress=kept))

    async def _snapshots(self, pid: int) -> set[str]:
        """Monthly snapshots are figures *about* the person (goal titles included): deleted, and their
        images returned for deletion unless another snapshot uses the same file."""
        images = set(
            await self.s.scalars(
                select(Snapshot.media_id).where(Snapshot.person_id == pid, Snapshot.media_id.is_not(None))
            )
        )
        self.report.add("snapshots", await _delete(self.s, Snapshot, Snapshot.person_id == pid))
        if images:
            others = select(Snapshot.media_id).where(Snapshot.media_id.in_(images))
            images -= set(await self.s.scalars(others))
        return {sha for sha in images if sha}

    async def _self_assessments(self, pid: int) -> list[int]:
        rows = list(await self.s.scalars(select(SelfAssessment).where(SelfAssessment.person_id == pid)))
        for row in rows:
            answers = json.loads(json.dumps(row.answers))
            for goal in (answers.get("goals") or {}).values():
                if isinstance(goal, dict) and goal.get("example"):
                    self.keep(str(goal["example"]))
                    goal["example"] = ""
            await self.s.execute(
                update(SelfAssessment)
                .where(SelfAssessment.id == row.id)
                .values(answers=answers)
                .execution_options(synchronize_session=False)
            )
        self.report.add("self-assessments", len(rows))
        return [r.id for r in rows]

    async def _audit(self) -> None:
        """Scrub the free texts of every audit row by or about them; the rows themselves all stay."""
        conds = [AuditLog.actor_id == self.p.id]
        for entity, ids in self.linked.items():
            if entity != "actor" and ids:
                for start in range(0, len(ids), 500):
                    chunk = sorted(ids)[start : start + 500]
                    conds.append((AuditLog.entity == entity) & AuditLog.entity_id.in_(chunk))
        rows = (await self.s.execute(select(AuditLog.id, AuditLog.detail).where(or_(*conds)))).all()
        needles = self.needles
        changed = 0
        for row_id, detail in rows:
            new = scrub_detail(detail, needles)
            if new != detail:
                await self.s.execute(
                    update(AuditLog)
                    .where(AuditLog.id == row_id)
                    .values(detail=new)
                    .execution_options(synchronize_session=False)
                )
                changed += 1
        self.report.add("audit rows pseudonymised", changed)

    @property
    def strong_needles(self) -> list[str]:
        """What is certainly theirs: name, id, photo hashes and long texts (a short answer such as "none so
        far" could be anyone's, and must not cost someone else an unsent message)."""
        strong = {self.p.name, self.p.platform_user_id}
        return [n for n in self.needles if n in strong or len(n) >= STRONG_MATCH]

    async def _outbox(self, uid: str) -> None:
        """Rows to them alone go; multi-recipient rows lose them; any other row still carrying their name,
        id or texts loses its card (sent) or is dropped (not yet sent: it must not go out with them in it)."""
        s = self.s
        needles, strong = self.needles, self.strong_needles
        deleted = trimmed = blanked = 0
        last = 0
        m = OutboxMessage
        while True:
            rows = (
                await s.execute(
                    select(m.id, m.recipients, m.card, m.result, m.dedupe_key, m.status)
                    .where(m.id > last)
                    .order_by(m.id)
                    .limit(SCAN_CHUNK)
                )
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            for row_id, raw_recipients, card, raw_result, dedupe_key, status in rows:
                recipients = [str(r) for r in raw_recipients or []]
                if uid in recipients and len(recipients) == 1:
                    await s.execute(delete(m).where(m.id == row_id))
                    deleted += 1
                    continue
                values: dict[str, Any] = {}
                if uid in recipients:
                    values["recipients"] = [r for r in recipients if r != uid]
                    result = dict(raw_result or {})
                    refs = {k: v for k, v in dict(result.get("refs") or {}).items() if k != uid}
                    invalid = [r for r in result.get("invalid") or [] if r != uid]
                    values["result"] = {**result, "refs": refs, "invalid": invalid}
                    trimmed += 1
                if dedupe_key and any(n in dedupe_key for n in strong):
                    values["dedupe_key"] = _replace(dedupe_key, strong, pseudonym(self.p.id))[:200]
                if card and status == "sent" and _mentions(card, needles):
                    values["card"] = {}
                    blanked += 1
                elif card and status != "sent" and _mentions(card, strong):
                    await s.execute(delete(m).where(m.id == row_id))
                    deleted += 1
                    continue
                if values:
                    await s.execute(
                        update(m)
                        .where(m.id == row_id)
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
        self.report.add("outbox rows deleted", deleted)
        self.report.add("outbox rows trimmed", trimmed)
        self.report.add("outbox cards dropped", blanked)

    async def _other_events(self) -> None:
        """Events of other people whose stored answer quotes them (a manager's click that showed their
        check-in) keep their place as duplicates but answer a late retry with nothing."""
        needles = self.needles
        last = changed = 0
        while True:
            rows = (
                await self.s.execute(
                    select(InboundEvent.id, InboundEvent.answer)
                    .where(InboundEvent.id > last)
                    .order_by(InboundEvent.id)
                    .limit(SCAN_CHUNK)
                )
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            hits = [row_id for row_id, answer in rows if answer and _mentions(answer, needles)]
            if hits:
                await self.s.execute(
                    update(InboundEvent)
                    .where(InboundEvent.id.in_(hits))
                    .values(answer=NEUTRAL_ANSWER)
                    .execution_options(synchronize_session=False)
                )
                changed += len(hits)
        self.report.add("event answers scrubbed", changed)


def _blank_milestones(milestones: Any, gone: set[str]) -> Any:
    """A key result's milestones without their names (due dates and done marks stay)."""
    if not isinstance(milestones, list):
        return milestones
    out = []
    for m in milestones:
        if isinstance(m, dict) and m.get("name"):
            gone.add(str(m["name"]))
            m = {**m, "name": ""}
        out.append(m)
    return out


def _blank_content(content: Any, gone: set[str]) -> Any:
    """A goal version's content without its words: objectives, key-result titles and milestone names."""
    if not isinstance(content, dict):
        return content
    goals = []
    for goal in content.get("goals") or []:
        if not isinstance(goal, dict):
            continue
        if goal.get("objective"):
            gone.add(str(goal["objective"]))
        krs = []
        for kr in goal.get("key_results") or []:
            if isinstance(kr, dict):
                if kr.get("title"):
                    gone.add(str(kr["title"]))
                kr = {**kr, "title": "", "milestones": _blank_milestones(kr.get("milestones"), gone)}
            krs.append(kr)
        goals.append({**goal, "objective": "", "key_results": krs})
    return {**content, "goals": goals}


async def _delete(session: AsyncSession, model: Any, *conds: Any) -> int:
    result = await session.execute(delete(model).where(*conds))
    return int(getattr(result, "rowcount", 0) or 0)


def _mentions(value: Any, needles: list[str]) -> bool:
    text = json.dumps(value, ensure_ascii=False)
    return any(n in text for n in needles)


def _replace(text: str, needles: list[str], by: str) -> str:
    for n in needles:
        text = text.replace(n, by)
    return text


def is_linked(linked: dict[str, set[int]], actor_id: Any, entity: Any, entity_id: Any, detail: Any) -> bool:
    """Whether an audit row is by the person or about one of their records."""
    if actor_id is not None and actor_id in linked.get("actor", set()):
        return True
    if entity_id is not None and entity_id in linked.get(str(entity), set()):
        return True
    return isinstance(detail, dict) and detail.get("person_id") in linked.get("person", set())


def scrub_detail(detail: Any, needles: list[str]) -> Any:
    """Free-text values become ``[erased]``, and so does any string still carrying a needle (their name, id or
    one of their texts); codes, numbers and ids stay."""
    if isinstance(detail, dict):
        return {
            k: (ERASED if k in FREE_TEXT_KEYS and isinstance(v, str) and v else scrub_detail(v, needles))
            for k, v in detail.items()
        }
    if isinstance(detail, list):
        return [scrub_detail(v, needles) for v in detail]
    if isinstance(detail, str) and any(n in detail for n in needles):
        return ERASED
    return detail


def _scrub_archive(base: Path, linked: dict[str, set[int]], needles: list[str]) -> int:
    def change(rec: audit_archive.AuditRecord) -> audit_archive.AuditRecord | None:
        if not is_linked(
            linked, rec.get("actor_id"), rec.get("entity"), rec.get("entity_id"), rec.get("detail")
        ):
            return None
        return {**rec, "detail": scrub_detail(rec.get("detail"), needles)}

    return audit_archive.rewrite(base, change)


def _count_archive(base: Path, linked: dict[str, set[int]]) -> int:
    return audit_archive.count(
        base,
        lambda rec: is_linked(
            linked, rec.get("actor_id"), rec.get("entity"), rec.get("entity_id"), rec.get("detail")
        ),
    )


def _media_exists(media: MediaStore, sha: str) -> bool:
    try:
        return media.exists(sha)
    except ValueError:
        return False


def _delete_media(media: MediaStore, photos: set[str]) -> int:
    removed = 0
    for sha in sorted(photos):
        try:
            media.path_for(sha).unlink()
        except ValueError:  # not a sha256: nothing of ours on disk
            continue
        except FileNotFoundError:
            continue
        removed += 1
    return removed
