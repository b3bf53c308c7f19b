"""One table for every object read beside the contacts: `objects` and `object_links` replace `deals` and
`deal_contacts`.

An object type added later (`model.ObjectType`, a connector's `object_streams`) needs no table of its
own: its rows are keyed by (crm, object_type, object_id), what is particular to it in `fields` (JSON).
The deals kept are moved with object_type `deal` (and `fields` empty), their links likewise, in one
INSERT ... SELECT per table. Going back keeps the deals and their links and drops the objects of other
types (0006 has no table for them).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
COMMON = ("name", "stage", "pipeline", "amount", "currency", "close_date", "created_at", "modified_at", "is_closed",
          "is_won", "owner_id", "contact_ids", "updated_at")
"""The columns a deal row and an object row share, under the same names."""


def _common() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("object_type", sa.String(16), primary_key=True),
        sa.Column("object_id", sa.String(64), primary_key=True),
        *_common(),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "object_links",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(64), primary_key=True),
        sa.Column("object_type", sa.String(16), primary_key=True),
        sa.Column("object_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_object_links_object", "object_links", ["crm", "object_type", "object_id"])
    common = ", ".join(COMMON)
    # an empty JSON object: PostgreSQL has no implicit cast from text to json; SQLite stores JSON as text
    empty = "CAST('{}' AS JSON)" if op.get_context().dialect.name == "postgresql" else "'{}'"
    op.execute(f"INSERT INTO objects (crm, object_type, object_id, {common}, fields) "  # fixed names only
               f"SELECT crm, 'deal', deal_id, {common}, {empty} FROM deals")
    op.execute("INSERT INTO object_links (crm, contact_id, object_type, object_id) "
               "SELECT crm, contact_id, 'deal', deal_id FROM deal_contacts")
    op.drop_table("deal_contacts")
    op.drop_table("deals")


def downgrade() -> None:
    op.create_table(
        "deals",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
        *_common(),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "deal_contacts",
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(64), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_deal_contacts_deal", "deal_contacts", ["crm", "deal_id"])
    common = ", ".join(COMMON)
    op.execute(f"INSERT INTO deals (crm, deal_id, {common}) "
               f"SELECT crm, object_id, {common} FROM objects WHERE object_type = 'deal'")
    op.execute("INSERT INTO deal_contacts (crm, contact_id, deal_id) "
               "SELECT crm, contact_id, object_id FROM object_links WHERE object_type = 'deal'")
    op.drop_table("object_links")
    op.drop_table("objects")
