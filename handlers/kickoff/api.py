"""What the app and other flows may call in the kickoff flow.

- ``parse_request``, ``prepare_cycle``, ``launch_cycle``, ``Request`` and ``KickoffError``: ``perfloop
  kickoff`` (``bot/app/kickoff_cli.py``) starts a cycle with the same validation (code, dates, scope, past
  period, overlap with an active cycle) and broadcast as the chat command's preview card.
- ``canonical_code``: ``2026q4`` → ``2026-Q4``, for any command that looks a cycle up by the code a person
  typed (``/grades 2026q4``).
"""

from __future__ import annotations

from handlers.kickoff.errors import KickoffError
from handlers.kickoff.kickoff import Request, launch_cycle, parse_request, prepare_cycle
from handlers.kickoff.period import canonical_code

__all__ = ["KickoffError", "Request", "canonical_code", "launch_cycle", "parse_request", "prepare_cycle"]
