"""Revision 0007 from the schema before it (0006) with deals in it, on SQLite and PostgreSQL: the deals and
their contact links move to `objects` / `object_links` as object type `deal`, every figure read from them
is the same, an object of another type can share a deal's id, and it goes back."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from crmsync.model import LinkedObject, ObjectType
from crmsync.store import Store
from tests.test_migrations_object_type import migrate

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DEAL = ObjectType.DEAL
TICKET = "ticket"  # a type no code knows: the table keeps any


def deals_before(connection: sa.Connection) -> None:
    """Two deals and their links as 0006 stored them, and a contact that skipped the gate."""
    deals, links, records = (sa.Table(name, sa.MetaData(), autoload_with=connection)
                             for name in ("deals", "deal_contacts", "records"))
    row = {"crm": "hubspot", "name": "Acme", "stage": "appointmentscheduled", "pipeline": "default",
           "amount": 1200.5, "currency": "EUR", "close_date": WHEN, "created_at": WHEN, "modified_at": WHEN,
           "is_closed": False, "is_won": False, "owner_id": "7", "updated_at": WHEN}
    connection.execute(deals.insert(), [{**row, "deal_id": "d1", "contact_ids": ["101", "102"]},
                                        {**row, "deal_id": "d2", "name": "Lost", "is_closed": True,
                                         "currency": None, "contact_ids": ["101"]}])
    connection.execute(links.insert(), [{"crm": "hubspot", "contact_id": "101", "deal_id": "d1"},
                                        {"crm": "hubspot", "contact_id": "102", "deal_id": "d1"},
                                        {"crm": "hubspot", "contact_id": "101", "deal_id": "d2"}])
    connection.execute(records.insert(), [{"crm": "hubspot", "object_type": "contact", "record_id": "101",
                                           "snapshot_hash": "s", "inputs_hash": "h", "definitions_hash": "d",
                                           "target_stage": "opportunity", "skipped_gate": "deal: no budget",
                                           "updated_at": WHEN}])


def test_0007_moves_the_deals_and_their_links_to_objects_and_goes_back(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    migrate(store, "0006")
    with store.transaction() as c:
        deals_before(c)
    store.migrate()  # to head, as `Store.open` does

    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"objects", "object_links"} <= tables and not {"deals", "deal_contacts"} & tables
    kept = store.objects("hubspot", object_type=DEAL)
    assert [(d["object_id"], d["name"], d["contact_ids"], d["fields"], d["is_closed"]) for d in kept] == [
        ("d1", "Acme", ["101", "102"], {}, False), ("d2", "Lost", ["101"], {}, True)]
    assert kept[0]["close_date"] == WHEN and kept[0]["amount"] == 1200.5 and kept[0]["owner_id"] == "7"
    after = store.contract(WHEN)  # the open deal of the record that skipped the gate; the lost one is not
    assert (after["skipped_gate_deals"], after["skipped_gate_amounts"]) == (1, {"EUR": 1200.5})
    assert store.held("hubspot", ["102"]) == ["102"]  # a link is something kept about the record

    with store.transaction() as c:  # another type with a deal's id: rows of its own
        store.save_objects(c, "hubspot", [LinkedObject("d1", name="Ticket", contact_ids=("102",),
                                                       fields={"priority": "HIGH", "score": float("nan")})],
                           WHEN, object_type=TICKET)  # type: ignore[arg-type]
    (ticket,) = store.objects("hubspot", object_type=TICKET)  # type: ignore[arg-type]
    assert ticket["fields"] == {"priority": "HIGH", "score": None} and ticket["contact_ids"] == ["102"]
    assert store.objects("hubspot", object_type=DEAL)[0]["name"] == "Acme"
    assert store.forget("hubspot", "102")["object_links"] == 2  # out of the deal and the ticket
    assert store.objects("hubspot", object_type=DEAL)[0]["contact_ids"] == ["101"]
    assert store.objects("hubspot", object_type=TICKET)[0]["contact_ids"] == []  # type: ignore[arg-type]
    assert store.forget_objects("hubspot", ["d1"], object_type=TICKET) == 1  # type: ignore[arg-type]
    assert len(store.objects("hubspot", object_type=DEAL)) == 2

    with store.transaction() as c:  # back to 0006: the deals return, another type has no table there
        store.save_objects(c, "hubspot", [LinkedObject("t9", contact_ids=("101",))], WHEN,
                           object_type=TICKET)  # type: ignore[arg-type]
    migrate(store, "0006", down=True)
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT deal_id, name FROM deals ORDER BY deal_id")).all() == [
            ("d1", "Acme"), ("d2", "Lost")]
        assert c.execute(sa.text("SELECT contact_id, deal_id FROM deal_contacts ORDER BY deal_id")).all() == [
            ("101", "d1"), ("101", "d2")]
    assert "objects" not in sa.inspect(store.engine).get_table_names()
    store.close()
