"""The scheduler: decides *who is due when* and hands each person to a flow; it never sends by itself.

- ``calendar``  which local days are workdays (Chinese public holidays and make-up days, pluggable);
- ``cadence``   the series of occurrences per flow and person, in the person's own timezone;
- ``flows``     the plug-in table naming the flow functions a due item is handed to;
- ``ledger``    the idempotency layer over ``scheduled_sends`` (insert the natural key first, then send);
- ``engine``    one tick: find what is due now, record missed/skipped items, hand the rest over;
- ``leader``    one active scheduler among many replicas (PostgreSQL advisory lock);
- ``jobs``      the APScheduler wiring and ``run_scheduler`` for ``Service.background``;
- ``plan``      ``perfloop schedule --next N``: what is coming, when, and why.
"""
