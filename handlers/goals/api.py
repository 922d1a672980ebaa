"""What other flows (and the app's API) may call in the goals flow.

- Key result values (``handlers.goals.values``): ``record_value`` is the one way a key result's number moves
  (the check-in flow for each answer, the console API for external pushes); ``source_readings`` gives a
  check-in's answers beside the values before them; ``values_at`` / ``value_on`` the value in force at a
  moment or on a date (reports); ``own_progress_at`` objectives' progress from the values in force then (the
  "progress below plan" warning, with ``expected_share``: the share of the cycle passed, what "on plan" is).
- Goals and key results: ``krs_of`` a person's key results with their goals, in form order;
  ``objectives_for_alignment`` the short list a person's goal may align to (``alignment.py``);
  ``recompute_goal`` / ``recompute_goals`` bring cached progress up to date after a target changed (not a
  value: that is ``record_value``);
  ``parse_kr`` / ``format_kr`` the one key-result language of every form.
- Figures (``handlers.goals.figures``): ``goal_figures_of`` a cycle's alignment rate and carry-over share in a
  scope (the digest; ``perfloop report``).
- The tree (``handlers.goals.rollup``): ``cycle_roll_up`` every objective of a cycle rolled up (a ``RollUp``:
  ``progress(goal_id, own)``, ``count_below(goal_id)``), fast at 100,000 people; ``subtree_roll_up`` the
  part below some objectives.
"""

from __future__ import annotations

from handlers.goals.alignment import for_person as objectives_for_alignment
from handlers.goals.figures import CycleGoalFigures, goal_figures_of
from handlers.goals.kr_parse import KrRefusal, KrRefused, ParsedKr, format_kr, parse_kr
from handlers.goals.progress import expected_share
from handlers.goals.recompute import recompute_goal, recompute_goals
from handlers.goals.rollup import RollUp, cycle_roll_up, subtree_roll_up
from handlers.goals.values import (
    FINAL_CYCLE,
    ValueChange,
    ValueRefused,
    facts_of,
    own_progress_at,
    reading_of,
    record_value,
    refresh_goal_progress,
    source_readings,
    value_on,
    values_at,
)
from storage.queries.goals import krs_of

__all__ = [
    "FINAL_CYCLE",
    "CycleGoalFigures",
    "KrRefusal",
    "KrRefused",
    "ParsedKr",
    "RollUp",
    "ValueChange",
    "ValueRefused",
    "cycle_roll_up",
    "expected_share",
    "facts_of",
    "format_kr",
    "goal_figures_of",
    "krs_of",
    "objectives_for_alignment",
    "own_progress_at",
    "parse_kr",
    "reading_of",
    "recompute_goal",
    "recompute_goals",
    "record_value",
    "refresh_goal_progress",
    "source_readings",
    "subtree_roll_up",
    "value_on",
    "values_at",
]
