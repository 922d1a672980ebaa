"""grade appeals and corrections (issue 20 item 2)

Revision ID: 0006_grade_appeals
Revises: 0005_cycle_close
Create Date: 2026-11-29 02:35:00

Additive: the ``grade_appeals`` table and ``grades.corrected_at`` (HR's last correction after release,
from which the appeal window restarts). The new grade status ``locked`` needs no schema change.
"""
from alembic import op
import sqlalchemy as sa
import storage.types

revision = '0006_grade_appeals'
down_revision = '0005_cycle_close'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrected_at', storage.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('grade_appeals',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('grade_id', BIG_ID, nullable=False),
    sa.Column('cycle_id', BIG_ID, nullable=False),
    sa.Column('person_id', BIG_ID, nullable=False),
    sa.Column('open_grade_id', BIG_ID, nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('grade_before', sa.String(length=8), nullable=False),
    sa.Column('grade_after', sa.String(length=8), nullable=True),
    sa.Column('decided_by_id', BIG_ID, nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_grade_appeals_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['people.id'], name=op.f('fk_grade_appeals_decided_by_id_people')),
    sa.ForeignKeyConstraint(['grade_id'], ['grades.id'], name=op.f('fk_grade_appeals_grade_id_grades'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_grade_appeals_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grade_appeals')),
    sa.UniqueConstraint('open_grade_id', name=op.f('uq_grade_appeals_open_grade_id'))
    )
    with op.batch_alter_table('grade_appeals', schema=None) as batch_op:
        batch_op.create_index('ix_grade_appeals_cycle', ['cycle_id', 'status'], unique=False)
        batch_op.create_index('ix_grade_appeals_person', ['person_id', 'cycle_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('grade_appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_grade_appeals_person')
        batch_op.drop_index('ix_grade_appeals_cycle')
    op.drop_table('grade_appeals')
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.drop_column('corrected_at')
