"""The one registry of flows: every router the dispatcher routes to and every schedule entry the scheduler
runs, listed by hand.

No module scanning and no names in strings: a flow that is not listed here does not exist, and a typo is an
import error at start-up, not a silent "not installed". The scheduler checks ``SCHEDULE`` when it is built:
a job without an entry stops the start-up.
"""

from __future__ import annotations

from bot.core.router import Router
from bot.core.schedule import ScheduleEntry
from handlers.action_items import action_items, escalation, reminder_wave
from handlers.action_items import kr_link as action_kr_link
from handlers.checkin import checkin
from handlers.checkin import wave as checkin_wave
from handlers.digest import digest
from handlers.engagement import engagement, leave, skip, snooze
from handlers.evidence import evidence
from handlers.evidence import rhythm as evidence_rhythm
from handlers.feedback import deliverable_ratings, peer_feedback, self_assessment
from handlers.goals import adjust as goal_adjust
from handlers.goals import carry as goal_carry
from handlers.goals import comments as goal_comments
from handlers.goals import goals
from handlers.goals import kr_update as goal_values
from handlers.goals import objectives as goal_objectives
from handlers.goals import rhythm as goal_rhythm
from handlers.goals import tree as goal_tree
from handlers.goals import view as goal_view
from handlers.grades import appeals, correct, grades
from handlers.help import help
from handlers.history import history
from handlers.insights import alerts, brief, early_warning
from handlers.kickoff import close_chat, kickoff
from handlers.kudos import kudos
from handlers.results import flags as result_flags
from handlers.review321 import early, review321
from handlers.snapshot import snapshot

ROUTERS: tuple[Router, ...] = (
    action_items.router,
    action_kr_link.router,
    escalation.router,
    checkin.router,
    deliverable_ratings.router,
    engagement.router,
    evidence.router,
    goals.router,
    goal_objectives.router,
    goal_values.router,
    goal_comments.router,
    goal_adjust.router,
    goal_rhythm.router,
    goal_carry.router,
    goal_view.router,
    goal_tree.router,
    grades.router,
    appeals.router,
    correct.router,
    help.router,
    history.router,
    kickoff.router,
    close_chat.router,
    kudos.router,
    leave.router,
    peer_feedback.router,
    result_flags.router,
    review321.router,
    early.router,
    self_assessment.router,
    snapshot.router,
    skip.router,
    snooze.router,
)

SCHEDULE: tuple[ScheduleEntry, ...] = (
    *checkin.SCHEDULE,
    *checkin_wave.SCHEDULE,
    *review321.SCHEDULE,
    *snooze.SCHEDULE,
    *action_items.SCHEDULE,
    *reminder_wave.SCHEDULE,
    *escalation.SCHEDULE,
    *digest.SCHEDULE,
    *evidence.SCHEDULE,
    *evidence_rhythm.SCHEDULE,
    *deliverable_ratings.SCHEDULE,
    *self_assessment.SCHEDULE,
    *snapshot.SCHEDULE,
    *brief.SCHEDULE,
    *alerts.SCHEDULE,
    *early_warning.SCHEDULE,
)
"""Per-person jobs (the tick hands each due item to its entry) and sweeps (run whole, every tick)."""


def collect_routers() -> Router:
    root = Router()
    for sub in ROUTERS:
        root.include(sub)
    return root
