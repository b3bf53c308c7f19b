"""The store's tables (SQLAlchemy Core). Changes go through an Alembic revision in `migrations/`.

Every table about a CRM record is keyed by (crm, object_type, record_id): ids of different objects
(a HubSpot contact and a HubSpot deal) may be equal. `object_type` is a `model.ObjectType` value.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

cursors = Table(
    "cursors", metadata,
    Column("crm", String(32), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("position", DateTime(timezone=True), nullable=False),
    Column("checkpoint", String(128)),
    Column("upper_bound", DateTime(timezone=True)),  # the frozen end of an unfinished window (backfills)
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("crm", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("outcome", String(16), nullable=False),
    Column("counts", JSON, nullable=False),
    Column("error", Text),
)

records = Table(
    "records", metadata,
    Column("crm", String(32), primary_key=True),
    Column("object_type", String(16), primary_key=True, server_default="contact"),
    Column("record_id", String(64), primary_key=True),
    Column("modified_at", DateTime(timezone=True)),
    Column("snapshot_hash", String(64), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("definitions_hash", String(64), nullable=False),
    Column("lead_status", String(32)),
    Column("previous_lead_status", String(32)),
    Column("stage", String(32)),
    Column("target_stage", String(32)),
    Column("last_decision_id", Integer),
    Column("snapshot", JSON),
    Column("mql_at", DateTime(timezone=True)),
    Column("sal_at", DateTime(timezone=True)),
    Column("sql_at", DateTime(timezone=True)),
    Column("sla_state", String(128)),
    Column("slas", JSON),
    Column("sla_next_at", DateTime(timezone=True)),
    Column("dq_invalid", Boolean),
    Column("dq_reason", String(64)),
    Column("skipped_gate", Text),  # what was missing and by which route; "" when documented (0008)
    Column("source", String(64)),
    Column("segment", String(32)),
    Column("owner_id", String(64)),
    Column("definitions_version", String(64)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_records_sla_next", "crm", "sla_next_at"),
)

inputs = Table(
    "inputs", metadata,
    Column("hash", String(64), primary_key=True),
    Column("crm", String(32), nullable=False),
    Column("object_type", String(16), nullable=False, server_default="contact"),
    Column("record_id", String(64), nullable=False),
    Column("data", JSON, nullable=False),
)

activities = Table(
    "activities", metadata,
    Column("crm", String(32), primary_key=True),
    Column("object_type", String(16), primary_key=True, server_default="contact"),
    Column("record_id", String(64), primary_key=True),
    Column("activity_id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False),
    Column("by_owner", Boolean, nullable=False),
)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("crm", String(32), nullable=False),
    Column("object_type", String(16), nullable=False, server_default="contact"),
    Column("record_id", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("inputs_hash", String(64), nullable=False),
    Column("definitions_version", String(64), nullable=False),
    Column("definitions_hash", String(64), nullable=False),
    Column("current_stage", String(32), nullable=False),
    Column("target_stage", String(32), nullable=False),
    Column("mql", Boolean, nullable=False),
    Column("decision", JSON, nullable=False),
    Index("ix_decisions_record", "crm", "object_type", "record_id", "id"),
    Index("ix_decisions_decided_at", "decided_at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("crm", String(32), nullable=False),
    Column("object_type", String(16), nullable=False, server_default="contact"),
    Column("record_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("decision_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("key", name="uq_outbox_key"),
    Index("ix_outbox_pending", "crm", "object_type", "status", "id"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("crm", String(32), primary_key=True),
    Column("object_type", String(16), primary_key=True, server_default="contact"),
    Column("record_id", String(64), primary_key=True),
    Column("step", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)

definitions_versions = Table(
    "definitions_versions", metadata,
    Column("version", String(64), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False),
    Column("next_review_date", DateTime(timezone=True)),
    Column("changelog", Text, nullable=False),
)

backtests = Table(
    "backtests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("candidate_hash", String(64), nullable=False),
    Column("candidate_version", String(64), nullable=False),
    Column("active_hash", String(64), nullable=False),
    Column("ran_at", DateTime(timezone=True), nullable=False),
    Column("days", Integer, nullable=False),
    Column("records", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("summary", JSON, nullable=False),
)

leases = Table(
    "leases", metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("token", Integer, nullable=False, server_default="0"),
)

webhook_events = Table(
    "webhook_events", metadata,
    Column("key", String(128), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_events_received", "received_at"),
)

objects = Table(
    "objects", metadata,  # objects read beside the contacts (model.LinkedObject), by object type: deals
    Column("crm", String(32), primary_key=True),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(64), primary_key=True),
    Column("name", Text),
    Column("stage", String(128)),  # the CRM's own stage value (HubSpot dealstage id, Salesforce StageName)
    Column("pipeline", String(128)),
    Column("amount", Float),
    Column("currency", String(16)),
    Column("close_date", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("modified_at", DateTime(timezone=True)),
    Column("is_closed", Boolean, nullable=False),
    Column("is_won", Boolean, nullable=False),
    Column("owner_id", String(64)),
    Column("contact_ids", JSON, nullable=False),  # ids of the contact-stream records it belongs to
    Column("fields", JSON, nullable=False),  # what is particular to the object type
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

object_links = Table(
    "object_links", metadata,  # objects.contact_ids as rows, so a contact's objects are found by index
    Column("crm", String(32), primary_key=True),
    Column("contact_id", String(64), primary_key=True),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(64), primary_key=True),
    Index("ix_object_links_object", "crm", "object_type", "object_id"),
)
