"""Lead conversion as Salesforce does it, and a connector that reads converted leads and never writes them."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.model import WriteBack
from crmsync.rules import decide
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_sync_e2e_salesforce import env


def post(url: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(url + path, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def spy_updates(app: Any) -> list[tuple[str, str]]:
    """Every (sObject, id) the org updates from now on, in order."""
    attempts: list[tuple[str, str]] = []
    update = app.org.update

    def spy(sobject: str, record_id: str, values: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        attempts.append((sobject, record_id))
        return update(sobject, record_id, values, **kwargs)

    app.org.update = spy
    return attempts


def a_lead_with_a_call(app: Any) -> str:
    called = {t["WhoId"] for t in app.org.records["Task"].values()}
    return next(rid for rid, lead in app.org.records["Lead"].items() if not lead["IsConverted"] and rid in called)


def test_converting_creates_the_records_and_moves_the_activities() -> None:
    with salesforce(20) as (app, url):
        rid = a_lead_with_a_call(app)
        tasks = [t["Id"] for t in app.org.records["Task"].values() if t["WhoId"] == rid]
        answer = post(url, f"/__sandbox/leads/{rid}/convert")
        lead = app.org.records["Lead"][rid]
        assert lead["IsConverted"] and lead["Status"] == "Closed - Converted" and lead["ConvertedDate"]
        contact = app.org.records["Contact"][answer["ConvertedContactId"]]
        assert contact["Email"] == lead["Email"] and contact["AccountId"] == answer["ConvertedAccountId"]
        assert app.org.records["Opportunity"][answer["ConvertedOpportunityId"]]["AccountId"] == contact["AccountId"]
        assert all(app.org.records["Task"][t]["WhoId"] == contact["Id"] for t in tasks)


def test_a_converted_lead_refuses_updates_per_record_and_alone() -> None:
    with salesforce(20) as (app, url):
        rid = a_lead_with_a_call(app)
        other = next(r for r, lead in app.org.records["Lead"].items() if not lead["IsConverted"] and r != rid)
        post(url, f"/__sandbox/leads/{rid}/convert")
        conn = sf_connector(url)
        results = conn.write([WriteBack(rid, {"CRMSync_SLA_State__c": "on_track"}),
                              WriteBack(other, {"CRMSync_SLA_State__c": "on_track"})])
        assert not results[0].ok and not results[0].retriable and "CANNOT_UPDATE_CONVERTED_LEAD" in results[0].error
        assert results[1].ok
        with pytest.raises(SalesforceMalformedRequest, match="CANNOT_UPDATE_CONVERTED_LEAD"):
            conn._login().Lead.update(rid, {"CRMSync_SLA_State__c": "x"})
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
            conn._login().Lead.update(other, {"IsConverted": True})  # not updateable through the API


def test_the_connector_reads_where_a_converted_lead_went_and_writes_only_its_contact_fields() -> None:
    with salesforce(20) as (app, url):
        rid = a_lead_with_a_call(app)
        answer = post(url, f"/__sandbox/leads/{rid}/convert")
        conn = sf_connector(url)
        contact = conn.read([rid]).contacts[0]
        assert contact.stage == "opportunity"
        assert {k: contact.snapshot[k] for k in answer if k != "Id"} == {k: v for k, v in answer.items() if k != "Id"}
        change = conn.changes(contact, decide(contact, [], DEFS, SEED_NOW).writes)
        assert change is not None and change.record_id == rid
        assert set(change.properties) == {"CRMSync_Stage__c", "CRMSync_Opportunity_At__c"}  # documented: no flag
        assert conn.changes(contact, {"sla_state": "breached", "lead_status": "qualified"}) is None  # Lead-only


def test_a_sync_after_a_conversion_writes_the_contact_never_the_converted_lead(tmp_path: Path) -> None:
    with salesforce(20, real_clock=True) as (app, url):
        variables = env(url, tmp_path / "s.db")
        assert run("sync", "--once", "--crm", "salesforce", env=variables).returncode == 0
        rid = a_lead_with_a_call(app)
        converted = post(url, f"/__sandbox/leads/{rid}/convert")
        attempts = spy_updates(app)
        second = run("sync", "--once", "--crm", "salesforce", env=variables)
        assert second.returncode == 0, second.stderr
        assert ("Lead", rid) not in attempts and ("Contact", converted["ConvertedContactId"]) in attempts
