"""object_type in the keys of every table about a CRM record; the deals table (and its contact links).

Ids of different objects may be equal (a HubSpot contact and a HubSpot deal), so records, activities
and quarantine are keyed by (crm, object_type, record_id), and the record indexes of decisions and the
outbox include it. Rows already stored are contacts: the column's server default says so, and no row
is rewritten by hand (PostgreSQL adds a column with a constant default without rewriting the table;
SQLite's batch mode copies the table once).

Revision ID: 0006
Revises: 0005
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
KEYED = {  # table: its primary key after this revision (None: the key stays)
    "records": ["crm", "object_type", "record_id"],
    "activities": ["crm", "object_type", "record_id", "activity_id"],
    "quarantine": ["crm", "object_type", "record_id"],
    "inputs": None,
    "decisions": None,
    "outbox": None,
}
INDEXES = {  # table: (index, its columns before, after)
    "decisions": ("ix_decisions_record", ["crm", "record_id", "id"], ["crm", "object_type", "record_id", "id"]),
    "outbox": ("ix_outbox_pending", ["crm", "status", "id"], ["crm", "object_type", "status", "id"]),
}


def upgrade() -> None:
    for table, key in KEYED.items():
        with _quiet(), op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("object_type", sa.String(16), nullable=False, server_default="contact"))
            if key is not None:
                _replace_key(batch, table, key)
            if table in INDEXES:
                name, _, after = INDEXES[table]
                batch.drop_index(name)
                batch.create_index(name, after)
    op.create_table(
        "deals",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("stage", sa.String(128)),
        sa.Column("pipeline", sa.String(128)),
        sa.Column("amount", sa.Float),
        sa.Column("currency", sa.String(16)),
        sa.Column("close_date", TS),
        sa.Column("created_at", TS),
        sa.Column("modified_at", TS),
        sa.Column("is_closed", sa.Boolean, nullable=False),
        sa.Column("is_won", sa.Boolean, nullable=False),
        sa.Column("owner_id", sa.String(64)),
        sa.Column("contact_ids", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "deal_contacts",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(64), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_deal_contacts_deal", "deal_contacts", ["crm", "deal_id"])


def downgrade() -> None:
    op.drop_table("deal_contacts")
    op.drop_table("deals")
    for table, key in KEYED.items():
        op.execute(sa.text(f"DELETE FROM {table} WHERE object_type <> 'contact'"))  # fixed table names
        with _quiet(), op.batch_alter_table(table) as batch:
            if table in INDEXES:
                name, before, _ = INDEXES[table]
                batch.drop_index(name)
                batch.create_index(name, before)
            if key is not None:
                _replace_key(batch, table, [column for column in key if column != "object_type"])
            batch.drop_column("object_type")


def _replace_key(batch: object, table: str, columns: list[str]) -> None:
    """A new primary key. PostgreSQL named the old one `<table>_pkey` (created by 0001) and drops it
    first; SQLite's batch mode rebuilds the table with the new key in place of the old."""
    if op.get_context().dialect.name != "sqlite":
        batch.drop_constraint(f"{table}_pkey", type_="primary")  # type: ignore[attr-defined]
    batch.create_primary_key(f"{table}_pkey", columns)  # type: ignore[attr-defined]



@contextmanager
def _quiet() -> Iterator[None]:
    """SQLite's batch copy keeps the old key's columns flagged primary and SQLAlchemy warns that the new
    key replaces them, which is the point (tests/test_migrations_object_type.py reads the key back)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Table '_alembic_tmp_\w+' specifies columns", SAWarning)
        yield
