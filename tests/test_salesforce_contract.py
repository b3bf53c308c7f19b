"""Contract tests: simple-salesforce and our connector against the Salesforce sandbox."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from crmsync.crms.hubspot.connector import AuthError
from crmsync.crms.salesforce.connector import BULK_PAGE
from crmsync.crms.salesforce.mapping import quote
from crmsync.crms.salesforce.sandbox.soql import parse
from crmsync.errors import FatalError, QuotaError
from crmsync.model import Contact, OwnerTask, Stage, WriteBack
from crmsync.rules import decide
from tests.builders import EPOCH, LATER, scaled
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce, sf_connector


def pull_all(conn, since=EPOCH, until=LATER):  # type: ignore[no-untyped-def]
    contacts, errors = [], []
    for page in conn.pull_changed(since, until):
        contacts += page.contacts
        errors += page.errors
    return contacts, errors


def stamp_queries(pages: list[list[Contact]]) -> int:
    """The Contact queries of a pull: one per 300 converted leads (their Contact's crmsync fields) a page."""
    return sum(math.ceil(sum(c.snapshot.get("IsConverted") == "true" for c in page) / 300) for page in pages)


def test_pull_pages_by_batch_size_with_the_minimum_calls() -> None:
    with salesforce(4500) as (app, url):
        conn = sf_connector(url)
        pages = [page for page in conn.pull_changed(EPOCH, LATER)]
        contacts = [c for page in pages for c in page.contacts]
        assert len(contacts) == 4500 and not any(page.errors for page in pages)
        calls = app.call_counts()
        converted = stamp_queries([page.contacts for page in pages])
        assert converted == len(pages)  # the seed has converted leads on every page, fewer than 300 each
        # plus, once, the Contact describe that says the stamp fields are there
        assert calls == {"oauth.token": 1, "queryAll": 1, "query.more": math.ceil(4500 / 2000) - 1,
                         "describe": 1, "query": converted}
        assert len({c.id for c in contacts}) == 4500


def test_time_window_and_resume_key() -> None:
    with salesforce(300) as (app, url):
        conn = sf_connector(url)
        pages = list(conn.pull_changed(EPOCH, LATER))
        last = pages[-1].resume_key
        assert last and not next(iter(conn.pull_changed(EPOCH, LATER, after_key=last))).contacts
        stamps = sorted(r["SystemModstamp"] for r in app.org.records["Lead"].values())
        middle = datetime.fromisoformat(stamps[150])
        later, _ = pull_all(conn, since=middle)
        assert 100 < len(later) < 200


def test_deleted_leads_are_skipped() -> None:
    with salesforce(10) as (app, url):
        gone = next(iter(app.org.records["Lead"]))
        app.org.delete("Lead", gone)
        contacts, _ = pull_all(sf_connector(url))
        assert gone not in {c.id for c in contacts} and len(contacts) == 9


def test_activities_come_from_chunked_in_queries() -> None:
    with salesforce(700) as (app, url):
        conn = sf_connector(url)
        contacts, _ = pull_all(conn)
        app.reset_counts()
        found = conn.activities([c.id for c in contacts])
        assert app.call_counts() == {"query": 3 * math.ceil(700 / 300)}
        kinds = {a.kind for acts in found.values() for a in acts}
        assert {"call", "form_submission"} <= kinds
        demo = [a for acts in found.values() for a in acts if a.detail == "Demo request"]
        assert demo and all(a.kind == "form_submission" for a in demo)


def test_session_expiry_mid_run_reauthenticates_without_losing_the_page() -> None:
    with salesforce(4100) as (app, url):
        conn = sf_connector(url)
        pages = conn.pull_changed(EPOCH, LATER)
        first = next(pages)
        app.org.sessions.clear()  # every session expires now
        rest = [c for page in pages for c in page.contacts]
        assert len(first.contacts) + len(rest) == 4100
        assert app.call_counts()["oauth.token"] == 2
        statuses = {(r["endpoint"], r["status"]) for r in app.call_counts_by_status()}
        assert ("query.more", 401) in statuses


def test_request_limit_exceeded_stops_the_run_until_the_quota_resets() -> None:
    with salesforce(10) as (app, url):
        app.org.api_limit = 0
        with pytest.raises(QuotaError, match="REQUEST_LIMIT_EXCEEDED") as refused:
            pull_all(sf_connector(url))
        assert refused.value.resume_at > datetime.now(UTC)
        assert "paused until" in str(refused.value)
        assert app.call_counts()["queryAll"] == 1  # not retried within the pass


def test_wrong_credentials_are_an_auth_error() -> None:
    with salesforce(1) as (app, url):
        app.org.credentials = {"client_id": "someone-else"}
        with pytest.raises(AuthError, match="login refused"):
            pull_all(sf_connector(url))


def test_composite_update_reports_validation_rule_and_lock_errors_per_record() -> None:
    with salesforce(6, faults="lock:1.0", shape="rich") as (app, url):
        app.org.validation_rule = True
        ids = list(app.org.records["Lead"])
        results = sf_connector(url).write([
            WriteBack(ids[0], {"CRMSync_SLA_State__c": "on_track"}),
            WriteBack(ids[1], {"CRMSync_SLA_State__c": "on_track"}),
            WriteBack(ids[2], {"Status": "Qualified", "BANT_Budget__c": None}),
        ])
        assert results[0].ok
        assert not results[1].ok and results[1].retriable and "UNABLE_TO_LOCK_ROW" in results[1].error
        assert not results[2].ok and not results[2].retriable
        assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in results[2].error


def test_writes_go_in_composite_calls_of_200() -> None:
    with salesforce(500) as (app, url):
        conn = sf_connector(url)
        ids = [rid for rid, lead in app.org.records["Lead"].items() if not lead["IsConverted"]][:450]
        assert len(ids) == 450
        app.reset_counts()
        results = conn.write([WriteBack(i, {"CRMSync_SLA_State__c": "on_track"}) for i in ids])
        assert all(r.ok for r in results)
        assert app.call_counts() == {"oauth.token": 1, "composite.update": 3}


def test_composite_refuses_more_than_200_and_all_or_none_rolls_back() -> None:
    with salesforce(3) as (app, url):
        conn = sf_connector(url)
        ids = list(app.org.records["Lead"])
        conn._call("warm up", lambda sf: sf.query("SELECT Id FROM Lead LIMIT 1"))
        sf = conn.sf
        assert sf is not None
        with pytest.raises(Exception) as too_many:
            sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
                {"attributes": {"type": "Lead"}, "id": ids[0]}] * 201})
        assert "EXCEEDED_ID_LIMIT" in str(too_many.value)
        answer = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
            {"attributes": {"type": "Lead"}, "id": ids[0], "Title": "Changed"},
            {"attributes": {"type": "Lead"}, "id": ids[1], "Status": "Not a status"}]})
        assert [r["success"] for r in answer] == [False, False]
        assert app.org.records["Lead"][ids[0]]["Title"] != "Changed"


def test_record_data_cannot_change_a_query() -> None:
    nasty = ["o'brien", "x' OR Id != '", "\\' OR '1'='1", "a\\", "WHERE LIMIT ORDER BY", "'; DELETE", "\n' OR"]
    for value in nasty:
        query = parse(f"SELECT Id FROM Lead WHERE Email = {quote(value)} AND IsDeleted = false")
        record = {"Id": "1", "Email": value, "IsDeleted": False}
        other = {"Id": "2", "Email": "someone@else.io", "IsDeleted": False}
        assert query.where is not None
        assert query.where(record) and not query.where(other), value
    with salesforce(5) as (app, url):
        lead_id = next(iter(app.org.records["Lead"]))
        app.org.records["Lead"][lead_id]["Email"] = "x' OR Email != '"
        conn = sf_connector(url)
        injected = "x' OR Email != '"
        hit = [r["Id"] for page in conn._soql("probe", "SELECT Id FROM Lead WHERE Email = " + quote(injected))
               for r in page]
        assert hit == [lead_id]  # only the record whose email is that very text, not every record


def test_malformed_soql_is_refused_like_salesforce() -> None:
    with salesforce(1) as (_app, url):
        conn = sf_connector(url)
        with pytest.raises(FatalError, match="MALFORMED_QUERY"):
            list(conn._soql("bad", "SELECT Id FROM Lead WHERE"))


def test_undocumented_qualified_is_reverted_to_the_previous_status() -> None:
    with salesforce(12, shape="rich") as (app, url):
        conn = sf_connector(url)
        contacts, _ = pull_all(conn)
        asked = next(c for c in contacts if c.stage == "sql" and not c.bant.get("budget"))
        asked.previous_lead_status = "in_progress"
        decision = decide(asked, [], DEFS, SEED_NOW)
        assert decision.target_stage is not Stage.SQL
        change = conn.changes(asked, decision.writes)
        assert change is not None and change.properties["Status"] == "Working - Contacted"
        assert all(r.ok for r in conn.write([change]))
        lead = app.org.records["Lead"][asked.id]
        assert lead["Status"] == "Working - Contacted" and "budget" in lead["CRMSync_SQL_Blocked_Reason__c"]


def test_tasks_are_created_once() -> None:
    with salesforce(2) as (app, url):
        lead_id = next(iter(app.org.records["Lead"]))
        conn = sf_connector(url)
        task = OwnerTask(lead_id, None, "Document BANT", "budget missing", "key-1",
                         due_at=SEED_NOW + timedelta(days=1))
        assert conn.create_tasks([task])[0].ok
        assert conn.create_tasks([task])[0].ok
        created = [t for t in app.org.records["Task"].values() if t.get("CRMSync_Task_Key__c") == "key-1"]
        assert len(created) == 1 and created[0]["WhoId"] == lead_id


def test_setup_is_idempotent_and_doctor_checks_fields_and_statuses() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        conn = sf_connector(url)
        before = {c.name: c for c in conn.doctor()}
        assert before["salesforce login"].ok and not before["salesforce fields"].ok
        created = conn.setup()
        assert "Lead.BANT_Budget__c" in created and "Activity.CRMSync_Task_Key__c" in created
        assert conn.setup() == []
        assert all(c.ok for c in conn.doctor())
        app.org.records["LeadStatus"] = {k: v for k, v in app.org.records["LeadStatus"].items()
                                         if v["MasterLabel"] != "Working - Contacted"}
        drifted = {c.name: c for c in conn.doctor()}
        assert not drifted["salesforce Lead Status values"].ok and "Working - Contacted" in drifted[
            "salesforce Lead Status values"].detail


def test_a_second_decision_on_written_values_changes_nothing() -> None:
    with salesforce(80) as (_app, url):
        conn = sf_connector(url)
        contacts, _ = pull_all(conn)
        activities = conn.activities([c.id for c in contacts])
        writes = [w for c in contacts if (w := conn.changes(c, decide(c, activities[c.id], DEFS, SEED_NOW).writes))]
        assert writes and all(r.ok for r in conn.write(writes))
        again, _ = pull_all(conn)
        assert [c.id for c in again if conn.changes(c, decide(c, activities[c.id], DEFS, SEED_NOW).writes)] == []


def test_a_large_backfill_uses_bulk_api_2() -> None:
    """CI: 12,000 leads over a threshold of 10,000 (two result pages); nightly: 100,000 over the default."""
    leads = scaled(ci=12_000, nightly=100_000)
    with salesforce(leads) as (app, url):
        conn = sf_connector(url)
        conn.bulk_wait = 0
        conn.bulk_threshold = min(conn.bulk_threshold, leads - 2_000)
        contacts: list = []  # type: ignore[type-arg]
        pages = []
        for page in conn.pull_changed(EPOCH, LATER, backfill=True):
            assert page.errors == []
            contacts += page.contacts
            pages.append(page.contacts)
        assert len(contacts) == leads and len({c.id for c in contacts}) == leads
        assert app.call_counts() == {"oauth.token": 1, "query": 1 + stamp_queries(pages), "bulk2.create": 1,
                                     "bulk2.status": 2, "bulk2.results": math.ceil(leads / BULK_PAGE),
                                     "describe": 1}
        sample = [c.id for c in contacts[:50]] + [c.id for c in contacts[-50:]]
        by_rest = {c.id: c for c in conn.read(sample).contacts}
        by_bulk = {c.id: c for c in contacts if c.id in by_rest}
        assert by_bulk == by_rest  # the CSV rows map to the same contacts as the REST records


def test_small_backfills_and_incremental_pulls_stay_on_rest() -> None:
    with salesforce(300) as (app, url):
        conn = sf_connector(url)
        pull_all(conn)
        list(conn.pull_changed(EPOCH, LATER, backfill=True))
        assert not any(name.startswith("bulk2") for name in app.call_counts())


def test_password_flow_single_patch_and_limit_header() -> None:
    from pydantic import SecretStr

    from crmsync.crms.salesforce.connector import SalesforceConnector
    from crmsync.crms.salesforce.settings import SalesforceSettings

    with salesforce(3) as (app, url):
        app.org.credentials = {"username": "integration@acme.test", "password": "pw" + "TOKEN"}
        settings = SalesforceSettings(login_url=url, instance_url=url, username="integration@acme.test",
                                      password=SecretStr("pw"), security_token=SecretStr("TOKEN"),
                                      client_id="app", client_secret=SecretStr("s"))
        conn = SalesforceConnector(settings, DEFS.definitions.mappings.salesforce)
        lead_id = next(iter(app.org.records["Lead"]))
        status = conn._call("update one", lambda sf: sf.Lead.update(lead_id, {"Title": "VP Revenue"}))
        assert status == 204 and app.org.records["Lead"][lead_id]["Title"] == "VP Revenue"
        conn._call("probe", lambda sf: sf.query("SELECT Id FROM Lead LIMIT 1"))
        assert conn.sf is not None and conn.sf.api_usage["api-usage"].used == app.org.api_used
        wrong = SalesforceConnector(settings.model_copy(update={"password": SecretStr("nope")}),
                                    DEFS.definitions.mappings.salesforce)
        with pytest.raises(AuthError):
            wrong._call("probe", lambda sf: sf.query("SELECT Id FROM Lead LIMIT 1"))
