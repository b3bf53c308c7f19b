"""Activity freshness on Salesforce: a lead's SystemModstamp moves only with its LastActivityDate, so a
second call on the same day, or a campaign response, leaves the lead as it was. Each pass (at most every
`activity_poll_seconds`) reads the Tasks, Events and CampaignMembers changed since its cursors and
re-decides their leads. A rep acts through simple-salesforce; the store is real (SQLite)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.sandbox import SalesforceApp
from crmsync.crms.salesforce.sandbox.org import Org, sf_time
from crmsync.errors import FatalError
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_salesforce_guard import rep_client

STREAMS = ("salesforce", ["contacts:Task", "contacts:Event", "contacts:CampaignMember"])


def at(minutes: float) -> datetime:
    return SEED_NOW + timedelta(minutes=minutes)


def run(store: Store, conn: SalesforceConnector, app: SalesforceApp, minutes: float) -> Any:
    """A pass at SEED_NOW + minutes (the org's clock one minute before: what people did came first)."""
    app.org.clock = lambda: at(minutes - 1)
    report = SyncPass(store, conn, DEFS, clock=lambda: at(minutes)).run()
    assert report.outcome == "ok"
    return report


def clocks(store: Store, lead_id: str) -> dict[str, str]:
    return {c["name"]: c["state"] for c in store.records("salesforce", [lead_id])[lead_id]["slas"] or []}


def open_first_contact(store: Store, app: SalesforceApp) -> str:
    """A lead whose first-contact clock is open (no call or email since it became MQL), not converted,
    with no activity today."""
    today = SEED_NOW.date().isoformat()
    ids = [rid for rid, lead in app.org.records["Lead"].items()
           if not lead["IsConverted"] and str(lead.get("LastActivityDate") or "") < today]
    return next(rid for rid in ids if clocks(store, rid).get("first_contact") in ("on_track", "at_risk", "breached"))


# SQLite only (the streams are the connector's); PostgreSQL's cursors, activities: test_stream_cursors, test_store
@SQLITE_ONLY
def test_a_second_call_on_the_same_day_is_seen_and_meets_first_contact(database_url: str) -> None:
    with salesforce(40) as (app, url):
        store, conn = Store.open(database_url), sf_connector(url)
        first = run(store, conn, app, 1)
        assert first.counts["pulled"] == 40
        assert all(store.cursor(STREAMS[0], name) == at(1) for name in STREAMS[1])  # set, nothing queried
        lead_id = open_first_contact(store, app)
        lead = app.org.records["Lead"]
        rep = rep_client(app, conn)

        app.org.clock = lambda: at(2)
        rep.Event.create({"WhoId": lead_id, "Subject": "Coffee at the fair", "StartDateTime": sf_time(at(2))})
        assert lead[lead_id]["LastActivityDate"] == SEED_NOW.date().isoformat()
        assert lead[lead_id]["SystemModstamp"] == sf_time(at(2))  # LastActivityDate moved: the lead moved
        run(store, conn, app, 3)
        assert clocks(store, lead_id)["first_contact"] != "met"  # a meeting is no first contact attempt

        app.org.clock = lambda: at(4)
        rep.Task.create({"WhoId": lead_id, "Subject": "Intro call", "Type": "Call", "TaskSubtype": "Call",
                         "Status": "Completed", "ActivityDate": SEED_NOW.date().isoformat()})
        assert lead[lead_id]["SystemModstamp"] == sf_time(at(2))  # same day: the lead did not move
        app.reset_counts()
        third = run(store, conn, app, 5)
        assert clocks(store, lead_id)["first_contact"] in ("met", "met_late")
        assert third.counts["stored"] == 1  # that lead's new decision, and no other
        assert lead[lead_id]["CRMSync_SLA_State__c"] == store.records("salesforce", [lead_id])[lead_id]["sla_state"]
        assert all(store.cursor(STREAMS[0], name) == at(5) for name in STREAMS[1])


# SQLite only (the streams are the connector's); PostgreSQL's cursors, activities: test_stream_cursors, test_store
@SQLITE_ONLY
def test_a_campaign_response_after_the_leads_last_change_is_seen(database_url: str) -> None:
    with salesforce(40) as (app, url):
        store, conn = Store.open(database_url), sf_connector(url)
        run(store, conn, app, 1)
        members = {m["LeadId"] for m in app.org.records["CampaignMember"].values()}
        lead_id = next(rid for rid, lead in app.org.records["Lead"].items()
                       if rid not in members and not lead["IsConverted"])
        stamp = app.org.records["Lead"][lead_id]["SystemModstamp"]
        score = app.org.records["Lead"][lead_id].get("CRMSync_Engagement_Score__c")
        decisions = len(store.decisions_for("salesforce", lead_id))
        campaign = app.org.new_id("Campaign")  # the marketing team's web form, already in the org
        app.org.records["Campaign"][campaign] = {"Id": campaign, "Name": "Pricing page form", "Type": "Web Form"}

        app.org.clock = lambda: at(2)
        rep_client(app, conn).CampaignMember.create({"LeadId": lead_id, "CampaignId": campaign,
                                                     "Status": "Responded", "HasResponded": True})
        assert app.org.records["Lead"][lead_id]["SystemModstamp"] == stamp  # a response does not move the lead
        run(store, conn, app, 3)
        assert len(store.decisions_for("salesforce", lead_id)) == decisions + 1
        assert app.org.records["Lead"][lead_id]["CRMSync_Engagement_Score__c"] > (score or 0)


# SQLite only (the streams are the connector's); PostgreSQL's cursors, activities: test_stream_cursors, test_store
@SQLITE_ONLY
def test_idle_passes_cost_one_call_and_two_when_the_streams_are_due(database_url: str) -> None:
    with salesforce(30) as (app, url):
        store, conn = Store.open(database_url), sf_connector(url)
        for minutes in (1, 3, 10):  # crmsync's own writes come back and settle; the overlap (5 min) passes
            run(store, conn, app, minutes)
        app.reset_counts()
        due = run(store, conn, app, 20)  # more than activity_poll_seconds (60) since the streams' cursors
        # the leads' poll, the activity streams (composite) and the Opportunities (the deal stream, read with them)
        assert app.call_counts() == {"queryAll": 2, "composite": 1} and due.counts["pulled"] == 0
        app.reset_counts()
        run(store, conn, app, 20.5)  # 30 s later: only the leads' poll
        assert app.call_counts() == {"queryAll": 1}


# SQLite only (the streams are the connector's); PostgreSQL's cursors, activities: test_stream_cursors, test_store
@SQLITE_ONLY
def test_an_activity_that_changes_nothing_writes_nothing(database_url: str) -> None:
    with salesforce(30) as (app, url):
        store, conn = Store.open(database_url), sf_connector(url)
        for minutes in (1, 3, 10):
            run(store, conn, app, minutes)
        lead_id = next(rid for rid, lead in app.org.records["Lead"].items() if not lead["IsConverted"])
        decisions = len(store.decisions_for("salesforce", lead_id))
        app.org.clock = lambda: at(11)
        rep_client(app, conn).Task.create({"WhoId": lead_id, "Subject": "Send the deck", "TaskSubtype": "Task",
                                           "Status": "Not Started"})  # a to-do: no contact attempt
        app.reset_counts()
        report = run(store, conn, app, 13)
        assert report.counts["pulled"] == 1 and report.counts["stored"] == 0
        assert len(store.decisions_for("salesforce", lead_id)) == decisions
        assert not {"composite.update", "composite.create"} & set(app.call_counts())


def test_the_streams_go_in_one_composite_call_and_a_refused_subrequest_is_classified() -> None:
    with salesforce(30) as (app, url):
        conn = sf_connector(url)
        since = dict.fromkeys(("Task", "Event", "CampaignMember"), SEED_NOW - timedelta(days=400))
        everyone = conn.touched(since, at(1))
        seeded = {a["WhoId"] for name in ("Task", "Event") for a in app.org.records[name].values()}
        seeded |= {m["LeadId"] for m in app.org.records["CampaignMember"].values()}
        assert everyone == {rid for rid in seeded if rid.startswith("00Q")} and everyone
        assert {k: v for k, v in app.call_counts().items() if k != "oauth.token"} == {"composite": 1}
        app.reset_counts()
        assert conn.touched({}, at(1)) == set() and app.call_counts() == {}
        del app.org.fields["CampaignMember"]  # an org where the integration user cannot query campaigns
        with pytest.raises(FatalError, match="INVALID_TYPE"):
            conn.touched(since, at(1))


@given(st.lists(st.tuples(st.sampled_from(["call", "to-do", "meeting", "response"]), st.integers(-3, 3)),
                max_size=8))
@settings(max_examples=60, deadline=None)
def test_a_lead_moves_only_when_its_last_activity_date_does(steps: list[tuple[str, int]]) -> None:
    """The sandbox's rule, for any sequence: LastActivityDate is the latest closed task's due date or
    event's start date; the lead's SystemModstamp moves exactly when it does, LastModifiedDate never."""
    org = Org(clock=lambda: SEED_NOW)
    lead = org.create("Lead", {"LastName": "Lovelace", "Company": "Analytical Engines"})
    campaign = org.new_id("Campaign")
    org.records["Campaign"][campaign] = {"Id": campaign, "Name": "Webinar", "Type": "Webinar"}
    latest = ""
    for minute, (kind, days) in enumerate(steps, start=1):
        when, day = at(minute), (SEED_NOW + timedelta(days=days)).date().isoformat()
        before = dict(lead)
        if kind == "meeting":
            org.create("Event", {"WhoId": lead["Id"], "StartDateTime": f"{day}T15:00:00.000+0000"}, at=when)
        elif kind == "response":
            org.create("CampaignMember", {"LeadId": lead["Id"], "CampaignId": campaign, "HasResponded": True}, at=when)
        else:
            org.create("Task", {"WhoId": lead["Id"], "Subject": kind, "ActivityDate": day,
                                "Status": "Completed" if kind == "call" else "Not Started"}, at=when)
        moved = kind in ("call", "meeting") and day > latest
        latest = max(latest, day) if kind in ("call", "meeting") else latest
        assert lead.get("LastActivityDate", "") == latest
        assert (lead["SystemModstamp"] != before["SystemModstamp"]) is moved
        assert lead["SystemModstamp"] == (sf_time(when) if moved else before["SystemModstamp"])
        assert lead["LastModifiedDate"] == sf_time(SEED_NOW)
