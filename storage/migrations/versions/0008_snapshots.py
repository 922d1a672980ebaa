"""monthly growth snapshots (issue 20 item 4)

Revision ID: 0008_snapshots
Revises: 0007_results
Create Date: 2026-11-29 03:00:00

Additive: the ``snapshots`` table, one row per (person, month reported on).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import storage.types

revision = '0008_snapshots'
down_revision = '0007_results'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('snapshots',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('person_id', BIG_ID, nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('figures', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('media_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_snapshots_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshots')),
    sa.UniqueConstraint('person_id', 'month', name=op.f('uq_snapshots_person_id_month'))
    )
    op.create_index('ix_snapshots_month', 'snapshots', ['month'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_snapshots_month', table_name='snapshots')
    op.drop_table('snapshots')
