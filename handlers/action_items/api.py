"""What other flows may call in the action-item flow (items and their escalation ladder).

An action item is created only through ``open_action_item``, whoever asks for it, so every item gets the
same owner card, the same ``action_item.created`` audit row and ``created_at`` from the bot's clock:
- the check-in flow (a manager's "needs follow-up 1:1"), the 3-2-1 review (the confirmed "1") and the
  evidence flow (a "needs support" rating) open items;
- the evidence flow attaches photos to an item: it loads the item from a button (``load_item``), checks
  it is still open (``bot.core.status.OPEN_ACTION_ITEM``) and stops the response-time clock with
  ``record_first_response``;
- the check-in flow asks ``check_progress_gap`` after each submitted check-in.
"""

from __future__ import annotations

from handlers.action_items.action_items import open_action_item, record_first_response
from handlers.action_items.escalation import check_progress_gap
from handlers.action_items.item import load_item

__all__ = ["check_progress_gap", "load_item", "open_action_item", "record_first_response"]
