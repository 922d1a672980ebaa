"""What other flows and the app may call in the feedback flow (self-assessment, peer feedback, deliverable
ratings); everything else in this package is its own business.

- ``open_deliverable_ratings``: the action-item flow, when an owner marks an item done, asks its acceptor
  and collaborators to rate the deliverable.
- ``open_self_assessment``: the demo (``bot/app/demo_feedback.py``) opens a participant's self-assessment
  the way the scheduler would.
"""

from __future__ import annotations

from handlers.feedback.deliverable_ratings import open_deliverable_ratings
from handlers.feedback.self_assessment import open_self_assessment

__all__ = ["open_deliverable_ratings", "open_self_assessment"]
