"""The scheduler: decides *who is due when* and hands each person to a flow; it never sends by itself.

It imports no flow and resolves no names: the app hands it the typed schedule entries every flow declares
(``bot.core.schedule``, listed in ``bot/app/flows.py``).

- ``calendar``  which local days are workdays (Chinese public holidays and make-up days, pluggable);
- ``cadence``   the series of occurrences per flow and person, in the person's own timezone;
- ``agenda``    one reading of the records (every series, every open record's steps, every snooze), used
                by the tick and the plan alike;
- ``table``     the entries a runner runs, checked when built (a job without an entry is an error), and
                what the scheduler needs from the app;
- ``ledger``    the idempotency layer over ``scheduled_sends`` (insert the natural key first, then send);
- ``engine``    one tick: find what is due now, record missed/skipped items, hand the rest over;
- ``leader``    one active scheduler among many replicas (PostgreSQL advisory lock);
- ``jobs``      the APScheduler wiring: elect, then tick and run the sweeps, through one error path;
- ``port``      the answers a flow may ask for through ``ctx.schedule`` (next check-in, skip it);
- ``plan``      ``perfloop schedule --next N``: what is coming, when, and why.
"""
