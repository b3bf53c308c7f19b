"""The deal stream in a pass: reps create and move deals through the official SDKs (hubspot-api-client,
simple-salesforce) on the sandboxes; crmsync reads them on the cursor `deals`, re-decides the contacts
they name, and counts the deals of records that skipped the SQL gate in `status`, `report` and /metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubspot.crm.deals import SimplePublicObjectInput as DealInput

from crmsync.metrics import Metrics
from crmsync.model import ObjectType
from crmsync.reporting.contract import contract_alerts, pipeline_line
from crmsync.store import Store
from crmsync.store.kinds import RunKind
from crmsync.sync import SyncPass
from crmsync.sync.window import backfill_stream
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_hubspot_deals import create_deal
from tests.test_pipeline_gate import gate_tasks, rep
from tests.test_sync_e2e import IDEAL_DEMO, SQL_DOCUMENTED
from tests.test_sync_e2e import env as hubspot_env
from tests.test_sync_e2e_salesforce import env as salesforce_env
from tests.test_sync_e2e_salesforce import post

GATE_TASK = "crmsync: pipeline without documented qualification"


def figures(url: str) -> dict[str, Any]:
    return Store.open(url).contract(datetime.now(UTC))


def exposition(found: dict[str, Any]) -> str:
    metrics = Metrics()
    metrics.record_contract(found, contract_alerts(found, DEFS.definitions.sla))
    return metrics.exposition().decode()


# SQLite only (deal stream, CLI: the engine's); PostgreSQL's deal upsert, contract counts: test_store_objects.py
@SQLITE_ONLY
def test_hubspot_deal_for_an_undocumented_mql_is_flagged_tasked_and_counted_once(
        database_url: str, tmp_path: Path) -> None:
    with hubspot(30, real_clock=True) as (app, url):
        env = {**hubspot_env(url, tmp_path / "unused.db"), "CRMSYNC_DATABASE_URL": database_url}
        assert run("sync", "--once", env=env).returncode == 0
        assert figures(database_url)["skipped_gate_deals"] == 0  # the seed has no deals
        contacts = app.portal.records["contacts"]
        ids = list(contacts)
        mql, documented = ids[IDEAL_DEMO], ids[SQL_DOCUMENTED]
        assert contacts[mql].properties["crmsync_stage"] == "mql"
        assert contacts[documented].properties["crmsync_stage"] == "sql"

        client = rep(url)
        create_deal(client, [mql], dealname="Northwind expansion", amount="24000")
        won = create_deal(client, [documented], dealname="Documented deal", amount="5000")
        assert run("sync", "--once", env=env).returncode == 0
        flagged = contacts[mql].properties
        assert flagged["crmsync_stage"] == "opportunity" and flagged["crmsync_skipped_gate"].startswith("deal: ")
        assert len(gate_tasks(app, mql)) == 1 and gate_tasks(app, documented) == []
        assert not contacts[documented].properties.get("crmsync_skipped_gate")
        found = figures(database_url)
        assert (found["skipped_gate_deals"], found["skipped_gate_amounts"]) == (1, {"hubspot default": 24000.0})

        status = run("status", env=env)
        assert "pipeline without documented qualification: " in status.stdout
        assert "1 deal, total amount 24,000.00" in status.stdout
        assert json.loads(run("status", "--json", env=env).stdout)["contract"]["skipped_gate_deals"] == 1
        report = json.loads(run("report", "--json", env=env).stdout)
        assert (report["pipeline"]["deals"], report["pipeline"]["amounts"]) == (1, {"hubspot default": 24000.0})
        html = tmp_path / "report.html"
        text = run("report", "--html", str(html), env=env).stdout
        assert "open or won deals of such records now: 1 deal, total amount 24,000.00" in text
        assert 'id="skipped-gate-deals"' in html.read_text() and "1 deal, total amount 24,000.00" in html.read_text()
        csv = run("report", "--csv", env=env).stdout
        assert "pipeline,all,skipped_gate_deals,1," in csv
        assert "pipeline_skipped_gate_amount,hubspot default,amount,24000.0," in csv
        metrics = exposition(found)
        assert "crmsync_pipeline_skipped_gate_deals 1.0" in metrics
        assert 'crmsync_pipeline_skipped_gate_amount{currency="hubspot default"} 24000.0' in metrics

        # the documented deal is won: HubSpot moves the contact to customer and crmsync's stage follows
        client.crm.deals.basic_api.update(won, DealInput(properties={"dealstage": "closedwon"}))
        assert run("sync", "--once", env=env).returncode == 0
        customer = contacts[documented].properties
        assert customer["crmsync_stage"] == "customer" and customer["crmsync_customer_at"]
        assert not customer.get("crmsync_skipped_gate")

        # the deals are read again (the cursor's overlap): nothing is counted twice, no task added
        assert run("sync", "--once", env=env).returncode == 0
        last = Store.open(database_url).runs(1)[0]
        assert last["counts"]["deals"] == 2  # both deals re-read in the overlap
        assert len(gate_tasks(app, mql)) == 1
        again = figures(database_url)
        assert (again["skipped_gate_deals"], again["skipped_gate_amount"]) == (1, 24000.0)


def test_the_deal_stream_re_decides_a_contact_the_record_stream_left_alone(tmp_path: Path) -> None:
    """The contact search has not caught up with the contact yet (HubSpot's search index lags; how long is
    unconfirmed, docs/hubspot.md): its modification time is put back as the search would still show it,
    so the record stream skips it as seen; the deal names it, and the deal stream re-decides it."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(12) as (app, url):
        mql = list(app.portal.records["contacts"])[IDEAL_DEMO]
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=1)).run()
        record = app.portal.records["contacts"][mql]
        create_deal(rep(url), [mql], amount="1200")
        assert record.properties["lifecyclestage"] == "opportunity"  # HubSpot's deal lifecycle sync
        record.properties["lastmodifieddate"] = "2026-11-20T12:00:00Z"  # as the lagging index still shows it
        app.reset_counts()
        report = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=2)).run()
        # every other contact in the window, and the one its deal names read on its own
        assert report.counts["deals"] == 1 and report.counts["pulled"] == len(app.portal.records["contacts"])
        assert app.portal.records["contacts"][mql].properties["crmsync_skipped_gate"].startswith("deal: ")
        assert store.records("hubspot", [mql])[mql]["skipped_gate"]
        assert store.cursor("hubspot", "deals") == SEED_NOW + timedelta(minutes=2)
        assert store.contract(SEED_NOW)["skipped_gate_amounts"] == {"hubspot default": 1200.0}


def test_a_garbage_deal_is_quarantined_as_a_deal_and_the_rest_stored(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(3) as (app, url):
        contact = next(iter(app.portal.records["contacts"]))
        client = rep(url)
        good, broken, other = (create_deal(client, [contact], dealname=n) for n in ("good", "broken", "other"))
        app.portal.records["deals"][broken].properties["hs_is_closed"] = "maybe"  # a stored value, not an API write
        report = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=1)).run()
        assert report.counts["deals"] == 2 and report.counts["quarantined"] == 1
        assert [d["object_id"] for d in store.objects("hubspot", object_type=ObjectType.DEAL)] == sorted([good, other])
        [held] = store.quarantined("hubspot")
        assert (held["object_type"], held["record_id"], held["step"]) == (ObjectType.DEAL, broken, "read")
        assert store.cursor("hubspot", "deals") == SEED_NOW + timedelta(minutes=1)

        client.crm.deals.basic_api.update(broken, DealInput(properties={"dealstage": "closedlost"}))
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=2)).run()
        assert store.quarantined("hubspot") == [] and len(store.objects("hubspot", object_type=ObjectType.DEAL)) == 3


def test_a_dry_run_stores_no_deal_and_a_backfill_keeps_its_own_deal_cursor(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(3) as (app, url):
        create_deal(rep(url), [next(iter(app.portal.records["contacts"]))], amount="10")
        dry = SyncPass(store, connector(url), DEFS, dry_run=True, clock=lambda: SEED_NOW + timedelta(minutes=1)).run()
        assert dry.counts["deals"] == 1 and store.objects(object_type=ObjectType.DEAL) == [] and store.cursors() == []

        since, until = SEED_NOW - timedelta(days=1), SEED_NOW + timedelta(days=1)
        stream = backfill_stream("hubspot", since, until)
        backfill = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run(
            kind=RunKind.BACKFILL, since=since, until=until, stream=stream)
        assert backfill.counts["deals"] == 1 and len(store.objects("hubspot", object_type=ObjectType.DEAL)) == 1
        assert store.cursor("hubspot", f"{stream}:deals") == until
        assert store.cursor("hubspot", "deals") is None  # the live deal cursor is untouched


def test_salesforce_conversion_without_bant_counts_the_opportunity_amount(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with salesforce(40, real_clock=True) as (app, url):
        # 0: the activity streams, and the deal stream with them, on every pass (default: every 60 s)
        env = {**salesforce_env(url, db), "CRMSYNC_SALESFORCE__ACTIVITY_POLL_SECONDS": "0"}
        sync = ("sync", "--once", "--crm", "salesforce")
        assert run(*sync, env=env).returncode == 0
        base = figures(f"sqlite:///{db}")
        leads = app.org.records["Lead"]
        mql, documented = list(leads)[IDEAL_DEMO], list(leads)[SQL_DOCUMENTED]
        assert leads[mql]["CRMSync_Stage__c"] == "MQL" and not app.org.require_validation_on_convert  # guard off
        for lead in (mql, documented):
            post(url, f"/__sandbox/leads/{lead}/convert", {})  # the org's conversion (Convert in the UI)
        sf = sf_connector(url)._login()  # simple-salesforce, signed in as the rep
        sf.Opportunity.update(leads[mql]["ConvertedOpportunityId"], {"Amount": 50000})
        sf.Opportunity.update(leads[documented]["ConvertedOpportunityId"], {"Amount": 7000})

        assert run(*sync, env=env).returncode == 0
        assert leads[mql]["IsConverted"] and not leads[documented].get("CRMSync_Skipped_Gate__c")
        found = figures(f"sqlite:///{db}")
        assert found["skipped_gate_deals"] == base["skipped_gate_deals"] + 1
        assert found["skipped_gate_amount"] == base["skipped_gate_amount"] + 50000
        assert "salesforce default" in found["skipped_gate_amounts"]
        store = Store.open(f"sqlite:///{db}")
        assert store.records("salesforce", [mql])[mql]["skipped_gate"].startswith("conversion: missing ")
        assert not store.records("salesforce", [documented])[documented]["skipped_gate"]
        tasks = [t for t in app.org.records["Task"].values() if t.get("Subject") == GATE_TASK]
        on = [t["WhoId"] for t in tasks]  # a converted lead's task is on its converted Contact
        assert on.count(leads[mql]["ConvertedContactId"]) == 1 and leads[documented]["ConvertedContactId"] not in on

        assert run(*sync, env=env).returncode == 0  # the opportunities again, in the overlap
        assert figures(f"sqlite:///{db}")["skipped_gate_deals"] == found["skipped_gate_deals"]
        assert [t for t in app.org.records["Task"].values() if t.get("Subject") == GATE_TASK] == tasks
        assert pipeline_line(found) in run("status", env=env).stdout


def test_amounts_in_more_than_one_currency_are_listed_per_currency(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(12) as (app, url):
        mql = list(app.portal.records["contacts"])[IDEAL_DEMO]
        client = rep(url)
        create_deal(client, [mql], amount="24000")
        create_deal(client, [mql], amount="100", deal_currency_code="EUR")
        create_deal(client, [mql], amount="900", deal_currency_code="EUR", dealstage="closedlost")  # not pipeline
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW + timedelta(minutes=1)).run()
        found = store.contract(SEED_NOW)
        assert found["skipped_gate_amounts"] == {"EUR": 100.0, "hubspot default": 24000.0}
        assert pipeline_line(found).endswith(
            "2 deals, total amount per currency: EUR 100.00; 24,000.00 (hubspot default)")
        metrics = exposition(found)
        assert 'crmsync_pipeline_skipped_gate_amount{currency="EUR"} 100.0' in metrics
        assert "crmsync_pipeline_skipped_gate_deals 2.0" in metrics
