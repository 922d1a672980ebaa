"""Micro-kudos: ``/kudos @张三 +2 thanks for covering the release`` sends a thank-you card with points.

Kept small on purpose: no approval, a points range of 1..``MAX_POINTS`` per kudos, nobody thanks
themselves, and the totals show up in the digest (``storage.queries.metrics``).
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from bot.core.context import Context, Reply
from bot.core.people import find_by_mention
from bot.core.router import Router
from cards.kudos import kudos_card
from storage.models import Recognition

router = Router()

MAX_POINTS = 5
POINTS = re.compile(r"^[+＋](\d{1,3})(?:分|pts?|points?)?$", re.IGNORECASE)
LOOKS_LIKE_POINTS = re.compile(r"^[+＋\-－]\s*\d")
"""A second word that starts like a number of points is one, even when it is not an allowed one: ``+100``
must be refused with the range, never sent as +1 with "+100" in the reason (issue 15 #8)."""


class BadPoints(ValueError):
    """Points were given but are not a whole number from 1 to ``MAX_POINTS``."""

    def __init__(self, given: str) -> None:
        super().__init__(given)
        self.given = given


def parse_kudos(args: str) -> tuple[str, int, str] | None:
    """``@name [+N] reason`` → (mention, points, reason); None when the shape is wrong.

    Raises ``BadPoints`` when the points are out of range or not a whole number (``+100``, ``-2``, ``+1.5``).
    """
    tokens = args.split()
    if len(tokens) < 2 or not tokens[0].startswith(("@", "＠")):
        return None
    points = 1
    rest = tokens[1:]
    if LOOKS_LIKE_POINTS.match(rest[0]):
        match = POINTS.match(rest[0])
        if match is None or not 1 <= int(match.group(1)) <= MAX_POINTS:
            raise BadPoints(rest[0])
        points = int(match.group(1))
        rest = rest[1:]
    reason = " ".join(rest).strip()
    if not reason:
        return None
    return tokens[0], points, reason


@router.command("kudos", "点赞", "感谢")
async def kudos(ctx: Context, args: str) -> Reply:
    try:
        parsed = parse_kudos(args)
    except BadPoints as bad:
        raise ctx.refuse("kudos.bad_points", max=MAX_POINTS, given=bad.given) from None
    if parsed is None:
        raise ctx.refuse("kudos.usage", max=MAX_POINTS)
    mention, points, reason = parsed
    matches = await find_by_mention(ctx.session, ctx.workspace.id, mention)
    if not matches:
        raise ctx.refuse("kudos.no_such_person", name=mention)
    if len(matches) > 1:
        raise ctx.refuse("kudos.ambiguous_person", name=mention, count=len(matches))
    receiver = matches[0]
    if receiver.id == ctx.person.id:
        raise ctx.refuse("kudos.not_self")
    row = Recognition(
        from_person_id=ctx.person.id,
        to_person_id=receiver.id,
        reason=reason[:1000],
        points=points,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    total = (
        await ctx.session.scalar(
            select(func.coalesce(func.sum(Recognition.points), 0)).where(
                Recognition.to_person_id == receiver.id
            )
        )
        or 0
    )
    t = ctx.translator(receiver)
    ctx.outbox.send(
        receiver, kudos_card(t, sender=ctx.person.name, reason=reason[:1000], points=points, total=int(total))
    )
    ctx.audit("kudos.sent", "recognition", row.id, to=receiver.id, points=points)
    return Reply(toast=ctx.t("kudos.sent", name=receiver.name, points=points))
