"""Objects in the store on SQLite and PostgreSQL, deals first: upsert, hostile values, links to contacts,
erasure of deleted deals, the contract's figures for deals of records that skipped the gate, and an
object of another type beside a deal with the same id."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select

from crmsync.model import Deal, ObjectType
from crmsync.store import Store
from crmsync.store import schema as t

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DEAL = ObjectType.DEAL


def save(store: Store, c: Connection, crm: str, deals: list[Deal]) -> list[str]:
    return store.save_objects(c, crm, deals, NOW, object_type=DEAL)


def links(store: Store, crm: str) -> list[tuple[str, str]]:
    """The (contact id, deal id) rows of `object_links` for a CRM (deals only)."""
    link = t.object_links.c
    with store.engine.connect() as c:
        return [tuple(row) for row in c.execute(select(link.contact_id, link.object_id).where(
            link.crm == crm, link.object_type == DEAL).order_by(link.contact_id, link.object_id))]


def contact(store: Store, record_id: str, skipped_gate: str | None) -> None:
    with store.transaction() as c:
        store.save_records(c, [{"crm": "hubspot", "record_id": record_id, "snapshot_hash": "s", "inputs_hash": "h",
                                "definitions_hash": "d", "target_stage": "opportunity", "skipped_gate": skipped_gate,
                                "updated_at": NOW}])


def test_deals_are_upserted_with_their_contact_links(database_url: str) -> None:
    store = Store.open(database_url)
    with store.transaction() as c:
        save(store, c, "hubspot", [Deal("d1", name="Acme", stage="appointmentscheduled", amount="1,200.50",
                                             currency="EUR", close_date="2026-04-30", created_at="1767225600000",
                                             contact_ids=("101", "102"))])
    with store.transaction() as c:  # read again: replaced, links too
        save(store, c, "hubspot", [Deal("d1", name="Acme renewal", stage="closedwon", amount=1300,
                                             is_closed=True, is_won=True, contact_ids=("102",)),
                                        Deal("d2", contact_ids=("102", "102"))])
        save(store, c, "salesforce", [Deal("d1", contact_ids=("101",))])
    first = store.objects("hubspot", object_type=DEAL)[0]
    assert (first["object_id"], first["name"], first["stage"], first["amount"], first["is_won"]) == (
        "d1", "Acme renewal", "closedwon", 1300.0, True)
    assert first["close_date"] is None and first["updated_at"] == NOW
    assert [d["object_id"] for d in store.objects(object_type=DEAL)] == ["d1", "d2", "d1"]
    assert links(store, "hubspot") == [("102", "d1"), ("102", "d2")]  # d1's link to 101 replaced
    assert store.objects("hubspot", object_type=DEAL)[1]["contact_ids"] == ["102"]  # a repeated link is kept once
    assert links(store, "salesforce") == [("101", "d1")]

    assert store.forget_objects("hubspot", ["d1", "d9"], object_type=DEAL) == 1
    assert [d["object_id"] for d in store.objects("hubspot", object_type=DEAL)] == ["d2"]
    assert links(store, "hubspot") == [("102", "d2")]
    assert links(store, "salesforce") == [("101", "d1")]  # the other CRM's deal with the same id stays


def test_an_erased_contact_leaves_the_deals_it_belonged_to(database_url: str) -> None:
    store = Store.open(database_url)
    with store.transaction() as c:
        save(store, c, "hubspot", [Deal("d1", contact_ids=("101", "102")), Deal("d2", contact_ids=("101",))])
    assert store.held("hubspot", ["101", "103"]) == ["101"]  # a link is something kept about the record
    assert store.forget("hubspot", "101")["object_links"] == 2
    assert store.held("hubspot", ["101"]) == []
    assert [(d["object_id"], d["contact_ids"]) for d in store.objects("hubspot", object_type=DEAL)] == [
        ("d1", ["102"]), ("d2", [])]
    assert links(store, "hubspot") == [("102", "d1")]


def test_hostile_deal_values_are_stored_safely_or_not_at_all(database_url: str) -> None:
    store = Store.open(database_url)
    hostile = Deal("d1", name="Acme \ud800 \x00 " + "x" * 5000, stage={"a": 1}, amount=float("inf"),
                   currency="EUR" * 10, close_date="9999-12-31T23:59:59-01:00", created_at=NOW.replace(tzinfo=None),
                   updated_at="yesterday", owner_id=12345, contact_ids=("101", "y" * 65, "\x00"))
    with store.transaction() as c:
        refused = save(store, c, "hubspot", [hostile, Deal(""), Deal("z" * 65)])
    assert refused == ["", "z" * 64]
    (deal,) = store.objects("hubspot", object_type=DEAL)
    assert deal["name"].startswith("Acme \\ud800 \\x00 ") and len(deal["name"]) == 1000
    assert deal["stage"] == "{'a': 1}" and deal["amount"] is None and deal["currency"] == ("EUR" * 10)[:16]
    assert deal["close_date"] is None and deal["modified_at"] is None and deal["created_at"] == NOW
    assert deal["owner_id"] == "12345" and deal["contact_ids"] == ["101", "\\x00"]


def test_the_contract_counts_open_or_won_deals_of_records_that_skipped_the_gate(database_url: str) -> None:
    store = Store.open(database_url)
    contact(store, "101", "reached opportunity by manual stage, missing budget")
    contact(store, "102", "")  # documented
    contact(store, "103", None)
    with store.transaction() as c:
        save(store, c, "hubspot", [
            Deal("open", amount=1000, contact_ids=("101", "102")),
            Deal("won", amount="250.5", is_closed=True, is_won=True, contact_ids=("101",)),
            Deal("lost", amount=9999, is_closed=True, contact_ids=("101",)),
            Deal("documented", amount=7, contact_ids=("102", "103")),
            Deal("unlinked", amount=7),
            Deal("no amount", contact_ids=("101",)),
        ])
        save(store, c, "salesforce", [Deal("open", amount=5, contact_ids=("101",))])  # no such record
    figures = store.contract(NOW)
    assert figures["skipped_gates"] == 1
    assert (figures["skipped_gate_deals"], figures["skipped_gate_amount"]) == (3, 1250.5)
    store.forget_objects("hubspot", ["won"], object_type=DEAL)
    assert (store.contract(NOW)["skipped_gate_deals"], store.contract(NOW)["skipped_gate_amount"]) == (2, 1000.0)
