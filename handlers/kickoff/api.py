"""What the app may call in the kickoff flow.

- ``prepare_cycle``, ``launch_cycle`` and ``KickoffError``: ``perfloop kickoff`` (``bot/app/kickoff_cli.py``)
  starts a cycle with the same validation and broadcast as the chat command's preview card.
"""

from __future__ import annotations

from handlers.kickoff.kickoff import KickoffError, launch_cycle, prepare_cycle

__all__ = ["KickoffError", "launch_cycle", "prepare_cycle"]
