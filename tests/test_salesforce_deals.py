"""Opportunities as a deal stream, and converted leads that keep feeding their record: a rep converts
leads, creates and closes opportunities, adds contact roles and logs calls through simple-salesforce;
the connector reads the sandbox over real HTTP."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.connectors.base import ObjectStreams
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.model import Deal
from tests.hubspot_fixtures import SEED_NOW
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_salesforce_conversion import a_lead_with_a_call, post
from tests.test_salesforce_guard import rep_client

SINCE, UNTIL = SEED_NOW - timedelta(hours=1), SEED_NOW + timedelta(seconds=1)


def deals(conn: SalesforceConnector, after: str | None = None) -> tuple[dict[str, Deal], list[str], list[str]]:
    """Every deal of the window by id, the errors' record ids and the deleted ids."""
    found: dict[str, Deal] = {}
    errors: list[str] = []
    deleted: list[str] = []
    for page in conn.pull_deals(SINCE, UNTIL, after):
        found |= {d.id: d for d in page.objects}
        errors += [e.record_id for e in page.errors]
        deleted += page.deleted
    return found, errors, deleted


def settings(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(f"{url}/__sandbox/settings", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def unconverted(app: object, count: int) -> list[str]:
    leads = app.org.records["Lead"]  # type: ignore[attr-defined]
    return [rid for rid, lead in leads.items() if not lead["IsConverted"]][:count]


def test_opportunities_are_a_deal_stream_linked_to_their_leads() -> None:
    with salesforce(20) as (app, url):
        conn = sf_connector(url)
        assert isinstance(conn, ObjectStreams)
        first, second = unconverted(app, 2)
        one = post(url, f"/__sandbox/leads/{first}/convert")
        two = post(url, f"/__sandbox/leads/{second}/convert")
        rep = rep_client(app, conn)
        # the rep opens a second deal and gives the second lead's contact a role on it, then closes the first
        extra = rep.Opportunity.create({"Name": "Upsell", "StageName": "Qualification", "Amount": 1200.5,
                                        "CloseDate": "2026-12-31", "AccountId": one["ConvertedAccountId"]})["id"]
        rep.OpportunityContactRole.create({"OpportunityId": extra, "ContactId": two["ConvertedContactId"],
                                           "Role": "Decision Maker"})
        rep.Opportunity.update(one["ConvertedOpportunityId"], {"StageName": "Closed Won", "Amount": 5000})
        found, errors, deleted = deals(conn)
        assert errors == [] and deleted == []
        won, upsell = found[one["ConvertedOpportunityId"]], found[extra]
        assert won.contact_ids == (first,) and won.is_closed and won.is_won and won.amount == 5000
        assert won.stage == "Closed Won" and won.crm == "salesforce" and won.currency is None
        assert found[two["ConvertedOpportunityId"]].contact_ids == (second,)
        assert upsell.contact_ids == (second,) and not upsell.is_closed and not upsell.is_won
        assert (upsell.name, upsell.amount, upsell.close_date) == ("Upsell", 1200.5, "2026-12-31")
        assert upsell.created_at is not None and upsell.updated_at is not None and upsell.owner_id is None
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
            rep.Opportunity.update(extra, {"IsWon": True})  # set by the stage only


def test_the_deal_window_resumes_after_a_page_and_lists_deletes_and_unmappable_ones() -> None:
    with salesforce(0) as (app, url):
        org = app.org
        ids = [org.create("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting", "CloseDate": "2026-12-01"})["Id"]
               for i in range(2100)]
        bad = org.create("Opportunity", {"Name": "bad", "StageName": "Prospecting", "CloseDate": "soon"})["Id"]
        org.delete("Opportunity", ids[5])
        conn = sf_connector(url)
        pages = list(conn.pull_deals(SINCE, UNTIL))
        assert len(pages) == 2 and pages[0].resume_key == sorted([*ids, bad])[1999]
        assert [e.record_id for p in pages for e in p.errors] == [bad] and pages[0].deleted == [ids[5]]
        rest, _, _ = deals(conn, after=pages[0].resume_key)
        assert set(rest) == set(sorted(ids)[2000:]) - {ids[5]}


def test_currency_is_read_only_from_a_multicurrency_org() -> None:
    with salesforce(0) as (app, url):
        rid = app.org.create("Opportunity", {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-12-01"})["Id"]
        plain = sf_connector(url)
        assert deals(plain)[0][rid].currency is None  # the query has no CurrencyIsoCode (the org would refuse it)
        settings(url, {"multicurrency": True})
        app.org.records["Opportunity"][rid]["CurrencyIsoCode"] = "EUR"
        assert deals(sf_connector(url))[0][rid].currency == "EUR"


def test_conversion_moves_the_activities_and_gives_the_contact_the_primary_role() -> None:
    with salesforce(20) as (app, url):
        rid = a_lead_with_a_call(app)
        tasks = [tid for tid, t in app.org.records["Task"].items() if t["WhoId"] == rid]
        answer = post(url, f"/__sandbox/leads/{rid}/convert")
        opportunity, contact = answer["ConvertedOpportunityId"], answer["ConvertedContactId"]
        assert all(app.org.records["Task"][t]["WhatId"] == opportunity for t in tasks)
        roles = [r for r in app.org.records["OpportunityContactRole"].values() if r["OpportunityId"] == opportunity]
        assert [(r["ContactId"], r["IsPrimary"], r["Role"]) for r in roles] == [(contact, True, None)]


def test_a_call_on_the_converted_contact_feeds_the_lead_and_its_stream() -> None:
    with salesforce(20) as (app, url):
        rid = unconverted(app, 1)[0]
        contact = post(url, f"/__sandbox/leads/{rid}/convert")["ConvertedContactId"]
        conn = sf_connector(url)
        rep = rep_client(app, conn)
        call = rep.Task.create({"WhoId": contact, "Subject": "Kick-off call", "TaskSubtype": "Call", "Type": "Call",
                                "Status": "Completed", "ActivityDate": SEED_NOW.date().isoformat()})["id"]
        fresh = sf_connector(url)  # has read no lead: finds the converted contact with one query
        assert call in [a.id for a in fresh.activities([rid])[rid]]
        conn.read([rid])
        before = conn.calls
        assert call in [a.id for a in conn.activities([rid])[rid]]
        assert conn.calls - before == 3  # tasks, events, campaign members: the contact came with the read
        assert rid in conn.touched({"Task": SINCE}, UNTIL)
