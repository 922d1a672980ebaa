"""The late-submission policy: whether an answer recorded against a cycle is still taken.

While a cycle is *active* or *closing* (``ANSWERABLE_CYCLE``), an answer to something already open is
taken: closing stops new things from starting, not what people have begun. Once the cycle is *closed*,
``[cycles] late_submissions`` decides: ``refuse`` (the default) tells the person, naming the cycle and what
to do; ``accept`` takes it, and the caller marks its audit row late. A draft or cancelled cycle takes
nothing. Every flow that records an answer for a cycle asks here, so the rule and its words are one.
"""

from __future__ import annotations

from bot.core.context import Context, Refused
from bot.core.status import ANSWERABLE_CYCLE, CycleStatus
from storage.models import Cycle


def require_answerable(ctx: Context, cycle: Cycle) -> bool:
    """Raise ``Refused`` when an answer for ``cycle`` is no longer taken; return True when it is taken
    *late* (a closed cycle under ``late_submissions = "accept"``), False when it is simply on time."""
    if cycle.status in ANSWERABLE_CYCLE:
        return False
    if cycle.status == CycleStatus.CLOSED:
        if ctx.settings.cycles.late_submissions == "accept":
            return True
        when = ctx.local_text(cycle.closed_at)[:10] if cycle.closed_at else "—"
        raise Refused(ctx.t("cycle_close.late_refused", code=cycle.code, date=when))
    raise Refused(ctx.t("cycle_close.not_running", code=cycle.code))
