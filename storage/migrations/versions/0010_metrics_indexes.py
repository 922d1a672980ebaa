"""indexes for the participation figures (issue 20 item 8)

Revision ID: 0010_metrics_indexes
Revises: 0009_snapshot_secret
Create Date: 2026-11-29 05:00:00

``perfloop report`` ranges over released peer answers and answered check-ins by time; without these the
statements scanned both tables whole; a team's daily-active rate reads its people's inbound events by time.
"""

from alembic import op

revision = "0010_metrics_indexes"
down_revision = "0009_snapshot_secret"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_checkins_answered_at", "checkins", ["answered_at"])
    op.create_index("ix_peer_feedback_released_at", "peer_feedback", ["released_at"])
    op.create_index("ix_inbound_events_person_received", "inbound_events", ["person_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_events_person_received", table_name="inbound_events")
    op.drop_index("ix_peer_feedback_released_at", table_name="peer_feedback")
    op.drop_index("ix_checkins_answered_at", table_name="checkins")
