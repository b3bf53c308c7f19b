"""A real org's rules in the sandbox: field-level security, Task fields on Activity, a default-shaped
org; and `crmsync setup`, `doctor` and `sync` on such an org with a user that starts with no field
permissions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.sandbox.org import (
    INTEGRATION_USER,
    STANDARD_INDUSTRIES,
    STANDARD_SOURCES,
    FieldError,
    Org,
)
from crmsync.crms.salesforce.sandbox.seeding import DEFAULT_INDUSTRY, DEFAULT_SOURCE
from crmsync.errors import FatalError
from crmsync.model import WriteBack
from tests.hubspot_fixtures import DEFS, need_shared
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_salesforce_contract import pull_all
from tests.test_sync_e2e_salesforce import env, post

BANT = ["Lead.BANT_Need__c", "Lead.BANT_Authority__c", "Lead.BANT_Timeline__c", "Lead.BANT_Budget__c"]


def recorded_describe() -> dict[str, list[str]]:
    path = need_shared("recorded", "salesforce", "describe_lead.json")  # read at test time, never copied
    fields = json.loads(path.read_text())["fields"]
    return {f["name"]: [p["value"] for p in f["picklistValues"]] for f in fields}


def fresh_org(app: object) -> None:
    """The admin's BANT fields exist; crmsync's do not; the integration user has no field permissions."""
    org = app.org  # type: ignore[attr-defined]
    for name in BANT:
        org.add_custom_field("Lead", name.split(".")[1], "string")


def test_the_default_org_is_the_recorded_org() -> None:
    picklists = recorded_describe()
    with salesforce(60) as (app, _url):
        assert app.org.statuses() == picklists["Status"]
        leads = list(app.org.records["Lead"].values())
        assert {lead["Status"] for lead in leads} <= set(picklists["Status"])
        assert {lead["Industry"] for lead in leads if lead.get("Industry")} <= set(picklists["Industry"])
        assert {lead["LeadSource"] for lead in leads if lead.get("LeadSource")} <= set(picklists["LeadSource"])
    assert set(DEFAULT_INDUSTRY.values()) <= set(picklists["Industry"])
    assert set(DEFAULT_SOURCE.values()) <= set(picklists["LeadSource"])
    assert (picklists["Industry"], picklists["LeadSource"]) == (STANDARD_INDUSTRIES, STANDARD_SOURCES)


def test_an_invisible_field_is_invalid_field_and_setup_grants_it() -> None:
    with salesforce(3, custom_fields=False) as (app, url):
        fresh_org(app)
        conn = sf_connector(url)
        with pytest.raises(FatalError, match="INVALID_FIELD"):
            list(conn._soql("read", "SELECT Id, BANT_Need__c FROM Lead"))
        doctor = {c.name: c for c in conn.doctor()}
        fields = doctor["salesforce fields"]
        assert not fields.ok
        assert "missing" in fields.detail and "Lead.CRMSync_Stage__c" in fields.detail
        hidden = fields.detail.split("not visible to this user")[1]
        assert all(name in hidden for name in BANT) and "CRMSync_Integration" in hidden

        created = conn.setup()
        assert "Activity.CRMSync_Task_Key__c" in created and "Lead.BANT_Need__c" not in created
        assert any(c.startswith("PermissionSetAssignment") for c in created)
        assert conn.setup() == []  # idempotent: no DUPLICATE_DEVELOPER_NAME, no duplicate grants
        assert app.org.fields["Task"]["CRMSync_Task_Key__c"] and "CRMSync_Task_Key__c" in app.org.fields["Event"]
        assert "CRMSync_Task_Key__c" in app.org.external_ids
        assert all(app.org.granted(INTEGRATION_USER, *name.split("."), edit=True) for name in BANT)
        assert all(c.ok for c in conn.doctor()), conn.doctor()
        assert list(conn._soql("read", "SELECT Id, BANT_Need__c, CRMSync_Stage__c FROM Lead"))


def test_custom_fields_for_tasks_are_created_on_activity() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        conn = sf_connector(url)
        body = {"FullName": "Task.Mine__c", "Metadata": {"type": "Text", "length": 10, "label": "Mine"}}
        with pytest.raises(FatalError, match=r"INVALID_TYPE.*Activity"):
            conn._call("create", lambda sf: sf.restful("tooling/sobjects/CustomField", method="POST", json=body))
        body["FullName"] = "Activity.Mine__c"
        conn._call("create", lambda sf: sf.restful("tooling/sobjects/CustomField", method="POST", json=body))
        assert "Mine__c" in app.org.fields["Task"]


def test_a_rep_requests_sql_with_the_checkbox_on_a_default_org() -> None:
    with salesforce(12) as (app, url):
        conn = sf_connector(url)
        contacts, _ = pull_all(conn)
        asked = [c for c in contacts if c.stage == "sql"]
        assert asked and all(app.org.records["Lead"][c.id]["Status"] != "Qualified" for c in asked)
        industries = {c.industry for c in contacts}
        assert "software" in industries and "Technology" not in industries  # the admin's mapping applies


def test_setup_doctor_and_sync_on_a_default_org_with_no_field_permissions(tmp_path: Path) -> None:
    with salesforce(40, custom_fields=False, real_clock=True) as (app, url):
        fresh_org(app)
        variables = env(url, tmp_path / "s.db")
        before = run("doctor", "--crm", "salesforce", env=variables)
        assert before.returncode == 1 and "not visible to this user" in before.stdout
        setup = run("setup", "--crm", "salesforce", env=variables)
        assert setup.returncode == 0, setup.stderr
        doctor = run("doctor", "--crm", "salesforce", env=variables)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        sync = run("sync", "--once", "--crm", "salesforce", env=variables)
        assert sync.returncode == 0, sync.stderr
        leads = [lead for lead in app.org.records["Lead"].values() if not lead["IsConverted"]]
        stages = [lead.get("CRMSync_Stage__c") for lead in leads]
        assert all(stages), [(lead["Status"], lead.get("Email")) for lead in leads if not lead.get("CRMSync_Stage__c")]
        assert stages.count("MQL") >= 2, stages



def test_an_undocumented_sql_request_is_reverted_and_the_box_cleared(tmp_path: Path) -> None:
    with salesforce(40, real_clock=True) as (app, url):
        variables = env(url, tmp_path / "s.db")
        assert run("sync", "--once", "--crm", "salesforce", env=variables).returncode == 0
        mql = next(rid for rid, lead in app.org.records["Lead"].items() if lead.get("CRMSync_Stage__c") == "MQL")
        post(url, f"/__sandbox/leads/{mql}/sql", {"bant": {"need": "Lead routing loses a third of demo requests",
                                                           "authority": "VP Finance signs", "timeline": "",
                                                           "budget": "$40k approved"}})
        assert app.org.records["Lead"][mql]["CRMSync_SQL_Requested__c"] is True
        assert run("sync", "--once", "--crm", "salesforce", env=variables).returncode == 0
        lead = app.org.records["Lead"][mql]
        assert lead["CRMSync_SQL_Requested__c"] is False and lead["CRMSync_Stage__c"] == "MQL"
        assert "timeline: empty" in lead["CRMSync_SQL_Blocked_Reason__c"]
        app.reset_counts()
        assert run("sync", "--once", "--crm", "salesforce", env=variables).returncode == 0
        assert "composite.update" not in app.call_counts()  # settled: no loop between rep and crmsync

        documented = {"need": "Inbound demo requests sit for days; a third are lost",
                      "authority": "Reports to the CFO, who signs off", "timeline": "Decision within 6 weeks",
                      "budget": "$45k approved in the FY27 budget"}
        post(url, f"/__sandbox/leads/{mql}/sql", {"bant": documented})
        assert run("sync", "--once", "--crm", "salesforce", env=variables).returncode == 0
        lead = app.org.records["Lead"][mql]
        assert lead["CRMSync_Stage__c"] == "SQL" and lead["CRMSync_SQL_Requested__c"] is True


def test_doctor_checks_the_orgs_industries_against_fit() -> None:
    with salesforce(0) as (_app, url):
        conn = sf_connector(url)
        check = {c.name: c for c in conn.doctor()}["salesforce Industry values"]
        assert check.ok and "Technology" in check.detail.split("no fit criterion")[0]
        assert "Agriculture" in check.detail.split("no fit criterion")[1]
        unmapped = SalesforceConnector(conn.settings, DEFS.definitions.mappings.salesforce.model_copy(
            update={"industries": {}}), fit_industries=DEFS.definitions.fit.industries)
        check = {c.name: c for c in unmapped.doctor()}["salesforce Industry values"]
        # without the mapping, only the standard values that happen to be fit words pass
        assert check.ok and "Technology" not in check.detail.split("no fit criterion")[0]
        nothing = SalesforceConnector(conn.settings, DEFS.definitions.mappings.salesforce.model_copy(
            update={"industries": {}}), fit_industries=["software"])
        check = {c.name: c for c in nothing.doctor()}["salesforce Industry values"]
        assert not check.ok and "none can become MQL" in check.detail


CUSTOM = ["A__c", "B__c", "C__c", "D__c"]


@settings(max_examples=60, deadline=None)
@given(read=st.sets(st.sampled_from(CUSTOM)), edit=st.sets(st.sampled_from(CUSTOM)),
       assigned=st.booleans())
def test_a_user_sees_and_writes_exactly_what_an_assigned_permission_set_grants(
        read: set[str], edit: set[str], assigned: bool) -> None:
    org = Org()
    for name in CUSTOM:
        org.add_custom_field("Lead", name, "string")
    lead = org.create("Lead", {"LastName": "Ng", "Company": "Acme"})
    pset = org.create("PermissionSet", {"Name": "P", "Label": "P"})
    for name in read | edit:
        org.create("FieldPermissions", {"ParentId": pset["Id"], "SobjectType": "Lead", "Field": f"Lead.{name}",
                                        "PermissionsRead": True, "PermissionsEdit": name in edit})
    if assigned:
        org.create("PermissionSetAssignment", {"PermissionSetId": pset["Id"], "AssigneeId": INTEGRATION_USER})
    visible = {n for n in org.visible(INTEGRATION_USER, "Lead") if n.endswith("__c")}
    assert visible == ((read | edit) if assigned else set())
    assert set(org.visible(None, "Lead")) >= set(CUSTOM)  # internal calls see everything
    for name in CUSTOM:
        writable = assigned and name in edit
        try:
            org.update("Lead", lead["Id"], {name: "x"}, user=INTEGRATION_USER)
            assert writable
        except FieldError as exc:
            assert not writable
            assert exc.code == ("INVALID_FIELD" if name not in visible else "INVALID_FIELD_FOR_INSERT_UPDATE")


def test_the_stage_field_is_a_restricted_picklist_of_the_mapping_s_stages() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        conn = sf_connector(url)
        conn.setup()
        stages = app.org.picklist("Lead", "CRMSync_Stage__c")
        assert stages == ["Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer", "Recycled", "Disqualified"]
        rid = app.org.create("Lead", {"LastName": "Ng", "Company": "Acme"})["Id"]
        (refused,) = conn.write([WriteBack(rid, {"CRMSync_Stage__c": "Hot"})])
        assert not refused.ok and "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in refused.error
        assert conn.write([WriteBack(rid, {"CRMSync_Stage__c": "MQL"})])[0].ok
        app.org.custom_picklists[("Lead", "CRMSync_Stage__c")].remove("Recycled")  # an admin edited it
        fields = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not fields.ok and "without Recycled" in fields.detail


def test_doctor_lists_the_orgs_lead_sources_no_rule_scores() -> None:
    rules = DEFS.definitions.engagement.property_points
    scored = [v for r in rules if r.field == "source" for v in r.values]
    assert scored  # the default definitions score some sources
    with salesforce(0) as (_app, url):
        conn = sf_connector(url)
        informed = SalesforceConnector(conn.settings, DEFS.definitions.mappings.salesforce,
                                       fit_industries=DEFS.definitions.fit.industries, scored_sources=scored)
        check = {c.name: c for c in informed.doctor()}["salesforce LeadSource values"]
        assert check.ok  # information, not a failure
        listed = check.detail.split("scores ")[1].split(" (map")[0].split(", ")
        # the recorded default org's LeadSource values: Partner Referral is a referral, which a rule scores
        assert "Partner Referral" not in listed and {"Web", "Purchased List", "Other"} <= set(listed)
        scored_all = SalesforceConnector(conn.settings, DEFS.definitions.mappings.salesforce.model_copy(
            update={"sources": {v: "referral" for v in listed}}), scored_sources=scored)
        check = {c.name: c for c in scored_all.doctor()}["salesforce LeadSource values"]
        assert check.detail == "every LeadSource value is scored by a rule"
