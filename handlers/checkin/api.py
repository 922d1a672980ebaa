"""What other flows may call in the check-in flow.

- ``open_checkin``: the engagement flow's ``/checkin`` (answer early) opens the next scheduled check-in
  through the same function the scheduler uses, so the occurrence is never sent twice.
"""

from __future__ import annotations

from handlers.checkin.checkin import open_checkin

__all__ = ["open_checkin"]
