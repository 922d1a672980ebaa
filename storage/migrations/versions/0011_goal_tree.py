"""goal tree (issue 17): measurable key results, alignment, value history, versions, comments, rhythms

Revision ID: 0011_goal_tree
Revises: 0010_metrics_indexes
Create Date: 2026-11-29 04:40:44

New tables ``key_results``, ``kr_values``, ``goal_versions``, ``goal_comments`` and ``kr_rhythms``; goals gain
their level, department, cached progress and carry-over link; action items, evidence requests and evidence
may name a key result; a cycle has a goal visibility (company by default).

Data: every existing goal keeps its free-text key result as one key result measured in percent (0 → 100 %),
whose current value is the last percentage its owner reported in a check-in, so no progress is lost; the
goal's cached progress follows from it.
"""
from alembic import op
import sqlalchemy as sa
import storage.types
from sqlalchemy.dialects import postgresql

from storage.types import utcnow

revision = '0011_goal_tree'
down_revision = '0010_metrics_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('goal_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cycle_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('proposed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('proposed_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('effective_from', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycles.id'], name=op.f('fk_goal_versions_cycle_id_cycles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['people.id'], name=op.f('fk_goal_versions_decided_by_id_people')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_goal_versions_person_id_people')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['people.id'], name=op.f('fk_goal_versions_proposed_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goal_versions')),
    sa.UniqueConstraint('cycle_id', 'person_id', 'version', name=op.f('uq_goal_versions_cycle_id_person_id_version'))
    )
    with op.batch_alter_table('goal_versions', schema=None) as batch_op:
        batch_op.create_index('ix_goal_versions_status', ['status'], unique=False)

    op.create_table('goal_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('goal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('answered_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['answered_by_id'], ['people.id'], name=op.f('fk_goal_comments_answered_by_id_people')),
    sa.ForeignKeyConstraint(['author_id'], ['people.id'], name=op.f('fk_goal_comments_author_id_people')),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_goal_comments_goal_id_goals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goal_comments'))
    )
    with op.batch_alter_table('goal_comments', schema=None) as batch_op:
        batch_op.create_index('ix_goal_comments_goal', ['goal_id'], unique=False)

    op.create_table('key_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('goal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('start_value', sa.Float(), nullable=False),
    sa.Column('target_value', sa.Float(), nullable=True),
    sa.Column('target_date', sa.Date(), nullable=True),
    sa.Column('current_value', sa.Float(), nullable=True),
    sa.Column('done_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('milestones', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('carried_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('from_action_item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['carried_from_id'], ['key_results.id'], name=op.f('fk_key_results_carried_from_id_key_results')),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_key_results_goal_id_goals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_results'))
    )
    with op.batch_alter_table('key_results', schema=None) as batch_op:
        batch_op.create_index('ix_key_results_goal', ['goal_id'], unique=False)

    op.create_table('kr_rhythms',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('due_time', sa.String(length=5), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['people.id'], name=op.f('fk_kr_rhythms_created_by_id_people')),
    sa.ForeignKeyConstraint(['key_result_id'], ['key_results.id'], name=op.f('fk_kr_rhythms_key_result_id_key_results'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_kr_rhythms_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kr_rhythms'))
    )
    with op.batch_alter_table('kr_rhythms', schema=None) as batch_op:
        batch_op.create_index('ix_kr_rhythms_active_weekday', ['active', 'weekday'], unique=False)

    op.create_table('kr_values',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('recorded_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['key_result_id'], ['key_results.id'], name=op.f('fk_kr_values_key_result_id_key_results'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['people.id'], name=op.f('fk_kr_values_recorded_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kr_values'))
    )
    with op.batch_alter_table('kr_values', schema=None) as batch_op:
        batch_op.create_index('ix_kr_values_kr_recorded', ['key_result_id', 'recorded_at'], unique=False)

    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_action_items_key_result_id_key_results'), 'key_results', ['key_result_id'], ['id'])

    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('goal_visibility', sa.String(length=16), nullable=False, server_default='company'))

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_evidence_key_result_id_key_results'), 'key_results', ['key_result_id'], ['id'])

    with op.batch_alter_table('evidence_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_result_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('rhythm_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_evidence_requests_rhythm_id_kr_rhythms'), 'kr_rhythms', ['rhythm_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_evidence_requests_key_result_id_key_results'), 'key_results', ['key_result_id'], ['id'])

    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('level', sa.String(length=16), nullable=False, server_default='person'))
        batch_op.add_column(sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('own_progress', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('carried_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_goals_cycle_level', ['cycle_id', 'level', 'department_id'], unique=False)
        batch_op.create_index('ix_goals_cycle_parent', ['cycle_id', 'parent_id', 'weight', 'own_progress'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_goals_carried_from_id_goals'), 'goals', ['carried_from_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_goals_department_id_departments'), 'departments', ['department_id'], ['id'])

    _carry_key_results()


def downgrade() -> None:
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_goals_department_id_departments'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_goals_carried_from_id_goals'), type_='foreignkey')
        batch_op.drop_index('ix_goals_cycle_parent')
        batch_op.drop_index('ix_goals_cycle_level')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('carried_from_id')
        batch_op.drop_column('own_progress')
        batch_op.drop_column('department_id')
        batch_op.drop_column('level')

    with op.batch_alter_table('evidence_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_evidence_requests_key_result_id_key_results'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_evidence_requests_rhythm_id_kr_rhythms'), type_='foreignkey')
        batch_op.drop_column('rhythm_id')
        batch_op.drop_column('key_result_id')

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_evidence_key_result_id_key_results'), type_='foreignkey')
        batch_op.drop_column('key_result_id')

    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.drop_column('goal_visibility')

    with op.batch_alter_table('action_items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_action_items_key_result_id_key_results'), type_='foreignkey')
        batch_op.drop_column('key_result_id')

    with op.batch_alter_table('kr_values', schema=None) as batch_op:
        batch_op.drop_index('ix_kr_values_kr_recorded')

    op.drop_table('kr_values')
    with op.batch_alter_table('kr_rhythms', schema=None) as batch_op:
        batch_op.drop_index('ix_kr_rhythms_active_weekday')

    op.drop_table('kr_rhythms')
    with op.batch_alter_table('key_results', schema=None) as batch_op:
        batch_op.drop_index('ix_key_results_goal')

    op.drop_table('key_results')
    with op.batch_alter_table('goal_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_goal_comments_goal')

    op.drop_table('goal_comments')
    with op.batch_alter_table('goal_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_goal_versions_status')

    op.drop_table('goal_versions')


def _carry_key_results() -> None:
    """One percent key result per existing goal, at the owner's last reported percentage."""
    bind = op.get_bind()
    goals = sa.table(
        'goals', sa.column('id', sa.Integer), sa.column('key_result', sa.Text), sa.column('objective', sa.Text),
        sa.column('own_progress', sa.Float),
    )
    checkins = sa.table(
        'checkins', sa.column('progress', sa.JSON), sa.column('submitted_at', sa.DateTime),
        sa.column('id', sa.Integer),
    )
    krs = sa.table(
        'key_results', sa.column('goal_id', sa.Integer), sa.column('position', sa.Integer),
        sa.column('title', sa.Text), sa.column('kind', sa.String), sa.column('unit', sa.String),
        sa.column('start_value', sa.Float), sa.column('target_value', sa.Float),
        sa.column('current_value', sa.Float), sa.column('milestones', sa.JSON), sa.column('weight', sa.Integer),
        sa.column('progress', sa.Float), sa.column('updated_at', storage.types.UTCDateTime(timezone=True)),
    )
    last: dict[int, float] = {}
    rows = bind.execute(
        sa.select(checkins.c.progress)
        .where(checkins.c.submitted_at.is_not(None))
        .order_by(checkins.c.submitted_at, checkins.c.id)
    )
    for (progress,) in rows:
        if isinstance(progress, str):
            import json

            progress = json.loads(progress)
        for key, value in (progress or {}).items():
            if str(key).isdigit() and isinstance(value, (int, float)) and not isinstance(value, bool):
                last[int(key)] = float(value)
    now = utcnow()
    batch: list[dict[str, object]] = []
    for goal_id, key_result, objective in bind.execute(sa.select(goals.c.id, goals.c.key_result, goals.c.objective)):
        current = last.get(goal_id)
        progress = max(0.0, min(1.0, current / 100)) if current is not None else 0.0
        batch.append({
            'goal_id': goal_id, 'position': 0, 'title': key_result or objective, 'kind': 'number', 'unit': '%',
            'start_value': 0.0, 'target_value': 100.0, 'current_value': current, 'milestones': [], 'weight': 0,
            'progress': progress, 'updated_at': now,
        })
        if progress:
            bind.execute(goals.update().where(goals.c.id == goal_id).values(own_progress=progress))
        if len(batch) >= 1000:
            bind.execute(krs.insert(), batch)
            batch = []
    if batch:
        bind.execute(krs.insert(), batch)
