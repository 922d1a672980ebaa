"""Comments and challenges on goals (issue 17 item 4): what the goal cards count and the erase reads.

``comment_counts`` is the one call other flows make to show "3 条评论" beside a goal: one grouped statement
for any number of goals, so a tree card of a thousand objectives costs one query, not a thousand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GoalComment

CHUNK = 1000
"""Goal ids per ``IN (...)``: well below every driver's parameter limit."""


@dataclass(frozen=True, slots=True)
class CommentCount:
    """Comments and challenges on one goal; ``open_challenges`` still wait for the owner's manager."""

    comments: int = 0
    challenges: int = 0
    open_challenges: int = 0

    @property
    def total(self) -> int:
        return self.comments + self.challenges


async def comment_counts(
    session: AsyncSession, goal_ids: Iterable[int], *, open_status: str = "open"
) -> dict[int, CommentCount]:
    """Every goal in ``goal_ids`` (those without any comment too, as zeros) → its counts."""
    ids = sorted(set(goal_ids))
    out = {gid: CommentCount() for gid in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = await session.execute(
            select(GoalComment.goal_id, GoalComment.kind, GoalComment.status, func.count())
            .where(GoalComment.goal_id.in_(chunk))
            .group_by(GoalComment.goal_id, GoalComment.kind, GoalComment.status)
        )
        for goal_id, kind, status, n in rows.all():
            now = out[goal_id]
            if kind == "challenge":
                now = CommentCount(
                    now.comments,
                    now.challenges + int(n),
                    now.open_challenges + (int(n) if status == open_status else 0),
                )
            else:
                now = CommentCount(now.comments + int(n), now.challenges, now.open_challenges)
            out[goal_id] = now
    return out


async def recent_comments(session: AsyncSession, goal_id: int, limit: int = 5) -> Sequence[GoalComment]:
    """The latest comments and challenges on a goal, newest first (what a comment notice shows beside)."""
    rows = await session.scalars(
        select(GoalComment)
        .where(GoalComment.goal_id == goal_id)
        .order_by(GoalComment.created_at.desc(), GoalComment.id.desc())
        .limit(limit)
    )
    return list(rows)


async def adjust_requests_since(
    session: AsyncSession,
    goal_ids: Sequence[int],
    *,
    status: str,
    since: datetime | None,
) -> list[GoalComment]:
    """Challenges on these goals answered with ``status`` (the manager asked the owner to adjust), answered
    after ``since`` (the owner's latest proposal; None: ever), oldest first."""
    if not goal_ids:
        return []
    query = select(GoalComment).where(
        GoalComment.goal_id.in_(list(goal_ids)),
        GoalComment.kind == "challenge",
        GoalComment.status == status,
    )
    if since is not None:
        query = query.where(GoalComment.answered_at > since)
    return list(await session.scalars(query.order_by(GoalComment.answered_at, GoalComment.id)))
