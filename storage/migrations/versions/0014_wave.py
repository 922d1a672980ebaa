"""outbox rows by card key; the claim index ends with the id (issue 22 #2)

Revision ID: 0014_wave
Revises: 0015_broadcast
Create Date: 2026-11-29 07:00:00

``Outbox.supersede`` looks for the queued copy of a card by its key (``card_key``, status pending or sending)
before sending the card that replaces it: every action-item reminder and escalation does. Without an index
the statement read every pending row; during a reminder wave, with the wave's own cards queued, that was
each chunk reading the whole queue again.

``ix_outbox_status_next`` gains the id as its last column. A worker claims ``ORDER BY next_attempt_at, id
LIMIT n``; a wave queues 100,000 rows with the same ``next_attempt_at``, and without the id in the index
PostgreSQL sorted all of them on every claim (0.4-0.9 s a claim); with it, the claim reads n index entries.
"""

from alembic import op

revision = "0014_wave"
down_revision = "0015_broadcast"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_card_key", "outbox", ["card_key"])
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
    op.drop_index("ix_outbox_card_key", table_name="outbox")
