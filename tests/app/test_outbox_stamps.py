"""Attempt stamps share commits (``StampBatch``): rows going out at the same moment are stamped by one
statement, and each caller still learns whether its own row was stamped (is still this worker's)."""

from __future__ import annotations

import asyncio

import pytest

from bot.app.outbox import StampBatch


async def test_rows_asking_together_share_one_commit_and_each_gets_its_answer() -> None:
    commits: list[list[int]] = []

    async def commit(ids: list[int]) -> set[int]:
        commits.append(sorted(ids))
        await asyncio.sleep(0.01)  # the database round trip: later askers wait for the next commit
        return {i for i in ids if i != 3}  # row 3 was taken over by another worker

    stamps = StampBatch(commit)
    first = await asyncio.gather(*(stamps.stamp(i) for i in range(1, 6)))
    assert first == [True, True, False, True, True]
    assert commits == [[1, 2, 3, 4, 5]]

    # Rows asking while a commit is in flight go into the next one, together.
    early = asyncio.ensure_future(stamps.stamp(10))
    await asyncio.sleep(0.001)
    late = await asyncio.gather(stamps.stamp(11), stamps.stamp(12))
    assert await early and late == [True, True]
    assert commits[1:] == [[10], [11, 12]]


async def test_a_failed_commit_fails_every_row_in_it() -> None:
    async def commit(ids: list[int]) -> set[int]:
        raise ConnectionError("database went away")

    stamps = StampBatch(commit)
    results = await asyncio.gather(stamps.stamp(1), stamps.stamp(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await stamps.stamp(3)  # and the next one is tried again, not stuck
