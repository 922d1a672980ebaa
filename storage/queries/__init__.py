"""The query functions handlers need, one module per subject; each takes the caller's session.

Handlers never build ad-hoc SQL for shared concepts (who is in a department, which check-in is open):
the answer lives here once, and both SQLite and PostgreSQL run it in the tests.
"""
