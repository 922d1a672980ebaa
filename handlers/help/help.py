"""``/help``: the commands this person may use, in their language (issue 15 #13).

An employee is not shown HR's or a manager's commands: each line names who it is for, and the permissions
are the ones the flows themselves check (``bot/core/people.py``, ``bot/core/schedule.py``). The dispatcher
shows the same card when a message is neither a command nor an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.core.context import Context, Reply
from bot.core.people import heads_department, is_hr_admin, leads_anyone
from bot.core.router import Router
from bot.core.schedule import takes_checkins
from cards.help import help_card

router = Router()


@dataclass(frozen=True)
class Hats:
    """What the person does in the company, as far as the commands care."""

    answers: bool
    """Takes check-ins and 3-2-1 reviews (an employee with a manager)."""
    leads: bool
    """Has reports, stands in for a manager, or heads a department."""
    heads: bool
    """Heads a department (sets its objectives)."""
    hrbp: bool
    leader: bool
    hr_admin: bool

    @property
    def oversees(self) -> bool:
        return self.hrbp or self.leader


Shown = Callable[[Hats], bool]


def _everyone(_: Hats) -> bool:
    return True


SECTIONS: tuple[tuple[str, Shown, tuple[tuple[str, Shown], ...]], ...] = (
    (
        "help.section_self",
        _everyone,
        (
            ("help.goals", _everyone),
            ("okr.help_self", _everyone),
            ("help.adjust", _everyone),
            ("rhythm.help", _everyone),
            ("carry.help", _everyone),
            ("help.checkin", lambda h: h.answers),
            ("help.review", lambda h: h.answers),
            ("action_items.help_actions", _everyone),
            ("help.own_action", lambda h: h.answers),
            ("help.history", _everyone),
            ("grade_appeals.help_appeal", _everyone),
            ("snapshot.help_self", _everyone),
            ("help.kudos", _everyone),
            ("help.selfassess", _everyone),
            ("help.pause", _everyone),
            ("help.leave", _everyone),
            ("help.cancel", _everyone),
        ),
    ),
    (
        "help.section_manager",
        lambda h: h.leads,
        (
            ("help.evidence", _everyone),
            ("help.team_action", _everyone),
            ("help.objective_department", lambda h: h.heads and not h.hr_admin),
            ("help.team_rhythm", _everyone),
            ("help.team_history", _everyone),
            ("snapshot.help_team", _everyone),
            ("help.grade", _everyone),
            ("help.skip", _everyone),
        ),
    ),
    (
        "help.section_overseer",
        lambda h: h.oversees and not h.hr_admin,
        (
            ("help.oversee_history", _everyone),
            ("help.objective_company", lambda h: h.leader),
            ("snapshot.help_oversee", _everyone),
            ("help.digest", lambda h: h.leader),
        ),
    ),
    (
        "help.section_hr",
        lambda h: h.hr_admin,
        (
            ("help.kickoff", _everyone),
            ("help.objective_company", _everyone),
            ("help.objective_department_hr", _everyone),
            ("okr.help_hr", _everyone),
            ("help.cancelcycle", _everyone),
            ("help.closecycle", _everyone),
            ("help.grades", _everyone),
            ("grade_appeals.help_gradefix", _everyone),
            ("help.hr_grade", _everyone),
            ("snapshot.help_hr", _everyone),
            ("results.help_flag", _everyone),
            ("help.digest", lambda h: h.leader),
        ),
    ),
)


async def hats_of(ctx: Context) -> Hats:
    person = ctx.person
    return Hats(
        answers=takes_checkins(person),
        leads=await leads_anyone(ctx.session, person),
        heads=await heads_department(ctx.session, person),
        hrbp=person.has_role("hrbp"),
        leader=person.has_role("leader"),
        hr_admin=is_hr_admin(person),
    )


async def help_reply(ctx: Context) -> Reply:
    """The help card for whoever is asking; also the answer to a message nothing else understood."""
    hats = await hats_of(ctx)
    sections = [
        (ctx.t(heading), [ctx.t(key, name=ctx.person.name) for key, shown in lines if shown(hats)])
        for heading, section_shown, lines in SECTIONS
        if section_shown(hats)
    ]
    return Reply(card=help_card(ctx.t, name=ctx.person.name, sections=sections))


@router.command("help", "帮助")
async def show_help(ctx: Context, args: str) -> Reply:
    del args
    return await help_reply(ctx)
