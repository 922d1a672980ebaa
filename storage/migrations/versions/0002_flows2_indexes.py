"""flows II: indexes for the digest and report aggregations

Revision ID: 0002_flows2
Revises: 0001
Create Date: 2026-11-24 06:30:00

The digest and ``perfloop report`` aggregate by time range (check-ins by due_at, action items by deadline
and created_at, kudos by created_at, progress-gap audit entries by action+at) and join to people. These
indexes lead with the range column and carry the join/filter columns, so both SQLite and PostgreSQL can
answer from the index alone (see bench/digest.py for the measured effect).
"""
from alembic import op

revision = '0002_flows2'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_checkins_due_person_status', 'checkins', ['due_at', 'person_id', 'status'])
    op.create_index('ix_action_items_deadline_owner', 'action_items', ['deadline', 'owner_id', 'status'])
    op.create_index('ix_action_items_created_owner', 'action_items', ['created_at', 'owner_id'])
    op.create_index('ix_recognitions_created_to', 'recognitions', ['created_at', 'to_person_id'])
    op.create_index('ix_recognitions_to', 'recognitions', ['to_person_id'])
    op.create_index('ix_audit_action_at', 'audit_log', ['action', 'at'])


def downgrade() -> None:
    op.drop_index('ix_audit_action_at', table_name='audit_log')
    op.drop_index('ix_recognitions_to', table_name='recognitions')
    op.drop_index('ix_recognitions_created_to', table_name='recognitions')
    op.drop_index('ix_action_items_created_owner', table_name='action_items')
    op.drop_index('ix_action_items_deadline_owner', table_name='action_items')
    op.drop_index('ix_checkins_due_person_status', table_name='checkins')
