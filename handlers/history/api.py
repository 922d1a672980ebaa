"""What the app may call in the history flow.

- ``person_export``: ``perfloop person-export`` (``bot/app/cli.py``) writes a person's own history as
  JSON, with exactly what the person sees on the ``/history`` card.
"""

from __future__ import annotations

from handlers.history.history import person_export

__all__ = ["person_export"]
