"""keys the service makes for itself (issue 20 item 4: snapshot PDF links)

Revision ID: 0009_snapshot_secret
Revises: 0008_snapshots
Create Date: 2026-11-29 04:00:00

Additive: the ``service_secrets`` table (name, value), where the random key that signs the snapshot PDF
links is kept when ``[snapshot] link_secret`` is not configured, so every replica shares it.
"""
from alembic import op
import sqlalchemy as sa
import storage.types

revision = '0009_snapshot_secret'
down_revision = '0008_snapshots'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_secrets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_secrets'))
    )


def downgrade() -> None:
    op.drop_table('service_secrets')
