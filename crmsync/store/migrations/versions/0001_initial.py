"""The initial store: cursors, runs, records, inputs, activities, decisions, outbox, quarantine, leases.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cursors",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("position", TS, nullable=False),
        sa.Column("checkpoint", sa.String(128)),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("window_start", TS),
        sa.Column("window_end", TS),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "records",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("modified_at", TS),
        sa.Column("snapshot_hash", sa.String(64), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("definitions_hash", sa.String(64), nullable=False),
        sa.Column("lead_status", sa.String(32)),
        sa.Column("previous_lead_status", sa.String(32)),
        sa.Column("stage", sa.String(32)),
        sa.Column("target_stage", sa.String(32)),
        sa.Column("last_decision_id", sa.Integer),
        sa.Column("snapshot", sa.JSON),
        sa.Column("mql_at", TS),
        sa.Column("sal_at", TS),
        sa.Column("sql_at", TS),
        sa.Column("sla_state", sa.String(128)),
        sa.Column("slas", sa.JSON),
        sa.Column("sla_next_at", TS),
        sa.Column("dq_invalid", sa.Boolean),
        sa.Column("dq_reason", sa.String(64)),
        sa.Column("source", sa.String(64)),
        sa.Column("segment", sa.String(32)),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("definitions_version", sa.String(64)),
        sa.Column("created_at", TS),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_records_sla_next", "records", ["crm", "sla_next_at"])
    op.create_table(
        "inputs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "activities",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("activity_id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("by_owner", sa.Boolean, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer),
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("definitions_version", sa.String(64), nullable=False),
        sa.Column("definitions_hash", sa.String(64), nullable=False),
        sa.Column("current_stage", sa.String(32), nullable=False),
        sa.Column("target_stage", sa.String(32), nullable=False),
        sa.Column("mql", sa.Boolean, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
    )
    op.create_index("ix_decisions_record", "decisions", ["crm", "record_id", "id"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("decision_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["crm", "status", "id"])
    op.create_table(
        "quarantine",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("resolved_at", TS),
    )
    op.create_table(
        "definitions_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("activated_at", TS, nullable=False),
        sa.Column("next_review_date", TS),
        sa.Column("changelog", sa.Text, nullable=False),
    )
    op.create_table(
        "backtests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("candidate_hash", sa.String(64), nullable=False),
        sa.Column("candidate_version", sa.String(64), nullable=False),
        sa.Column("active_hash", sa.String(64), nullable=False),
        sa.Column("ran_at", TS, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("leases", "backtests", "definitions_versions", "quarantine", "outbox", "decisions",
                  "activities", "inputs", "records", "runs", "cursors"):
        op.drop_table(table)
