"""The one registry of flows: every router the dispatcher routes to, listed by hand.

No module scanning and no names in strings: a flow that is not listed here does not exist, and a typo is an
import error at start-up, not a silent "not installed".
"""

from __future__ import annotations

from bot.core.router import Router
from handlers.action_items import action_items, escalation
from handlers.checkin import checkin
from handlers.engagement import engagement, leave, skip, snooze
from handlers.evidence import evidence
from handlers.feedback import deliverable_ratings, peer_feedback, self_assessment
from handlers.goals import goals
from handlers.grades import grades
from handlers.help import help
from handlers.history import history
from handlers.kickoff import kickoff
from handlers.kudos import kudos
from handlers.review321 import review321

ROUTERS: tuple[Router, ...] = (
    action_items.router,
    escalation.router,
    checkin.router,
    deliverable_ratings.router,
    engagement.router,
    evidence.router,
    goals.router,
    grades.router,
    help.router,
    history.router,
    kickoff.router,
    kudos.router,
    leave.router,
    peer_feedback.router,
    review321.router,
    self_assessment.router,
    skip.router,
    snooze.router,
)


def collect_routers() -> Router:
    root = Router()
    for sub in ROUTERS:
        root.include(sub)
    return root
