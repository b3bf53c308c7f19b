"""The SQL gate on every door into pipeline, end to end: reps act through the official SDKs
(hubspot-api-client, simple-salesforce) on the sandboxes, crmsync syncs through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInput
from hubspot.crm.deals import AssociationSpec, PublicAssociationsForObject, PublicObjectId
from hubspot.crm.deals import SimplePublicObjectInput as DealInput
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate

from crmsync.definitions import load_definitions
from crmsync.metrics import Metrics
from crmsync.reporting.contract import contract_alerts
from crmsync.store import Store
from tests.builders import DEFAULT_DEFINITIONS
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_sync_e2e import FIT_BLOG_ONLY, IDEAL_DEMO, SQL_DOCUMENTED
from tests.test_sync_e2e import env as hubspot_env
from tests.test_sync_e2e_salesforce import env as salesforce_env
from tests.test_sync_e2e_salesforce import post

GATE_TASK = "crmsync: pipeline without documented qualification"
DEAL_TO_CONTACT = 3  # HUBSPOT_DEFINED association type id, deal -> contact (HubSpot associations v4)


def rep(url: str) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=url)


def create_deal(client: HubSpot, contact_id: str, name: str) -> str:
    deal = client.crm.deals.basic_api.create(DealCreate(
        properties={"dealname": name, "pipeline": "default", "dealstage": "appointmentscheduled", "amount": "24000"},
        associations=[PublicAssociationsForObject(to=PublicObjectId(id=contact_id), types=[
            AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_CONTACT)])]))
    return str(deal.id)


def gate_tasks(app: Any, contact_id: str) -> list[Any]:
    linked = {tid for tid in app.portal.associations["tasks"].get(contact_id, [])}
    return [t for tid, t in app.portal.records["tasks"].items()
            if tid in linked and t.properties.get("hs_task_subject") == GATE_TASK]


def skipped_gates(db: Path) -> int:
    return int(Store.open(f"sqlite:///{db}").contract(datetime.now(UTC))["skipped_gates"])


def test_hubspot_deal_and_manual_stage_without_bant_are_flagged_once_documented_sql_is_clean(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with hubspot(30, real_clock=True) as (app, url):
        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        seeded = skipped_gates(db)  # the seed's own opportunities and customers without BANT
        ids = list(app.portal.records["contacts"])
        mql, documented, lead = ids[IDEAL_DEMO], ids[SQL_DOCUMENTED], ids[FIT_BLOG_ONLY]
        contacts = app.portal.records["contacts"]
        assert contacts[mql].properties["crmsync_stage"] == "mql"
        assert contacts[documented].properties["crmsync_stage"] == "sql"

        client = rep(url)
        create_deal(client, mql, "Northwind expansion")
        won = create_deal(client, documented, "Documented deal")
        client.crm.contacts.basic_api.update(lead, SimplePublicObjectInput(properties={
            "lifecyclestage": "opportunity"}))
        # HubSpot's deal lifecycle sync moved the contacts to opportunity
        assert contacts[mql].properties["lifecyclestage"] == "opportunity"
        assert contacts[mql].properties["num_associated_deals"] == "1"

        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        flagged = contacts[mql].properties
        assert flagged["lifecyclestage"] == "opportunity" and flagged["crmsync_stage"] == "opportunity"
        assert flagged["crmsync_skipped_gate"].startswith("deal: missing ") and "budget" in flagged[
            "crmsync_skipped_gate"]
        assert flagged["crmsync_opportunity_at"]
        by_hand = contacts[lead].properties
        assert by_hand["crmsync_skipped_gate"].startswith("manual stage: missing ")
        assert by_hand["crmsync_stage"] == "opportunity" and by_hand["lifecyclestage"] == "opportunity"
        clean = contacts[documented].properties
        assert not clean.get("crmsync_skipped_gate") and clean["crmsync_stage"] == "opportunity"
        assert clean["crmsync_opportunity_at"]
        assert len(gate_tasks(app, mql)) == 1 and len(gate_tasks(app, lead)) == 1
        assert gate_tasks(app, documented) == []
        assert skipped_gates(db) == seeded + 2

        status = run("status", "--json", env=hubspot_env(url, db))
        assert json.loads(status.stdout)["contract"]["skipped_gates"] == seeded + 2
        figures = Store.open(f"sqlite:///{db}").contract(datetime.now(UTC))
        metrics = Metrics()
        metrics.record_contract(figures, contract_alerts(figures, DEFS.definitions.sla))
        assert f"crmsync_pipeline_skipped_gate {seeded + 2:.1f}".encode() in metrics.exposition()

        # The verdict was given when the record entered pipeline: BANT cleared afterwards changes
        # nothing; the deal closed won moves the contact to customer and crmsync's stage follows.
        opportunity_at = clean["crmsync_opportunity_at"]
        client.crm.contacts.basic_api.update(documented, SimplePublicObjectInput(properties={
            "crmsync_bant_budget": ""}))
        client.crm.deals.basic_api.update(won, DealInput(properties={"dealstage": "closedwon"}))
        assert contacts[documented].properties["lifecyclestage"] == "customer"
        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        customer = contacts[documented].properties
        assert customer["crmsync_stage"] == "customer" and customer["crmsync_customer_at"]
        assert customer["crmsync_opportunity_at"] == opportunity_at and not customer.get("crmsync_skipped_gate")

        app.reset_counts()
        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        assert "objects.batch_update" not in app.call_counts() and "objects.batch_create" not in app.call_counts()
        assert len(gate_tasks(app, mql)) == 1 and len(gate_tasks(app, lead)) == 1
        assert skipped_gates(db) == seeded + 2


def test_setup_creates_the_pipeline_fields_on_both_crms() -> None:
    with hubspot(0, crmsync_properties=False) as (_app, url):
        created = connector(url).setup()
        assert {"crmsync_opportunity_at", "crmsync_customer_at", "crmsync_skipped_gate"} <= set(created)
    with salesforce(0, custom_fields=False) as (_app, url):
        created = sf_connector(url).setup()
        assert {"Lead.CRMSync_Opportunity_At__c", "Lead.CRMSync_Customer_At__c",
                "Lead.CRMSync_Skipped_Gate__c"} <= set(created)


def test_a_definitions_file_from_before_the_pipeline_fields_still_loads(tmp_path: Path) -> None:
    older = "".join(line for line in DEFAULT_DEFINITIONS.read_text().splitlines(keepends=True)
                    if not line.strip().startswith(("opportunity_at:", "customer_at:", "skipped_gate:")))
    (tmp_path / "old.yaml").write_text(older)
    mappings = load_definitions(tmp_path / "old.yaml").definitions.mappings
    assert mappings.hubspot.fields.skipped_gate == "crmsync_skipped_gate"
    assert mappings.salesforce.fields.opportunity_at == "CRMSync_Opportunity_At__c"
    assert mappings == DEFS.definitions.mappings


def test_salesforce_leads_converted_without_bant_are_flagged_and_counted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with salesforce(40, real_clock=True) as (app, url):
        assert run("sync", "--once", "--crm", "salesforce", env=salesforce_env(url, db)).returncode == 0
        seeded = skipped_gates(db)
        leads = list(app.org.records["Lead"])
        mql, documented, converted = leads[IDEAL_DEMO], leads[SQL_DOCUMENTED], leads[FIT_BLOG_ONLY]
        assert app.org.records["Lead"][mql]["CRMSync_Stage__c"] == "MQL"
        sf = sf_connector(url)._login()  # simple-salesforce, signed in as the rep
        sf.Lead.update(mql, {"Status": "Closed - Converted"})
        sf.Lead.update(documented, {"Status": "Closed - Converted"})
        post(url, f"/__sandbox/leads/{converted}/convert", {})  # the org's conversion: the lead is read-only

        assert run("sync", "--once", "--crm", "salesforce", env=salesforce_env(url, db)).returncode == 0
        flagged = app.org.records["Lead"][mql]
        assert flagged["Status"] == "Closed - Converted" and flagged["CRMSync_Stage__c"] == "Opportunity"
        assert flagged["CRMSync_Skipped_Gate__c"].startswith("conversion: missing ")
        assert flagged["CRMSync_Opportunity_At__c"]
        clean = app.org.records["Lead"][documented]
        assert not clean.get("CRMSync_Skipped_Gate__c") and clean["CRMSync_Stage__c"] == "Opportunity"
        tasks = [t for t in app.org.records["Task"].values() if t.get("WhoId") == mql and t.get("Subject") == GATE_TASK]
        assert len(tasks) == 1
        # the converted lead cannot be written: the skipped gate is decided and counted, nothing written
        assert app.org.records["Lead"][converted]["IsConverted"]
        assert not app.org.records["Lead"][converted].get("CRMSync_Skipped_Gate__c")
        assert skipped_gates(db) == seeded + 2

        assert run("sync", "--once", "--crm", "salesforce", env=salesforce_env(url, db)).returncode == 0
        tasks = [t for t in app.org.records["Task"].values() if t.get("WhoId") == mql and t.get("Subject") == GATE_TASK]
        assert len(tasks) == 1 and skipped_gates(db) == seeded + 2
