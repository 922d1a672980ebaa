"""What the app may call in the results flow.

- ``perfloop results flag`` (``bot/app/results_cli.py``) sets and takes back flags with the chat command's
  rules and words: ``kind_of``, ``pick_cycle``, ``apply_flag``, ``outcome_key``, ``FlagRefused``.
"""

from __future__ import annotations

from handlers.results.flags import FlagRefused, apply_flag, kind_of, outcome_key, pick_cycle

__all__ = ["FlagRefused", "apply_flag", "kind_of", "outcome_key", "pick_cycle"]
