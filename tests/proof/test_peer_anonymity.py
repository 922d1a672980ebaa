"""Anonymous peer feedback under arithmetic and export (issue 16, findings #2 and #3).

#2: a manager who sees every published version of a report's aggregate must not be able to subtract two of
them and get one rater's scores or example. The test plays the attack from the issue (three answers, then
"one new peer plus one who already answered") and then an honest second round, collects every aggregate the
manager and the subject were shown or could open, and checks every pair of versions.

#3: after a peer round with a bounced vague example and a half-filled form, every exportable table and the
person export are searched for a row that names a rater next to a score or an example they gave.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from bot.app.export import ExportError, export_table
from bot.app.service import Service
from bot.core.config import Settings
from bot.core.events import CardAction
from cards import peer_feedback as pc
from cards.actions import pack
from cards.model import Card, Fields, Markdown
from handlers.history.history import person_export
from storage.feedback_scales import DIMENSIONS
from storage.models import EXPORTABLE_TABLES, AuditLog, PeerFeedback, Person
from tests.fakes.recording import RecordingAdapter
from tests.support.factories import Org
from tests.support.flows import click, say
from tests.support.flows3 import make_cycle, rows

SCORES: dict[str, tuple[int, int, int, int]] = {
    "emp2": (3, 4, 2, 5),
    "seller": (4, 4, 3, 3),
    "hrbp": (2, 5, 4, 4),
    "hr": (5, 1, 5, 2),
    "leader": (3, 3, 3, 3),
    "smgr": (4, 2, 4, 5),
}
EXAMPLES = {
    "emp2": "10 月上线夜里一起排查了 2 小时支付回调",
    "seller": "每周三主动同步 2 次客户需求",
    "hrbp": "11 月 3 日帮我审完了 2 份合同",
    "hr": "12 月 1 日前补齐了 4 份入职材料",
    "leader": "季度复盘会上提前 3 天发了数据",
    "smgr": "9 月替我接了 5 个客户电话",
}


def form_of(uid: str) -> dict[str, str]:
    return {
        **{f"dim_{d}": str(v) for d, v in zip(DIMENSIONS, SCORES[uid], strict=True)},
        "example": EXAMPLES[uid],
    }


@dataclass(frozen=True)
class Version:
    """One aggregate as a viewer saw it: how many answers, the peers' mean per dimension, the examples."""

    answered: int
    means: tuple[float, ...]
    examples: frozenset[str]


def parse_aggregate(card: Card) -> Version | None:
    fields = [el for el in card.elements if isinstance(el, Fields)]
    if not fields:
        return None  # not an aggregate card, or the "not enough answers yet" one
    means = []
    for item in fields[0].items:
        peers_part = item.value.split(" · ")[1]
        means.append(float(re.findall(r"(\d\.\d) / 5", peers_part)[0]))
    markdowns = [el.text for el in card.elements if isinstance(el, Markdown)]
    answered = int(re.findall(r"\d+", markdowns[0])[0])
    examples = frozenset(
        line[2:]
        for text in markdowns
        if "\n- " in text
        for line in text.splitlines()
        if line.startswith("- ")
    )
    return Version(answered, tuple(means), examples)


def seen_by(recorder: RecordingAdapter, uid: str) -> list[Card]:
    sent = [d.card for d in recorder.sent if d.recipient == uid]
    return sent + [card for _, card, rcpt in recorder.updates if rcpt == uid]


def leaks(versions: set[Version], threshold: int) -> list[str]:
    """Every pair of versions that differ by fewer than ``threshold`` answers or examples, with what a
    manager would solve from it (for one new answer: that rater's exact scores)."""
    found = []
    for a, b in itertools.permutations(versions, 2):
        delta = b.answered - a.answered
        if 0 < delta < threshold:
            solved = [
                round(b.answered * mb - a.answered * ma, 1) for ma, mb in zip(a.means, b.means, strict=True)
            ]
            found.append(f"{a.answered}->{b.answered} answers: new rater(s) sum to {solved}")
        new_examples = b.examples - a.examples
        if 0 < len(new_examples) < threshold:
            found.append(
                f"{a.answered}->{b.answered} answers: examples {sorted(new_examples)} appeared alone"
            )
    return found


async def request_of(service: Service, subject: Person, rater: Person) -> int:
    [row] = await rows(
        service, PeerFeedback, PeerFeedback.subject_id == subject.id, PeerFeedback.rater_id == rater.id
    )
    return row.id


async def nominate(service: Service, org: Org, cycle_id: int, people: list[Person]) -> str:
    answer = await click(
        service,
        "mgr",
        pc.PeerNominate(cycle_id=cycle_id, subject_id=org.emp1.id),
        {"peers": [str(p.id) for p in people]},
    )
    await service.outbox.drain()
    return answer.toast_kind


async def give(service: Service, org: Org, uid: str, person: Person) -> None:
    fid = await request_of(service, org.emp1, person)
    answer = await click(service, uid, pc.PeerAnswer(feedback_id=fid), form_of(uid))
    assert answer.toast_kind == "success", answer.toast
    await service.outbox.drain()


async def manager_looks(service: Service, recorder: RecordingAdapter) -> tuple[str, str]:
    """What the manager can open on demand: ``/feedback @张三`` and ``/history @张三`` (as JSON text)."""
    await say(service, "mgr", "/feedback @张三")
    await service.outbox.drain()
    feedback = recorder.to("mgr")[-1]
    await say(service, "mgr", "/history @张三")
    await service.outbox.drain()
    history = recorder.to("mgr")[-1]
    return feedback.model_dump_json(), history.model_dump_json()


async def test_the_differencing_attack_learns_nothing_about_one_rater(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    threshold = settings.feedback.anonymity_threshold
    assert threshold == 3
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    people = {p.platform_user_id: p for p in org.everyone}
    first = [people[u] for u in ("emp2", "seller", "hrbp")]
    assert await nominate(service, org, cycle.id, first) == "success"
    for person in first:
        await give(service, org, person.platform_user_id, person)
    before = await manager_looks(service, recorder)

    # The attack: one new peer plus one who already answered, so that exactly one new answer arrives.
    attack = await nominate(service, org, cycle.id, [people["hr"], people["emp2"]])
    hr_rows = await rows(service, PeerFeedback, PeerFeedback.rater_id == people["hr"].id)
    if hr_rows and hr_rows[0].status == "requested":
        await give(service, org, "hr", people["hr"])
    after_attack = await manager_looks(service, recorder)
    versions = {v for c in seen_by(recorder, "mgr") + seen_by(recorder, "emp1") if (v := parse_aggregate(c))}
    assert leaks(versions, threshold) == []
    assert attack == "error", "re-nominating a peer who already answered must be refused"
    assert not hr_rows
    assert after_attack == before

    # An honest second round: three new peers. One or two new answers change nothing anyone can see;
    # the third releases all three together.
    second = [people[u] for u in ("hr", "leader", "smgr")]
    assert await nominate(service, org, cycle.id, second) == "success"
    for n, person in enumerate(second, start=1):
        await give(service, org, person.platform_user_id, person)
        if n < threshold:
            assert await manager_looks(service, recorder) == before
    versions = {v for c in seen_by(recorder, "mgr") + seen_by(recorder, "emp1") if (v := parse_aggregate(c))}
    assert leaks(versions, threshold) == []
    assert sorted(v.answered for v in versions) == [3, 6]
    six = next(v for v in versions if v.answered == 6)
    assert six.examples == frozenset(EXAMPLES.values())
    # The manager's own scores refresh the card without adding a version of the peers' part.
    answer = await click(
        service, "mgr", pc.PeerManagerScores(cycle_id=cycle.id, subject_id=org.emp1.id), form_of("leader")
    )
    assert answer.toast_kind == "success"
    await service.outbox.drain()
    assert parse_aggregate(seen_by(recorder, "mgr")[-1]) == six
    published = [a.detail for a in await rows(service, AuditLog, AuditLog.action == "peers.published")]
    assert [d["answered"] for d in published] == [3, 6]


# ------------------------------------------------------------------ #3: exports


def _person_columns(table: str) -> set[str]:
    model = EXPORTABLE_TABLES[table]
    cols = {
        c.name
        for c in model.__table__.columns
        if any(fk.column.table.name == "people" for fk in c.foreign_keys)
    }
    if table == "people":
        cols.add("id")
    return cols


def _defaults(value: Any) -> list[tuple[str, Any]]:
    """Form inputs of a peer answer that carry a value back (an echo of what a rater typed or picked)."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str) and (name.startswith("dim_") or name == "example") and value.get("default"):
            found.append((name, value["default"]))
        for v in value.values():
            found.extend(_defaults(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_defaults(v))
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            found.extend(_defaults(json.loads(value)))
        except ValueError:
            pass
    return found


async def test_no_export_links_a_rater_to_an_answer(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    people = {p.platform_user_id: p for p in org.everyone}
    raters = [people[u] for u in ("emp2", "seller", "hrbp")]
    assert await nominate(service, org, cycle.id, raters) == "success"
    texts = {u: [EXAMPLES[u]] for u in ("emp2", "seller", "hrbp")}

    # emp2's first example is vague and bounced; the bounce is answered again to test the stored answer.
    fid = await request_of(service, org.emp1, people["emp2"])
    vague = "加强沟通，多多配合"
    texts["emp2"].append(vague)
    bounce = CardAction(
        platform="rec",
        workspace="rec-app",
        event_id="bounce-1",
        sender_id="emp2",
        value=pack(pc.PeerAnswer(feedback_id=fid)),
        form={**form_of("emp2"), "example": vague},
        message_ref="ref-emp2",
    )
    first = await service.dispatcher.dispatch(bounce)
    assert first.toast_kind == "warning"
    again = await service.dispatcher.dispatch(bounce)  # the platform's retry gets the stored answer
    assert vague not in repr(again) and "dim_" not in repr(again)
    # seller forgets the scores first: the form comes back, and must not come back through a stored row.
    half = "半截回答：周二前交了 1 份周报"
    texts["seller"].append(half)
    fid_seller = await request_of(service, org.emp1, people["seller"])
    half_answer = await click(service, "seller", pc.PeerAnswer(feedback_id=fid_seller), {"example": half})
    assert half_answer.toast_kind == "error"
    for person in raters:
        await give(service, org, person.platform_user_id, person)

    row_ids = {p.id: await request_of(service, org.emp1, p) for p in raters}
    by_id = {p.id: p for p in raters}
    problems: list[str] = []
    assert "peer_feedback" not in EXPORTABLE_TABLES
    with pytest.raises(ExportError, match="not exportable"):
        await export_table(service.factory, "peer_feedback", "json", io.StringIO())
    for table in sorted(EXPORTABLE_TABLES):
        out = io.StringIO()
        await export_table(service.factory, table, "json", out)
        person_cols = _person_columns(table)
        for row in json.loads(out.getvalue()):
            named = {row[c] for c in person_cols if row.get(c) in by_id}
            recipients = row.get("recipients") or []
            if isinstance(recipients, str):
                recipients = json.loads(recipients)
            named |= {p.id for p in raters if p.platform_user_id in recipients}
            blob = json.dumps(row, ensure_ascii=False)
            for pid in named:
                rater = by_id[pid]
                for text in texts[rater.platform_user_id]:
                    if text in blob:
                        problems.append(f"{table} row {row['id']}: {rater.name} next to {text!r}")
                if row.get("entity") == "peer_feedback" and row.get("entity_id") == row_ids[pid]:
                    problems.append(f"{table} row {row['id']}: {rater.name} next to their answer's row id")
                if _defaults(row):
                    problems.append(f"{table} row {row['id']}: {rater.name} next to {_defaults(row)}")
    assert problems == []

    async with service.factory() as s:
        for rater in raters:
            me = await s.get(Person, rater.id)
            assert me is not None
            dumped = json.dumps(await person_export(s, me, settings), ensure_ascii=False)
            assert not any(text in dumped for text in texts[rater.platform_user_id])
        subject = await s.get(Person, org.emp1.id)
        assert subject is not None
        dumped = json.dumps(await person_export(s, subject, settings), ensure_ascii=False)
    assert all(EXAMPLES[p.platform_user_id] in dumped for p in raters)  # the subject sees the aggregate
    assert not any(p.name in dumped or f'"{p.platform_user_id}"' in dumped for p in raters)
    # HR can still see that each rater answered, and that the round's answers were published.
    answered = await rows(service, AuditLog, AuditLog.action == "peers.answered")
    assert sorted(a.actor_id for a in answered) == sorted(p.id for p in raters)  # type: ignore[type-var]
    assert {(a.entity, a.entity_id) for a in answered} == {("cycle", cycle.id)}
    assert all(a.detail == {} for a in answered)


async def test_two_answers_at_once_release_one_batch(
    service: Service, org: Org, recorder: RecordingAdapter, settings: Settings
) -> None:
    """Two waiting answers, then two peers answer at the same moment: each alone completes a batch of three.
    Unserialised, both would release (two versions that differ by swapping one rater); serialised, the first
    releases three and the second waits."""
    cycle = await make_cycle(service, [org.emp1, org.emp2])
    people = {p.platform_user_id: p for p in org.everyone}
    raters = [people[u] for u in ("emp2", "seller", "hrbp", "hr")]
    assert await nominate(service, org, cycle.id, raters) == "success"
    for uid in ("emp2", "seller"):
        await give(service, org, uid, people[uid])
    ids = {uid: await request_of(service, org.emp1, people[uid]) for uid in ("hrbp", "hr")}
    answers = await asyncio.gather(
        *(click(service, uid, pc.PeerAnswer(feedback_id=fid), form_of(uid)) for uid, fid in ids.items())
    )
    assert [a.toast_kind for a in answers] == ["success", "success"]
    await service.outbox.drain()
    versions = {v for c in seen_by(recorder, "mgr") + seen_by(recorder, "emp1") if (v := parse_aggregate(c))}
    assert leaks(versions, settings.feedback.anonymity_threshold) == []
    assert [v.answered for v in versions] == [3]
    released = await rows(service, PeerFeedback, PeerFeedback.released_at.is_not(None))
    assert len(released) == 3
