"""Cursors keep the frozen upper bound of an unfinished window (a backfill resumes the same window).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cursors") as batch:
        batch.add_column(sa.Column("upper_bound", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("cursors") as batch:
        batch.drop_column("upper_bound")
