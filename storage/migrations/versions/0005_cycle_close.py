"""cycle close (issue 20 item 1): who closed a cycle, when, and what became of its open items

Revision ID: 0005_cycle_close
Revises: 0004_hardening
Create Date: 2026-11-29 02:30:00

Additive: three nullable columns on ``cycles``. The new status ``closing`` needs no schema change (the
column is a short string). Every state change is also an ``audit_log`` row (``cycle.<state>``); these
columns keep the answer to "closed how?" on the row the closing card and the exports read.
"""
from alembic import op
import sqlalchemy as sa
import storage.types

revision = '0005_cycle_close'
down_revision = '0004_hardening'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_by_id', BIG_ID, nullable=True))
        batch_op.add_column(sa.Column('close_mode', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_cycles_closed_by_id_people'), 'people', ['closed_by_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cycles_closed_by_id_people'), type_='foreignkey')
        batch_op.drop_column('close_mode')
        batch_op.drop_column('closed_by_id')
        batch_op.drop_column('closed_at')
