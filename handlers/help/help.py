"""``/help``: what the bot can do, in the person's language."""

from __future__ import annotations

from bot.core.context import Context, Reply
from bot.core.router import Router
from cards.notice import notice_card

router = Router()


@router.command("help", "帮助")
async def show_help(ctx: Context, args: str) -> Reply:
    del args
    return Reply(card=notice_card(ctx.t, ctx.t("common.help_title"), ctx.t("common.help_body")))
