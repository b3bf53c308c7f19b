"""records.skipped_gate: the verdict on how a record at opportunity or customer got there.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("records", sa.Column("skipped_gate", sa.Text))


def downgrade() -> None:
    op.drop_column("records", "skipped_gate")
