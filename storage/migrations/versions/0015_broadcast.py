"""a kickoff written in chunks (issue 22 #3)

Revision ID: 0015_broadcast
Revises: 0011_goal_tree
Create Date: 2026-11-29 06:00:00

``cycles.launch_after``: while a started cycle's participants and kickoff cards are still being written, the
id of the last person written (0 before the first chunk); NULL once everyone in scope has been written. A
process that dies in the middle leaves it set, and whichever process runs next goes on from there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_broadcast"
down_revision = "0011_goal_tree"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("launch_after", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.drop_column("launch_after")
