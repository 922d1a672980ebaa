"""results export (issue 20 item 3): HR's promotion and high-potential flags

Revision ID: 0007_results
Revises: 0006_grade_appeals
Create Date: 2026-11-29 02:45:00

Additive: the ``result_flags`` table, one row per (cycle, person, kind). Everything else the export reads
(grades, appeals, the manager's scores) is already stored.
"""
from alembic import op
import sqlalchemy as sa
import storage.types

revision = '0007_results'
down_revision = '0006_grade_appeals'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('result_flags',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('cycle_id', BIG_ID, nullable=False),
    sa.Column('person_id', BIG_ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('set_by_id', BIG_ID, nullable=True),
    sa.Column('set_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_result_flags_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_result_flags_person_id_people')),
    sa.ForeignKeyConstraint(['set_by_id'], ['people.id'], name=op.f('fk_result_flags_set_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_result_flags')),
    sa.UniqueConstraint('cycle_id', 'person_id', 'kind', name=op.f('uq_result_flags_cycle_id_person_id_kind'))
    )


def downgrade() -> None:
    op.drop_table('result_flags')
