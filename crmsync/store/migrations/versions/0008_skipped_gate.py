"""records.skipped_gate: the verdict on how a record at opportunity or customer got there.

Revision ID: 0008
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("records", sa.Column("skipped_gate", sa.Text))


def downgrade() -> None:
    op.drop_column("records", "skipped_gate")
