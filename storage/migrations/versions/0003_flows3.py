"""flows III: self-assessments, peer feedback, deliverable ratings, grades, team settings, quiet hours

Revision ID: 0003_flows3
Revises: 0002_flows2
Create Date: 2026-11-24 06:40:00

Additive only: six new tables, nothing existing changes. Peer nominations and answers share one table
(``peer_feedback``); grade changes are recorded in ``audit_log``, not in a table of their own.
"""
from alembic import op
import sqlalchemy as sa
import storage.types
from sqlalchemy.dialects import postgresql

revision = '0003_flows3'
down_revision = '0002_flows2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliverable_ratings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('completeness', sa.Integer(), nullable=True),
    sa.Column('timeliness', sa.Integer(), nullable=True),
    sa.Column('risk_disclosure', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('requested_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['people.id'], name=op.f('fk_deliverable_ratings_owner_id_people')),
    sa.ForeignKeyConstraint(['rater_id'], ['people.id'], name=op.f('fk_deliverable_ratings_rater_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliverable_ratings')),
    sa.UniqueConstraint('kind', 'ref_id', 'rater_id', name=op.f('uq_deliverable_ratings_kind_ref_id_rater_id'))
    )
    with op.batch_alter_table('deliverable_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_deliverable_ratings_status_due', ['status', 'due_at'], unique=False)

    op.create_table('quiet_hours',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('starts', sa.String(length=5), nullable=False),
    sa.Column('ends', sa.String(length=5), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_quiet_hours_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiet_hours')),
    sa.UniqueConstraint('person_id', name=op.f('uq_quiet_hours_person_id'))
    )
    op.create_table('team_settings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('manager_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cadence_weeks', sa.Integer(), nullable=True),
    sa.Column('checkin_weekday', sa.Integer(), nullable=True),
    sa.Column('answer_window_hours', sa.Integer(), nullable=True),
    sa.Column('mention_nonresponders', sa.Boolean(), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['people.id'], name=op.f('fk_team_settings_manager_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_settings')),
    sa.UniqueConstraint('manager_id', name=op.f('uq_team_settings_manager_id'))
    )
    op.create_table('grades',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cycle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('grade', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('proposed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('proposed_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('released_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_grades_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_grades_department_id_departments')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_grades_person_id_people')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['people.id'], name=op.f('fk_grades_proposed_by_id_people')),
    sa.ForeignKeyConstraint(['released_by_id'], ['people.id'], name=op.f('fk_grades_released_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grades')),
    sa.UniqueConstraint('cycle_id', 'person_id', name=op.f('uq_grades_cycle_id_person_id'))
    )
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.create_index('ix_grades_department', ['department_id', 'status'], unique=False)

    op.create_table('peer_feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cycle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rater_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('nominated_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('example', sa.Text(), nullable=True),
    sa.Column('requested_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_peer_feedback_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['nominated_by_id'], ['people.id'], name=op.f('fk_peer_feedback_nominated_by_id_people')),
    sa.ForeignKeyConstraint(['rater_id'], ['people.id'], name=op.f('fk_peer_feedback_rater_id_people')),
    sa.ForeignKeyConstraint(['subject_id'], ['people.id'], name=op.f('fk_peer_feedback_subject_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_peer_feedback')),
    sa.UniqueConstraint('cycle_id', 'subject_id', 'rater_id', name=op.f('uq_peer_feedback_cycle_id_subject_id_rater_id'))
    )
    with op.batch_alter_table('peer_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_peer_feedback_rater_status', ['rater_id', 'status'], unique=False)

    op.create_table('self_assessments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cycle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('submitted_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_self_assessments_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_self_assessments_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_assessments')),
    sa.UniqueConstraint('cycle_id', 'person_id', name=op.f('uq_self_assessments_cycle_id_person_id'))
    )


def downgrade() -> None:
    op.drop_table('self_assessments')
    with op.batch_alter_table('peer_feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_peer_feedback_rater_status')

    op.drop_table('peer_feedback')
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.drop_index('ix_grades_department')

    op.drop_table('grades')
    op.drop_table('team_settings')
    op.drop_table('quiet_hours')
    with op.batch_alter_table('deliverable_ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_deliverable_ratings_status_due')

    op.drop_table('deliverable_ratings')
