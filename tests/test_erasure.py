"""Automatic erasure: when the CRM deletes a record, everything the store keeps about it goes, on both
CRMs and both stores (the archived-contact sweep on SQLite only: its erasure is the others'), end to end
through the official clients (hubspot-api-client, simple-salesforce):
a Salesforce lead deleted -> the next pass (its queryAll window); a HubSpot contact archived -> the daily
sweep of archived contacts; a HubSpot delete or GDPR delete -> the deletion webhooks, at once. A deal a
HubSpot rep archives is dropped by the same daily sweep (and no longer counted against the gate)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select

from crmsync.crms.hubspot.sandbox.webhooks import WebhookSender
from crmsync.daemon import Daemon
from crmsync.metrics import Metrics
from crmsync.model import ObjectType
from crmsync.settings import HttpSettings, Settings, SyncSettings
from crmsync.store import Store
from crmsync.store import schema as t
from crmsync.sync import SyncPass
from crmsync.webhooks import WebhookIntake
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW, TOKEN, connector, hubspot, need_shared
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_daemon import wait_for
from tests.test_hubspot_deals import create_deal
from tests.test_sync_e2e import IDEAL_DEMO
from tests.test_webhooks import millis, sign

SECRET = "app-secret-for-erasure-tests"
TEN_MINUTES_ON = SEED_NOW + timedelta(minutes=10)


def dump(store: Store) -> tuple[dict[str, int], str]:
    """Rows per table, and every row of every table as one JSON text."""
    with store.engine.connect() as c:
        rows = {table.name: [dict(r) for r in c.execute(select(table)).mappings()]
                for table in t.metadata.sorted_tables}
    return {name: len(found) for name, found in rows.items()}, json.dumps(rows, default=str)


def assert_gone(store: Store, record_id: str, personal: list[str]) -> None:
    """No row anywhere holds the id (as a value) or any of the record's personal values."""
    _, text = dump(store)
    assert f'"{record_id}"' not in text
    for value in personal:
        assert value not in text, value


def hubspot_client(url: str) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=url)


def decided(store: Store) -> list[str]:
    return [row["record_id"] for row in store.latest_decisions(SEED_NOW - timedelta(days=3650))]


def test_a_lead_deleted_in_salesforce_is_erased_by_the_next_pass(database_url: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.erasure")
    with salesforce(20) as (app, url):
        store = Store.open(database_url)
        conn = sf_connector(url)
        SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW).run()
        lead_id, other = decided(store)[:2]
        lead = app.org.records["Lead"][lead_id]
        personal = [str(lead[k]) for k in ("Email", "LastName", "Company") if lead.get(k)]
        before, text = dump(store)
        assert f'"{lead_id}"' in text and all(value in text for value in personal)
        others = store.decisions_for("salesforce", other)
        app.org.clock = lambda: SEED_NOW + timedelta(minutes=1)
        assert conn.sf is not None
        assert conn.sf.Lead.delete(lead_id) == 204  # a person deletes it (REST DELETE, simple-salesforce)
        report = SyncPass(store, conn, DEFS, clock=lambda: TEN_MINUTES_ON).run()
    assert report.counts["erased"] == 1 and report.outcome == "ok"
    assert_gone(store, lead_id, personal)
    after, _ = dump(store)
    assert after["records"] == before["records"] - 1
    kept = store.decisions_for("salesforce", other)
    assert others and all(d in kept for d in others)  # the others untouched
    logged = [r for r in caplog.records if r.getMessage().startswith("record erased")]
    assert [(r.crm, r.record_id, r.trigger) for r in logged] == [("salesforce", lead_id, "pull")]  # type: ignore[attr-defined]
    assert not any(value in caplog.text for value in personal)
    metrics = Metrics()
    metrics.record_pass(report)
    assert 'crmsync_records_erased_total{crm="salesforce",trigger="sync"} 1.0' in metrics.exposition().decode()


# SQLite only (erasing is the lead test's, on PostgreSQL too, and test_privacy.py's); the sweep's drop: deal test
@SQLITE_ONLY
def test_an_archived_hubspot_contact_is_erased_by_the_daily_sweep(database_url: str) -> None:
    with hubspot(30) as (app, url):
        store = Store.open(database_url)
        first = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run()
        assert first.counts["erased"] == 0
        contact_id, other = decided(store)[:2]
        props = app.portal.records["contacts"][contact_id].properties
        personal = [props[k] for k in ("email", "firstname", "lastname") if props.get(k)]
        before, _ = dump(store)
        hubspot_client(url).crm.contacts.basic_api.archive(contact_id)  # DELETE /crm/v3/objects/contacts/{id}
        listed = hubspot_client(url).crm.contacts.basic_api.get_page(archived=True, properties=["hs_object_id"])
        assert [c.id for c in listed.results] == [contact_id] and listed.results[0].archived_at is not None
        app.reset_counts()
        soon = SyncPass(store, connector(url), DEFS, clock=lambda: TEN_MINUTES_ON).run()
        assert soon.counts["erased"] == 0 and "objects.list" not in app.call_counts()  # at most once a day
        assert store.held("hubspot", [contact_id]) == [contact_id]
        next_day = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(days=1)).run()
        assert next_day.counts["erased"] == 1
        assert app.call_counts()["objects.list"] == 2  # archived contacts, archived deals: one page each
    assert_gone(store, contact_id, personal)
    after, _ = dump(store)
    assert after["records"] == before["records"] - 1 and store.held("hubspot", [other]) == [other]


def test_a_deal_a_rep_archives_in_hubspot_is_dropped_by_the_daily_sweep(database_url: str) -> None:
    """HubSpot's search never returns an archived deal, so the deal stream cannot see it go: the daily
    sweep lists archived deals too and drops those the store keeps, and with them their skipped-gate count."""
    with hubspot(12) as (app, url):
        store = Store.open(database_url)
        mql = list(app.portal.records["contacts"])[IDEAL_DEMO]
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=1)).run()
        client = hubspot_client(url)
        deal = create_deal(client, [mql], amount="24000")
        kept = create_deal(client, [mql], amount="1000")
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=2)).run()
        assert store.contract(SEED_NOW)["skipped_gate_deals"] == 2
        client.crm.deals.basic_api.archive(deal)  # a rep deletes the deal: DELETE /crm/v3/objects/deals/{id}
        listed = client.crm.deals.basic_api.get_page(archived=True, properties=["hs_object_id"])
        assert [d.id for d in listed.results] == [deal] and listed.results[0].archived_at is not None
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=3)).run()
        deals = store.objects("hubspot", object_type=ObjectType.DEAL)
        assert sorted(d["object_id"] for d in deals) == sorted([deal, kept])  # no sweep due yet
        next_day = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(days=2)).run()
        assert next_day.outcome == "ok" and next_day.counts["erased"] == 0  # a deal is dropped, no record erased
        assert [d["object_id"] for d in store.objects("hubspot", object_type=ObjectType.DEAL)] == [kept]
        figures = store.contract(SEED_NOW)
        assert (figures["skipped_gate_deals"], figures["skipped_gate_amount"]) == (1, 1000.0)
        assert store.held("hubspot", [mql]) == [mql]  # its contact stays


def daemon(store: Store, url: str) -> Daemon:
    settings = Settings(database_url=store.url, http=HttpSettings(port=0, trusted_proxy=True),
                        sync=SyncSettings(interval_seconds=3600),
                        hubspot={"access_token": SecretStr(TOKEN), "base_url": url, "app_secret": SecretStr(SECRET)})
    return Daemon(settings, DEFS, store, {"hubspot": connector(url)})


def test_hubspot_deletion_and_gdpr_deletion_webhooks_erase_at_once(database_url: str) -> None:
    with hubspot(20, real_clock=True) as (app, url):
        store = Store.open(database_url)
        running = daemon(store, url)
        running.start()
        try:
            wait_for(lambda: "hubspot" in running.last_success, what="the first pass")
            app.webhook_sender = WebhookSender(app.portal, f"http://127.0.0.1:{running.http_port}/webhooks/hubspot",
                                               SECRET)
            deleted, purged, kept = store.held("hubspot", list(app.portal.records["contacts"]))[:3]
            personal = {i: [v for k, v in app.portal.records["contacts"][i].properties.items()
                            if k in ("email", "lastname")] for i in (deleted, purged)}
            client = hubspot_client(url)
            client.crm.contacts.basic_api.archive(deleted)  # -> contact.deletion
            client.crm.contacts.basic_api.purge({"objectId": purged})  # -> contact.privacyDeletion (+ deletion)
            wait_for(lambda: not store.held("hubspot", [deleted, purged]), what="the webhooks' erasure")
            assert store.held("hubspot", [kept]) == [kept]
            for record_id, values in personal.items():
                assert_gone(store, record_id, values)
            erased = running.metrics.erased.labels("hubspot", "webhook")._value.get()
            assert erased == 2  # the second deletion event of the GDPR delete finds nothing left
            assert running.metrics.webhooks.labels("accepted")._value.get() >= 1
        finally:
            if app.webhook_sender is not None:
                app.webhook_sender.stop()
            running.stop()


def test_a_deletion_webhook_is_answered_503_when_the_store_fails(tmp_path: Any) -> None:
    """Nothing remembered, nothing lost: HubSpot delivers the event again and it is applied then."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    url = "https://crmsync.example.com/webhooks/hubspot"
    intake = WebhookIntake(SECRET, store, lambda ids: None, public_url=url)
    body = json.dumps([{"eventId": 5, "subscriptionType": "contact.privacyDeletion", "objectId": 1042}]).encode()
    now = millis()
    headers = {"x-hubspot-signature-v3": sign(url, body, now, SECRET), "x-hubspot-request-timestamp": now}
    t.quarantine.drop(store.engine)  # the store fails for real: a table it erases from is gone
    assert intake.receive("POST", url, headers, body) == 503
    t.quarantine.create(store.engine)
    with store.transaction() as c:
        store.quarantine(c, "hubspot", "1042", "read", "a reason")
    assert intake.receive("POST", url, headers, body) == 200  # not remembered: applied on the retry
    assert store.held("hubspot", ["1042"]) == []


def test_the_sandbox_deletion_endpoints_match_the_spec() -> None:
    from tests import test_hubspot_openapi as openapi

    need_shared("specs", "hubspot")
    with hubspot(5) as (app, url):
        first, second = list(app.portal.records["contacts"])[:2]
        assert openapi.call(url, "DELETE", f"/crm/v3/objects/contacts/{first}")[0] == 204
        status, body = openapi.call(url, "GET", "/crm/v3/objects/contacts?archived=true")
        assert status == 200 and [c["id"] for c in body["results"]] == [first] and body["results"][0]["archived"]
        openapi.validate("contacts-v3.json", "/crm/v3/objects/contacts", "GET", status, body)
        assert openapi.call(url, "GET", f"/crm/v3/objects/contacts/{first}")[0] == 404
        assert openapi.call(url, "POST", "/crm/v3/objects/contacts/gdpr-delete", {"objectId": second})[0] == 204
        assert second not in app.portal.records["contacts"]
        status, body = openapi.call(url, "POST", "/crm/v3/objects/contacts/gdpr-delete", {"objectId": second})
        assert status == 404
        openapi.validate("contacts-v3.json", "/crm/v3/objects/contacts/gdpr-delete", "POST", status, body)


@pytest.fixture(scope="module")
def property_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store.open(f"sqlite:///{tmp_path_factory.mktemp('erasure') / 'p.db'}")


IDS = [str(n) for n in range(1001, 1009)]
EVENTS = st.lists(st.tuples(st.sampled_from(["contact.deletion", "contact.privacyDeletion", "contact.propertyChange",
                                             "contact.creation"]), st.sampled_from(IDS)), max_size=12)


@given(events=EVENTS)
@examples(max_examples=40, deadline=None)
def test_signed_deletion_events_erase_exactly_the_deleted_records(property_store: Store,
                                                                  events: list[tuple[str, str]]) -> None:
    store = property_store
    for record_id in IDS:  # every record held again, in two tables
        store.forget("hubspot", record_id)
        with store.transaction() as c:
            store.quarantine(c, "hubspot", record_id, "read", "a reason")
            store.save_inputs(c, [{"hash": f"h{record_id}", "crm": "hubspot", "record_id": record_id, "data": {}}])
    queued: list[str] = []
    url = "https://crmsync.example.com/webhooks/hubspot"
    intake = WebhookIntake(SECRET, store, queued.extend, public_url=url)
    body = json.dumps([{"eventId": uuid.uuid4().hex, "subscriptionType": kind, "objectId": int(record_id)}
                       for kind, record_id in events]).encode()
    now = millis()
    headers = {"x-hubspot-signature-v3": sign(url, body, now, SECRET), "x-hubspot-request-timestamp": now}
    assert intake.receive("POST", url, headers, body) == 200
    deleted = {record_id for kind, record_id in events if kind.endswith(("deletion", "Deletion"))}
    assert set(store.held("hubspot", IDS)) == set(IDS) - deleted
    waiting = []
    while not intake.queue.empty():
        waiting.append(intake.queue.get_nowait())
    assert set(waiting) == {record_id for kind, record_id in events if not kind.endswith(("deletion", "Deletion"))}
