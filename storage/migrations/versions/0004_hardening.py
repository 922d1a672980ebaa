"""hardening (issue 16): data loss, anonymity, replay windows, bounded tables

Revision ID: 0004_hardening
Revises: 0003_flows3
Create Date: 2026-11-29 00:40:00

Each block below belongs to one finding of issue 16 and says which; additive where it can be.
"""
from alembic import op
import sqlalchemy as sa
import storage.types

revision = '0004_hardening'
down_revision = '0003_flows3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (blocks are added per finding; an empty migration is a no-op)
    # Finding 10: outbox resends only inside the platform's dedupe window, counted from the first attempt.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_started_at', storage.types.UTCDateTime(timezone=True), nullable=True))
    # Finding 12: retention prunes/archives by age in small batches; each table needs its age indexed.
    op.create_index('ix_inbound_events_received_at', 'inbound_events', ['received_at'], unique=False)
    op.create_index('ix_outbox_sent_at', 'outbox', ['sent_at'], unique=False)
    op.create_index('ix_card_messages_created_at', 'card_messages', ['created_at'], unique=False)
    op.create_index('ix_scheduled_sends_created_at', 'scheduled_sends', ['created_at'], unique=False)
    op.create_index('ix_audit_at', 'audit_log', ['at'], unique=False)
    # Findings 2 and 3 (anonymity): peer answers are released in batches; the vague guard's bounce of an
    # anonymous answer lives on its row; rows that linked a rater to an answer are scrubbed.
    _anonymity_upgrade()
    # Finding 5: DingTalk robot signatures (timestamp + sign) remembered with their first message id.
    op.create_table(
        'signature_claims',
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('first_id', sa.String(length=200), nullable=False),
        sa.Column('expires_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'key', name=op.f('pk_signature_claims')),
    )
    op.create_index('ix_signature_claims_expires_at', 'signature_claims', ['expires_at'], unique=False)


def downgrade() -> None:
    # Finding 5
    op.drop_index('ix_signature_claims_expires_at', table_name='signature_claims')
    op.drop_table('signature_claims')
    # Findings 2 and 3 (the scrubbed audit and inbound rows stay scrubbed: that part is one-way on purpose)
    with op.batch_alter_table('peer_feedback', schema=None) as batch_op:
        batch_op.drop_column('vague_bounced')
        batch_op.drop_column('released_at')
    # Finding 12
    op.drop_index('ix_audit_at', table_name='audit_log')
    op.drop_index('ix_scheduled_sends_created_at', table_name='scheduled_sends')
    op.drop_index('ix_card_messages_created_at', table_name='card_messages')
    op.drop_index('ix_outbox_sent_at', table_name='outbox')
    op.drop_index('ix_inbound_events_received_at', table_name='inbound_events')
    # Finding 10
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('attempt_started_at')


def _anonymity_upgrade() -> None:
    """Findings 2 and 3. Existing answers of a person with at least 3 (the lowest threshold the config
    accepts) were all on show already, so they count as released; smaller groups wait for a full batch."""
    with op.batch_alter_table('peer_feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('vague_bounced', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE peer_feedback SET released_at = answered_at WHERE role = 'peer' AND status = 'answered' AND "
        "(SELECT count(*) FROM peer_feedback AS o WHERE o.cycle_id = peer_feedback.cycle_id AND "
        "o.subject_id = peer_feedback.subject_id AND o.role = 'peer' AND o.status = 'answered') >= 3"
    )
    peers = sa.table('peer_feedback', sa.column('id', sa.BigInteger), sa.column('vague_bounced', sa.Boolean))
    op.execute(
        peers.update()
        .where(
            peers.c.id.in_(
                sa.text("SELECT entity_id FROM audit_log WHERE action = 'vague.bounced' AND entity = 'peer_feedback'")
                .columns(sa.column('entity_id', sa.BigInteger))
            )
        )
        .values(vague_bounced=sa.true())
    )
    audit = sa.table(
        'audit_log',
        sa.column('action', sa.String),
        sa.column('entity', sa.String),
        sa.column('entity_id', sa.BigInteger),
        sa.column('actor_id', sa.BigInteger),
        sa.column('detail', storage.types.JSONType),
    )
    # The vague guard's rows about an anonymous answer carried the rater and the verbatim text.
    op.execute(
        audit.update()
        .where(audit.c.entity == 'peer_feedback', audit.c.action.in_(['vague.bounced', 'vague.accepted']))
        .values(actor_id=None, entity_id=None, detail={})
    )
    # "peers.answered" named the answer's row next to the rater: keep who answered in which cycle only.
    op.execute(
        "UPDATE audit_log SET entity = 'cycle', entity_id = (SELECT cycle_id FROM peer_feedback "
        "WHERE peer_feedback.id = audit_log.entity_id) WHERE action = 'peers.answered' AND entity = 'peer_feedback'"
    )
    # Stored answers that echoed a peer's answer form back to them (a bounce, a half-filled form).
    inbound = sa.table('inbound_events', sa.column('answer', storage.types.JSONType))
    op.execute(
        inbound.update()
        .where(sa.cast(inbound.c.answer, sa.Text).like('%peers.answer%'))
        .values(answer={'toast': None, 'toast_kind': 'info', 'card': None})
    )
