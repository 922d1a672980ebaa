"""The roll-up of the goal tree (issue 17 item 3): the database's per-parent sums corrected bottom-up over the
goals that have children (``handlers.goals.rollup``) give ``progress.roll_up``'s numbers, on random forests
with loops and missing parents, and on a real tree in SQLite and PostgreSQL; weights, the blend of own and
aligned progress, unaligned goals and broken loops by hand."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from sqlalchemy import select, update

from bot.app.service import Service
from handlers.goals.progress import Node, roll_up
from handlers.goals.rollup import RollUp, cycle_roll_up, roll_up_rows, roll_up_sums, subtree_roll_up
from storage.models import Goal, KeyResult
from storage.queries.goal_tree import ChildSums, RollUpRow, tree_sums
from tests.support.factories import Org
from tests.support.goal_tree import add_cycle, add_goal, seed_tree


def sums_of(nodes: Sequence[Node]) -> tuple[list[ChildSums], list[RollUpRow]]:
    """What ``tree_sums`` returns for ``nodes``, computed the plain way."""
    acc: dict[int, list[float]] = {}
    for n in nodes:
        if n.parent_id is None:
            continue
        w = n.weight or 1
        a = acc.setdefault(n.parent_id, [0.0, 0.0, 0.0, 0.0])
        a[0] += w * n.own
        a[1] += w
        a[2] += n.own
        a[3] += 1
    sums = [ChildSums(p, a[0], a[1], a[2], int(a[3])) for p, a in acc.items()]
    inner = [RollUpRow(n.id, n.parent_id, int(n.weight), n.own, n.has_own, 0) for n in nodes if n.id in acc]
    return sums, sorted(inner, key=lambda r: r.id)


def both(nodes: Sequence[Node]) -> tuple[dict[int, float], RollUp]:
    return roll_up(nodes), roll_up_sums(*sums_of(nodes))


def test_random_forests_with_loops_and_missing_parents_match_roll_up() -> None:
    for seed in range(400):
        rnd = random.Random(seed)
        n = rnd.randint(1, 40)
        nodes = [
            Node(
                i,
                None
                if rnd.random() < 0.2
                else rnd.randint(1, n + 3),  # a root, a missing parent, itself, a loop
                rnd.choice([0, 0, 10, 30, 50, 100]),
                rnd.random(),
                rnd.random() < 0.8,
            )
            for i in range(1, n + 1)
        ]
        expected, got = both(nodes)
        for node in nodes:
            assert got.progress(node.id, node.own) == pytest.approx(expected[node.id], abs=1e-12), (
                seed,
                node,
            )


def test_weights_and_the_blend_by_hand() -> None:
    """An objective (own 0.6) with two aligned goals weighted 60/40 at 0.9 and 0.2: children 0.62, blended
    with its own key results half and half: 0.61. A weight of 0 counts as 1."""
    nodes = [
        Node(1, None, 0, 0.6),
        Node(2, 1, 60, 0.9),
        Node(3, 1, 40, 0.2),
        Node(4, None, 0, 0.0, has_own=False),  # an umbrella objective without key results of its own
        Node(5, 4, 0, 0.3),
        Node(6, 4, 0, 0.7),
    ]
    _, got = both(nodes)
    assert got.progress(1, 0.6) == pytest.approx((0.6 + (0.9 * 60 + 0.2 * 40) / 100) / 2)
    assert got.progress(4, 0.0) == pytest.approx(0.5)
    assert got.direct[1] == 2 and got.count_below(1) == 2


def test_depth_counts_and_unaligned_goals() -> None:
    """A goal aligned to a goal that is itself aligned counts with its rolled-up progress; an unaligned goal
    keeps its own progress and counts below nothing."""
    nodes = [
        Node(1, None, 0, 0.5),  # company
        Node(2, 1, 100, 0.6),  # department
        Node(3, 2, 100, 0.75),  # manager
        Node(4, 3, 60, 0.9),  # person
        Node(5, 2, 40, 0.2),
        Node(6, None, 100, 0.0),  # unaligned
    ]
    expected, got = both(nodes)
    manager = (0.75 + 0.9) / 2
    department = (0.6 + (manager * 100 + 0.2 * 40) / 140) / 2
    assert got.progress(3, 0.75) == pytest.approx(manager)
    assert got.progress(2, 0.6) == pytest.approx(department)
    assert got.progress(1, 0.5) == pytest.approx((0.5 + department) / 2)
    assert got.progress(6, 0.0) == 0.0 and got.count_below(6) == 0
    assert got.count_below(1) == 4 and got.count_below(2) == 3
    assert {k: pytest.approx(v) for k, v in expected.items()} == {
        n.id: got.progress(n.id, n.own) for n in nodes
    }


def test_loops_are_broken_not_followed() -> None:
    """Parent links that loop (1 → 2 → 1, 3 → 3) end in numbers, the same as ``roll_up``'s."""
    nodes = [Node(1, 2, 10, 0.2), Node(2, 1, 10, 0.8), Node(3, 3, 10, 0.4), Node(4, 1, 10, 1.0)]
    expected, got = both(nodes)
    for n in nodes:
        assert got.progress(n.id, n.own) == pytest.approx(expected[n.id])
    assert got.progress(3, 0.4) == pytest.approx(0.4)


# ------------------------------------------------------------------ against the database
async def reference(service: Service, cycle_id: int) -> dict[int, float]:
    """``progress.roll_up`` over every goal of the cycle in id order (where a loop is broken depends on the
    order), key results read to know who has some."""
    async with service.factory() as s:
        goals = list(await s.scalars(select(Goal).where(Goal.cycle_id == cycle_id).order_by(Goal.id)))
        with_krs = set(await s.scalars(select(KeyResult.goal_id)))
    return roll_up([Node(g.id, g.parent_id, g.weight, g.own_progress, g.id in with_krs) for g in goals])


async def test_cycle_roll_up_matches_roll_up_on_the_database(service: Service, org: Org) -> None:
    ids = await seed_tree(service, org)
    expected = await reference(service, ids["cycle"])
    async with service.factory() as s:
        got = await cycle_roll_up(s, ids["cycle"])
        sums, inner = await tree_sums(s, ids["cycle"])
    assert {r.id for r in inner} == {ids["c1"], ids["d1"], ids["m1"], ids["umbrella"]}
    assert [r.id for r in inner] == sorted(r.id for r in inner)
    assert {s.parent_id: s.n for s in sums}[ids["d1"]] == 2
    for gid, value in expected.items():
        assert got.progress(gid, value) == pytest.approx(value), gid
    manager = (0.75 + 0.9) / 2
    department = (0.6 + (manager * 100 + 0.2 * 40) / 140) / 2
    assert got.progress(ids["c1"], 0) == pytest.approx((0.5 + (department * 100 + 0.5 * 100) / 200) / 2)
    assert got.progress(ids["umbrella"], 0) == pytest.approx(0.4)  # no key results of its own: its child's
    assert got.count_below(ids["c1"]) == 5


async def test_subtree_roll_up_of_a_department_matches(service: Service, org: Org) -> None:
    ids = await seed_tree(service, org)
    expected = await reference(service, ids["cycle"])
    async with service.factory() as s:
        got = await subtree_roll_up(s, ids["cycle"], [ids["d1"], ids["m1"]])  # overlapping roots
    assert set(got.rolled) == {ids["d1"], ids["m1"]}
    assert got.progress(ids["d1"], 0) == pytest.approx(expected[ids["d1"]])
    assert got.count_below(ids["d1"]) == 3


async def test_loops_and_goals_aligned_across_cycles_in_the_database(service: Service, org: Org) -> None:
    """A loop written into the parent links (the handlers refuse one) ends; a goal aligned to a goal of
    another cycle is a root of this one."""
    ids = await seed_tree(service, org)
    other = await add_cycle(service, [org.leader], code="2027-Q1")
    elsewhere = await add_goal(service, other, org.leader, "下季度目标", level="company")
    async with service.factory() as s, s.begin():
        await s.execute(update(Goal).where(Goal.id == ids["c1"]).values(parent_id=ids["m1"]))
        await s.execute(update(Goal).where(Goal.id == ids["f1"]).values(parent_id=elsewhere))
    expected = await reference(service, ids["cycle"])
    async with service.factory() as s:
        whole = await cycle_roll_up(s, ids["cycle"])
        part = await subtree_roll_up(s, ids["cycle"], [ids["d1"]])
    for gid, value in expected.items():
        assert whole.progress(gid, value) == pytest.approx(value), gid
    assert whole.progress(ids["f1"], 0.0) == 0.0
    assert ids["c1"] in part.rolled  # the loop brought the company objective below the department


def test_rows_read_whole_roll_up_like_the_sums() -> None:
    rows = [
        RollUpRow(1, None, 0, 0.5, True, 1),
        RollUpRow(2, 1, 50, 0.2, True, 2),
        RollUpRow(3, 2, 0, 1.0, True, 3),
    ]
    got = roll_up_rows(rows)
    expected = roll_up([Node(r.id, r.parent_id, r.weight, r.own, r.has_own) for r in rows])
    assert {k: got.progress(k, 0) for k in (1, 2)} == pytest.approx({1: expected[1], 2: expected[2]})
