"""A converted lead's stage and stamps on its converted Contact: `crmsync setup` creates crmsync's fields on
Contact and grants them; the sandbox keeps them invisible until then; a sync pass writes a converted
lead's stamps and owner task to its Contact (Salesforce refuses every update of a converted lead)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.mapping import TASK_KEY
from crmsync.crms.salesforce.sandbox import SalesforceApp
from crmsync.crms.salesforce.sandbox.org import BANT_FIELDS, INTEGRATION_USER, FieldError
from crmsync.errors import CrmsyncError
from crmsync.model import WriteBack
from crmsync.store import Store
from crmsync.store.kinds import OutboxStatus
from crmsync.sync import PassReport, SyncPass
from tests.hubspot_fixtures import DEFS, SEED_NOW, fast_retry
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_salesforce_conversion import spy_updates
from tests.test_salesforce_guard import DOCUMENTED, REP, convert, rep_client

CONTACT_FIELDS = ["CRMSync_Stage__c", "CRMSync_Opportunity_At__c", "CRMSync_Customer_At__c", "CRMSync_Skipped_Gate__c"]


def test_setup_creates_and_grants_the_contact_fields_once_and_doctor_checks_them() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        conn = sf_connector(url)
        before = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not before.ok and all(f"Contact.{name}" in before.detail.split("missing")[1] for name in CONTACT_FIELDS)

        created = conn.setup()
        assert [c for c in created if c.startswith("Contact.")] == [f"Contact.{name}" for name in CONTACT_FIELDS]
        assert set(CONTACT_FIELDS) <= set(app.org.fields["Contact"])
        assert app.org.picklist("Contact", "CRMSync_Stage__c") == app.org.picklist("Lead", "CRMSync_Stage__c")
        granted = {p["Field"] for p in app.org.records["FieldPermissions"].values()}
        assert {f"Contact.{name}" for name in CONTACT_FIELDS} <= granted
        assert all(app.org.granted(INTEGRATION_USER, "Contact", name, edit=True) for name in CONTACT_FIELDS)
        assert conn.setup() == []  # idempotent
        assert all(c.ok for c in conn.doctor()), conn.doctor()

        # an admin removes the grant of one Contact field: doctor says it is not visible
        row = next(rid for rid, p in app.org.records["FieldPermissions"].items()
                   if p["Field"] == "Contact.CRMSync_Skipped_Gate__c")
        del app.org.records["FieldPermissions"][row]
        fields = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not fields.ok and "not visible to this user Contact.CRMSync_Skipped_Gate__c" in fields.detail
        assert conn.setup() == ["FieldPermissions for 1 fields"]
        app.org.custom_picklists[("Contact", "CRMSync_Stage__c")].remove("Customer")  # an admin edited it
        fields = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not fields.ok and "Contact.CRMSync_Stage__c is a picklist without Customer" in fields.detail


def test_the_sandbox_refuses_contact_fields_until_setup_created_and_granted_them() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        contact = app.org.create("Contact", {"LastName": "Ng"})["Id"]
        conn = sf_connector(url)
        sf = conn._login()
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):  # no such field yet
            sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"})
        app.org.add_custom_field("Contact", "CRMSync_Skipped_Gate__c", "textarea")
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):  # exists, not granted (FLS)
            sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"})
        with pytest.raises(FieldError, match="No such column"):
            app.org.update("Contact", contact, {"CRMSync_Skipped_Gate__c": "x"}, user=INTEGRATION_USER)
        conn.setup()
        assert sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"}) == 204
        assert app.org.records["Contact"][contact]["CRMSync_Skipped_Gate__c"] == "x"


# --- a sync pass over SQLite: a converted lead's verdict on its Contact -----------------------------

def contact_of(app: SalesforceApp, rid: str) -> dict[str, Any]:
    return dict(app.org.records["Contact"][app.org.records["Lead"][rid]["ConvertedContactId"]])


def owner_tasks(app: SalesforceApp, who: str) -> list[dict[str, Any]]:
    return [t for t in app.org.records["Task"].values() if t["WhoId"] == who and t.get(TASK_KEY)]


def an_undocumented_mql(app: SalesforceApp) -> str:
    return next(rid for rid, lead in app.org.records["Lead"].items() if not lead["IsConverted"]
                and lead.get("CRMSync_Stage__c") == "MQL" and not all(lead.get(f) for f in BANT_FIELDS))


def sync(store: Store, conn: SalesforceConnector, minutes: int, **options: Any) -> PassReport:
    return SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW + timedelta(minutes=minutes), **options).run()


def test_an_undocumented_mql_converted_without_the_guard_is_stamped_on_its_contact_and_tasked_once(
        tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with salesforce(40) as (app, url):
        conn = sf_connector(url)
        assert sync(store, conn, 0).outcome == "ok"
        rid = an_undocumented_mql(app)
        lead_before = dict(app.org.records["Lead"][rid])
        app.org.clock = lambda: SEED_NOW + timedelta(minutes=1)
        assert convert(url, rid)[0] == 200  # no guard: the org lets it through
        updates = spy_updates(app)
        report = sync(store, conn, 2)
        assert report.outcome == "ok" and report.counts["write_failed"] == 0, report.counts
        contact = contact_of(app, rid)
        gate = contact["CRMSync_Skipped_Gate__c"]
        assert gate.startswith("conversion: missing ") and "budget" in gate, gate
        assert contact["CRMSync_Stage__c"] == "Opportunity"
        assert contact["CRMSync_Opportunity_At__c"] == "2026-11-25T12:02:00Z"
        assert ("Lead", rid) not in updates and ("Contact", contact["Id"]) in updates
        lead = app.org.records["Lead"][rid]
        assert {k: lead.get(k) for k in ("CRMSync_Skipped_Gate__c", "CRMSync_Stage__c")} == \
            {k: lead_before.get(k) for k in ("CRMSync_Skipped_Gate__c", "CRMSync_Stage__c")}
        (task,) = owner_tasks(app, contact["Id"])
        assert "without documented BANT" in task["Description"] and not owner_tasks(app, rid)

        updates.clear()
        again = sync(store, conn, 3)  # the lead is still in the overlap: read and decided again
        assert again.outcome == "ok"
        assert len(owner_tasks(app, contact["Id"])) == 1  # no second task
        assert ("Contact", contact["Id"]) not in updates  # its stamps are the Contact's now: nothing to write
        assert contact_of(app, rid)["CRMSync_Skipped_Gate__c"] == gate


def test_a_documented_lead_converted_is_stamped_documented_with_no_task(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with salesforce(40) as (app, url):
        conn = sf_connector(url)
        assert sync(store, conn, 0).outcome == "ok"
        rid = an_undocumented_mql(app)
        rep_client(app, conn).Lead.update(rid, DOCUMENTED)  # a rep documents BANT, then converts
        app.org.clock = lambda: SEED_NOW + timedelta(minutes=1)
        assert convert(url, rid)[0] == 200
        report = sync(store, conn, 2)
        assert report.outcome == "ok" and report.counts["write_failed"] == 0
        contact = contact_of(app, rid)
        assert contact["CRMSync_Stage__c"] == "Opportunity" and contact["CRMSync_Opportunity_At__c"]
        assert contact.get("CRMSync_Skipped_Gate__c") is None  # documented: nothing missing
        assert not owner_tasks(app, contact["Id"]) and not owner_tasks(app, rid)


def test_a_persons_edit_of_the_contacts_stage_wins_over_the_stale_write(tmp_path: Path) -> None:
    """A pass that dies after deciding leaves the Contact's write in the outbox; a rep sets the Contact's
    crmsync stage to Customer meanwhile; the next pass reads the lead and its Contact, drops the stale
    write and decides again from the rep's value."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with salesforce(40) as (app, url):
        assert sync(store, sf_connector(url), 0).outcome == "ok"
        rid = an_undocumented_mql(app)
        app.org.clock = lambda: SEED_NOW + timedelta(minutes=1)
        assert convert(url, rid)[0] == 200
        failing = sf_connector(url, retry=fast_retry(attempts=2))
        with pytest.raises(CrmsyncError):
            sync(store, failing, 2, progress=lambda _report: app.faults.set("503:1.0"))
        app.faults.set("")
        (pending,) = [r for r in store.outbox_rows("salesforce", OutboxStatus.PENDING)
                      if r["kind"] == "write" and r["record_id"] == rid]
        assert pending["payload"]["properties"]["CRMSync_Stage__c"] == "Opportunity"
        contact = contact_of(app, rid)
        assert contact.get("CRMSync_Stage__c") is None  # not written yet

        conn = sf_connector(url)
        rep = rep_client(app, conn)
        app.org.grant(REP, ["Contact.CRMSync_Stage__c"], name="Sales_Rep")
        rep.Contact.update(contact["Id"], {"CRMSync_Stage__c": "Customer"})  # the deal is won, says the rep

        report = sync(store, conn, 3)
        assert report.outcome == "ok" and report.counts["stale_writes"] == 1, report.counts
        assert [r["record_id"] for r in store.outbox_rows("salesforce", OutboxStatus.STALE)] == [rid]
        now = contact_of(app, rid)
        assert now["CRMSync_Stage__c"] == "Customer"  # the rep's value, not the stale Opportunity
        assert now["CRMSync_Customer_At__c"] and now["CRMSync_Opportunity_At__c"]
        assert now["CRMSync_Skipped_Gate__c"].startswith("conversion: missing ")
        # the failed pass's task was in the outbox; the rep's Customer is judged again (the stale write never
        # stamped opportunity_at), but a skipped gate is one task per record: still one, on the Contact
        reached = [t["Description"].split(" by ")[0] for t in owner_tasks(app, contact["Id"])]
        assert reached == ["Reached opportunity"] and not owner_tasks(app, rid)


def test_leads_and_converted_contacts_go_in_one_composite_call_results_in_order() -> None:
    with salesforce(30) as (app, url):
        open_leads = [rid for rid, lead in app.org.records["Lead"].items() if not lead["IsConverted"]]
        converted = open_leads[0]
        contact = convert(url, converted)[1]["ConvertedContactId"]
        conn = sf_connector(url)
        (read,) = conn.read([converted]).contacts
        change = conn.changes(read, {"governed_stage": "opportunity", "skipped_gate": "conversion: missing budget",
                                     "sla_state": "breached", "lead_status": "qualified"})
        assert change is not None and change.record_id == converted
        assert set(change.properties) == {"CRMSync_Stage__c", "CRMSync_Skipped_Gate__c"}  # Contact fields only
        app.reset_counts()
        results = conn.write([WriteBack(open_leads[1], {"CRMSync_SLA_State__c": "on_track"}), change,
                              WriteBack(open_leads[2], {"CRMSync_Stage__c": "Hot"})])
        assert app.call_counts() == {"composite.update": 1}
        assert [(r.record_id, r.ok) for r in results] == [(open_leads[1], True), (converted, True),
                                                           (open_leads[2], False)]
        assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in results[2].error
        assert app.org.records["Contact"][contact]["CRMSync_Skipped_Gate__c"] == "conversion: missing budget"
        assert app.org.records["Lead"][open_leads[1]]["CRMSync_SLA_State__c"] == "on_track"


def test_the_sandbox_refuses_a_task_on_a_converted_lead_and_too_many_type_chunks() -> None:
    with salesforce(10) as (app, url):
        rid = next(r for r, lead in app.org.records["Lead"].items() if not lead["IsConverted"])
        contact = convert(url, rid)[1]["ConvertedContactId"]
        sf = sf_connector(url)._login()
        with pytest.raises(SalesforceMalformedRequest, match="CANNOT_UPDATE_CONVERTED_LEAD"):
            sf.Task.create({"WhoId": rid, "Subject": "Call"})
        assert sf.Task.create({"WhoId": contact, "Subject": "Call"})["success"]
        leads = [r for r, lead in app.org.records["Lead"].items() if not lead["IsConverted"]]
        alternating = [{"attributes": {"type": "Lead" if i % 2 else "Contact"}, "id": leads[0] if i % 2 else contact}
                       for i in range(11)]
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_BATCH_REQUEST"):
            sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": alternating})
        assert len(sf.restful("composite/sobjects", method="PATCH",
                              json={"allOrNone": False, "records": alternating[:10]})) == 10
