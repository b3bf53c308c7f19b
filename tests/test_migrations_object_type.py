"""Revision 0006 from the schema before it (0005) with rows in it, on SQLite and PostgreSQL: every row is
kept as a contact, the keys include object_type (a deal may share a contact's id), and it goes back."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from crmsync.model import Activity, ObjectType
from crmsync.store import MIGRATIONS, Store
from crmsync.store.kinds import OutboxKind, OutboxStatus

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DEAL = ObjectType.DEAL


def migrate(store: Store, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def rows_before(connection: sa.Connection) -> None:
    """One record's rows in every table keyed by record, as 0005 stored them (no object_type)."""
    tables = {name: sa.Table(name, sa.MetaData(), autoload_with=connection)
              for name in ("records", "inputs", "activities", "decisions", "outbox", "quarantine")}
    assert all("object_type" not in table.c for table in tables.values())
    key = {"crm": "hubspot", "record_id": "101"}
    connection.execute(tables["records"].insert(), [{**key, "snapshot_hash": "s", "inputs_hash": "h1",
                                                     "definitions_hash": "d", "skipped_gate": "", "updated_at": WHEN}])
    connection.execute(tables["inputs"].insert(), [{**key, "hash": "h1", "data": {"contact": {}}}])
    connection.execute(tables["activities"].insert(), [{**key, "activity_id": "a1", "kind": "call", "occurred_at": WHEN,
                                                        "detail": "", "by_owner": True}])
    connection.execute(tables["decisions"].insert(), [{**key, "decided_at": WHEN, "inputs_hash": "h1",
                                                       "definitions_version": "1", "definitions_hash": "d",
                                                       "current_stage": "lead", "target_stage": "mql", "mql": True,
                                                       "decision": {}}])
    connection.execute(tables["outbox"].insert(), [{**key, "kind": "write", "key": "k1", "payload": {},
                                                    "status": "pending", "attempts": 0, "created_at": WHEN,
                                                    "updated_at": WHEN}])
    connection.execute(tables["quarantine"].insert(), [{**key, "step": "map", "reason": "bad", "first_seen": WHEN,
                                                        "last_seen": WHEN, "count": 1}])


def test_0006_keeps_every_row_as_a_contact_and_lets_a_deal_share_its_id(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    migrate(store, "0005")
    with store.transaction() as c:
        rows_before(c)
    store.migrate()  # to head, as `Store.open` does

    inspector = sa.inspect(store.engine)
    assert inspector.get_pk_constraint("records")["constrained_columns"] == ["crm", "object_type", "record_id"]
    assert inspector.get_pk_constraint("activities")["constrained_columns"] == [
        "crm", "object_type", "record_id", "activity_id"]
    assert inspector.get_pk_constraint("quarantine")["constrained_columns"] == ["crm", "object_type", "record_id"]
    indexes = {ix["name"]: ix["column_names"] for table in ("decisions", "outbox")
               for ix in inspector.get_indexes(table)}
    assert indexes["ix_decisions_record"] == ["crm", "object_type", "record_id", "id"]
    assert indexes["ix_outbox_pending"] == ["crm", "object_type", "status", "id"]
    with store.engine.connect() as c:
        for table in ("records", "inputs", "activities", "decisions", "outbox", "quarantine"):
            assert c.execute(sa.text(f"SELECT object_type, record_id FROM {table}")).all() == [("contact", "101")]

    assert store.records("hubspot", ["101"])["101"]["inputs_hash"] == "h1"  # contact callers pass nothing
    assert [row["key"] for row in store.pending("hubspot", OutboxKind.WRITE, 10)] == ["k1"]
    assert len(store.decisions_for("hubspot", "101")) == 1
    assert [a.id for a in store.activities_for("hubspot", ["101"])["101"]] == ["a1"]

    with store.transaction() as c:  # a deal with the same id: rows of its own beside the contact's
        store.save_records(c, [{"crm": "hubspot", "record_id": "101", "snapshot_hash": "s", "inputs_hash": "h2",
                                "definitions_hash": "d", "updated_at": WHEN}], object_type=DEAL)
        store.quarantine(c, "hubspot", "101", "map", "a deal that would not map", object_type=DEAL)
        store.enqueue(c, "hubspot", "101", OutboxKind.WRITE, "k2", {}, OutboxStatus.PENDING, None, object_type=DEAL)
    store.add_activities("hubspot", [("101", Activity("a1", "call", WHEN))], object_type=DEAL)
    assert store.records("hubspot", ["101"])["101"]["inputs_hash"] == "h1"
    assert store.records("hubspot", ["101"], object_type=DEAL)["101"]["inputs_hash"] == "h2"
    assert [row["key"] for row in store.pending("hubspot", OutboxKind.WRITE, 10)] == ["k1"]  # not superseded
    assert [row["key"] for row in store.pending("hubspot", OutboxKind.WRITE, 10, object_type=DEAL)] == ["k2"]
    assert {(r["object_type"], r["reason"]) for r in store.quarantined("hubspot")} == {
        ("contact", "bad"), ("deal", "a deal that would not map")}
    assert store.held("hubspot", ["101"], object_type=DEAL) == ["101"]

    assert store.forget("hubspot", "101", object_type=DEAL) == {
        "records": 1, "inputs": 0, "activities": 1, "decisions": 0, "outbox": 1, "quarantine": 1}  # no links
    assert store.held("hubspot", ["101"], object_type=DEAL) == []
    assert store.held("hubspot", ["101"]) == ["101"]  # the contact's rows are untouched

    with store.transaction() as c:  # back to 0005: a deal's rows cannot be told apart there, so they go
        store.quarantine(c, "hubspot", "101", "map", "again", object_type=DEAL)
    migrate(store, "0005", down=True)
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT record_id, reason FROM quarantine")).all() == [("101", "bad")]
        assert c.execute(sa.text("SELECT count(*) FROM records")).scalar() == 1
    store.close()
