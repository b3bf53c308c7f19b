"""The BANT guard (`crmsync setup --guard`): a Lead validation rule that refuses converting a lead and
requesting SQL without the four BANT fields, installed through the Tooling API and enforced by the
sandbox's org, with a rep acting through simple-salesforce (edits) and the sandbox's convert button."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.guard import GUARD_NAME, MESSAGE, guard_formula, install_guard
from crmsync.crms.salesforce.sandbox import SalesforceApp
from crmsync.crms.salesforce.sandbox.formula import FormulaError, compile_formula
from crmsync.crms.salesforce.sandbox.org import BANT_FIELDS, FieldError, Org
from crmsync.crms.salesforce.sandbox.seeding import install_custom_fields
from crmsync.errors import FatalError
from tests.hubspot_fixtures import TOKEN, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_sync_e2e_salesforce import env

REP = "0055g0000000002AAA"
DOCUMENTED = {"BANT_Need__c": "Routing loses a third of demo requests", "BANT_Authority__c": "VP Sales signs",
              "BANT_Timeline__c": "this quarter", "BANT_Budget__c": "40k approved"}


def rep_client(app: SalesforceApp, conn: SalesforceConnector) -> Salesforce:
    """simple-salesforce with a session of a sales rep who may edit the BANT fields and the SQL request."""
    org = app.org
    org.records["User"][REP] = {"Id": REP, "Username": "rep@example.com", "Name": "A rep", "IsActive": True}
    org.grant(REP, [f"Lead.{name}" for name in [*BANT_FIELDS, "CRMSync_SQL_Requested__c"]], name="Sales_Rep")
    conn._login()  # the connector's transport sends the sandbox's https URLs as http
    return Salesforce(instance_url=conn.settings.instance_url, session_id=org.issue_token(REP),
                      version=conn.settings.api_version, session=conn.session)


def convert(url: str, rid: str) -> tuple[int, dict[str, Any]]:
    """A rep pressing Convert on the lead (the sandbox's person-in-the-UI endpoint)."""
    request = urllib.request.Request(f"{url}/__sandbox/leads/{rid}/convert", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode()}


def undocumented(org: Org) -> str:
    return next(rid for rid, lead in org.records["Lead"].items() if not lead["IsConverted"]
                and not lead.get("CRMSync_SQL_Requested__c") and lead.get("Status") != "Qualified"
                and not all(lead.get(f) for f in BANT_FIELDS))


def guarded(app: SalesforceApp, url: str, *, on_convert: bool = True) -> SalesforceConnector:
    conn = sf_connector(url)
    assert install_guard(conn) == [f"ValidationRule Lead.{GUARD_NAME}"]
    app.org.require_validation_on_convert = on_convert
    return conn


def test_with_the_guard_an_undocumented_lead_is_neither_converted_nor_asked_to_sql() -> None:
    with salesforce(20) as (app, url):
        conn = guarded(app, url)
        rep = rep_client(app, conn)
        rid = undocumented(app.org)
        with pytest.raises(SalesforceMalformedRequest) as refused:
            rep.Lead.update(rid, {"CRMSync_SQL_Requested__c": True})
        assert refused.value.content[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        assert refused.value.content[0]["message"] == MESSAGE
        status, answer = convert(url, rid)
        assert status == 400 and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in answer["error"] and MESSAGE in answer["error"]
        lead = app.org.records["Lead"][rid]
        assert not lead["IsConverted"] and not lead.get("CRMSync_SQL_Requested__c")
        assert not app.org.records["Opportunity"]

        rep.Lead.update(rid, {**DOCUMENTED, "BANT_Budget__c": "   "})  # blank after trimming
        with pytest.raises(SalesforceMalformedRequest, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
            rep.Lead.update(rid, {"CRMSync_SQL_Requested__c": True})
        rep.Lead.update(rid, DOCUMENTED)
        rep.Lead.update(rid, {"CRMSync_SQL_Requested__c": True})
        status, answer = convert(url, rid)
        assert status == 200 and answer["ConvertedOpportunityId"] in app.org.records["Opportunity"]


def test_on_a_rich_org_the_guard_refuses_the_qualified_status_without_bant() -> None:
    with salesforce(20, shape="rich") as (app, url):
        conn = guarded(app, url)
        rep = rep_client(app, conn)
        rid = undocumented(app.org)
        with pytest.raises(SalesforceMalformedRequest, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
            rep.Lead.update(rid, {"Status": "Qualified"})
        rep.Lead.update(rid, {**DOCUMENTED, "Status": "Qualified"})  # documented in the same save
        assert app.org.records["Lead"][rid]["Status"] == "Qualified"


def test_a_request_made_before_the_guard_does_not_block_later_edits() -> None:
    """The rule fires on the request (ISNEW/ISCHANGED), not on every save of a lead that already asked:
    crmsync can still revert it, and the engine's detection deals with it."""
    with salesforce(20) as (app, url):
        rid = undocumented(app.org)
        app.org.update("Lead", rid, {"CRMSync_SQL_Requested__c": True})
        rep = rep_client(app, guarded(app, url))
        rep.Lead.update(rid, {"BANT_Need__c": "still working on it"})
        rep.Lead.update(rid, {"CRMSync_SQL_Requested__c": False})
        assert app.org.records["Lead"][rid]["CRMSync_SQL_Requested__c"] is False


def test_with_the_guard_off_conversion_goes_through() -> None:
    with salesforce(20) as (app, url):
        rid = undocumented(app.org)
        assert convert(url, rid)[0] == 200  # no rule at all
    with salesforce(20) as (app, url):
        rep = rep_client(app, guarded(app, url, on_convert=False))
        rid = undocumented(app.org)
        # the rule still refuses the SQL request, but without "Require Validation for Converted Leads"
        # Salesforce runs no validation rule on conversion
        with pytest.raises(SalesforceMalformedRequest, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
            rep.Lead.update(rid, {"CRMSync_SQL_Requested__c": True})
        assert convert(url, rid)[0] == 200 and app.org.records["Lead"][rid]["IsConverted"]


def test_setup_guard_is_idempotent_reinstalls_a_changed_rule_and_doctor_shows_it(tmp_path: Path) -> None:
    with salesforce(10) as (app, url):
        variables = env(url, tmp_path / "s.db")
        before = run("doctor", "--crm", "salesforce", env=variables)
        assert before.returncode == 0, before.stdout
        assert "salesforce BANT guard" in before.stdout and "off: run `crmsync setup --guard`" in before.stdout
        first = run("setup", "--guard", "--crm", "salesforce", env=variables)
        assert first.returncode == 0, first.stderr
        assert f"ValidationRule Lead.{GUARD_NAME}" in first.stdout
        rules = list(app.org.records["ValidationRule"].values())
        assert len(rules) == 1 and rules[0]["Metadata"]["active"] and rules[0]["EntityDefinitionId"] == "Lead"
        again = run("setup", "--guard", "--crm", "salesforce", env=variables)
        assert again.returncode == 0 and "salesforce: nothing to create" in again.stdout, again.stdout
        on = run("doctor", "--crm", "salesforce", env=variables)
        assert on.returncode == 0 and "on: validation rule" in on.stdout and "Require Validation" in on.stdout

        # an admin edits the formula: doctor fails, setup --guard puts crmsync's back
        rule = rules[0]
        app.org.save_rule("", {**rule["Metadata"], "errorConditionFormula": "ISBLANK(BANT_Need__c)"}, rule["Id"])
        drifted = run("doctor", "--crm", "salesforce", env=variables)
        assert drifted.returncode == 1 and "differs from what the definitions need" in drifted.stdout
        fixed = run("setup", "--guard", "--crm", "salesforce", env=variables)
        assert "(updated)" in fixed.stdout and len(app.org.records["ValidationRule"]) == 1
        assert rule["Metadata"]["errorConditionFormula"] == guard_formula(sf_connector(url), set(app.org.statuses()))

        app.org.save_rule("", {**rule["Metadata"], "active": False}, rule["Id"])
        off = run("doctor", "--crm", "salesforce", env=variables)
        assert off.returncode == 0 and "is inactive" in off.stdout


def test_setup_guard_on_hubspot_says_there_is_no_such_rule(tmp_path: Path) -> None:
    with hubspot() as (_, url):
        variables = {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url,
                     "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
        answer = run("setup", "--guard", "--crm", "hubspot", env=variables)
        assert answer.returncode == 0, answer.stderr
        assert "hubspot: no guard installed: HubSpot has no rule" in answer.stdout


def test_the_sandbox_refuses_a_formula_it_cannot_evaluate() -> None:
    org = Org()
    install_custom_fields(org)
    for formula, problem in [("ISBLANK(Nope__c)", "does not exist"), ('CONTAINS(BANT_Need__c, "x")', "CONTAINS"),
                             ("LEN(BANT_Need__c) < 5", "cannot read"), ("BANT_Need__c", "boolean"),
                             ("AND(IsConverted", "ends too early"), ("ISCHANGED(TRIM(BANT_Need__c))", "ISCHANGED"),
                             ("NOT(ISBLANK(TRIM(Status)))", "TRIM")]:
        with pytest.raises(FormulaError, match=problem):
            org.save_rule("Lead.Bad", {"errorConditionFormula": formula, "errorMessage": "x", "active": True})
    assert not org.records["ValidationRule"]
    with salesforce(0) as (_, url):
        conn = sf_connector(url)
        with pytest.raises(FatalError, match="FIELD_INTEGRITY_EXCEPTION"):
            conn._call("create rule", lambda sf: sf.restful("tooling/sobjects/ValidationRule", method="POST", json={
                "FullName": "Lead.Bad", "Metadata": {"errorConditionFormula": "ISNULL(BANT_Need__c)",
                                                     "errorMessage": "x", "active": True}}))


TEXT = st.sampled_from([None, "", "  ", "n/a", "documented"])


@functools.cache
def _guard_rule() -> Any:
    """The guard's formula for a rich org, compiled once (the same for every example)."""
    org = Org(shape="rich")
    install_custom_fields(org)
    return compile_formula(guard_formula(sf_connector("http://127.0.0.1:9"), set(org.statuses())), org.fields["Lead"])


@settings(max_examples=150, deadline=None)
@given(before=st.fixed_dictionaries({f: TEXT for f in BANT_FIELDS}), after=st.fixed_dictionaries(
    {f: TEXT for f in BANT_FIELDS}), asked_before=st.booleans(), asked=st.booleans(), new=st.booleans(),
    qualified_before=st.booleans(), qualified=st.booleans(), converting=st.booleans())
def test_the_guard_refuses_exactly_a_conversion_or_a_new_sql_request_with_a_blank_bant_field(
        before: dict[str, Any], after: dict[str, Any], asked_before: bool, asked: bool, new: bool,
        qualified_before: bool, qualified: bool, converting: bool) -> None:
    """The generated formula, as the sandbox evaluates it, against the rule in words."""
    rule = _guard_rule()

    def lead(bant: dict[str, Any], *, ask: bool, qual: bool, converted: bool) -> dict[str, Any]:
        return {**bant, "CRMSync_SQL_Requested__c": ask, "IsConverted": converted,
                "Status": "Qualified" if qual else "Working - Contacted"}

    old = None if new else lead(before, ask=asked_before, qual=qualified_before, converted=False)
    record = lead(after, ask=asked, qual=qualified, converted=converting)
    blank = any(not (v or "").strip() for v in after.values())
    requested = (asked and (new or not asked_before)) or (qualified and (new or not qualified_before))
    assert bool(rule(record, old)) == (blank and (converting or requested))


def test_the_built_in_switch_is_a_formula_too() -> None:
    org = Org(shape="rich", validation_rule=True)
    install_custom_fields(org)
    rid = org.create("Lead", {"LastName": "Ng", "Company": "Acme"})["Id"]
    with pytest.raises(FieldError) as refused:
        org.update("Lead", rid, {"Status": "Qualified", **DOCUMENTED, "BANT_Budget__c": None})
    assert refused.value.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and refused.value.fields == BANT_FIELDS
    org.update("Lead", rid, {"Status": "Qualified", **DOCUMENTED})
