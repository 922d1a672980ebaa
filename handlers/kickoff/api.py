"""What the app and other flows may call in the kickoff flow.

- ``parse_request``, ``prepare_cycle``, ``launch_cycle``, ``Request`` and ``KickoffError``: ``perfloop
  kickoff`` (``bot/app/kickoff_cli.py``) starts a cycle with the same validation (code, dates, scope, past
  period, overlap with an active cycle) and broadcast as the chat command's preview card.
- ``launch_step``, ``launching_cycles``, ``LaunchStep``: the rest of a started kickoff, a chunk per
  transaction (``bot/app/launches.py``, which also resumes one cut off by a restart).
- ``move_cycle``: the one way a cycle changes state (the move table in ``bot.core.status``, a
  compare-and-set, an audit row ``cycle.<state>``), for the CLI and the console.
- ``find_cycle_to_close``, ``close_preview``, ``begin_closing``, ``resume_cycle``, ``close_cycle``,
  ``CloseMode``, ``CloseResult``, ``CloseCounts``, ``unclosable``: closing a cycle (``perfloop cycle
  close``, the console) exactly as ``/closecycle`` does.
- ``require_answerable``: the late-submission policy, for any flow recording an answer against a cycle
  (a self-assessment, a peer answer, a grade proposal).
- ``canonical_code``: ``2026q4`` → ``2026-Q4``, for any command that looks a cycle up by the code a person
  typed (``/grades 2026q4``).
"""

from __future__ import annotations

from cards.cycle_close import CloseCounts
from handlers.kickoff.close import (
    CloseMode,
    CloseResult,
    begin_closing,
    close_cycle,
    close_preview,
    find_cycle_to_close,
    resume_cycle,
    unclosable,
)
from handlers.kickoff.errors import KickoffError
from handlers.kickoff.kickoff import Request, launch_cycle, parse_request, prepare_cycle
from handlers.kickoff.late import require_answerable
from handlers.kickoff.launch import LaunchStep, launch_step, launching_cycles
from handlers.kickoff.period import canonical_code
from handlers.kickoff.states import move_cycle

__all__ = [
    "CloseCounts",
    "CloseMode",
    "CloseResult",
    "KickoffError",
    "LaunchStep",
    "Request",
    "begin_closing",
    "canonical_code",
    "close_cycle",
    "close_preview",
    "find_cycle_to_close",
    "launch_cycle",
    "launch_step",
    "launching_cycles",
    "move_cycle",
    "parse_request",
    "prepare_cycle",
    "require_answerable",
    "resume_cycle",
    "unclosable",
]
