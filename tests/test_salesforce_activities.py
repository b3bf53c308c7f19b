"""What counts as a person's activity on a Salesforce lead: calls and emails people logged, not
crmsync's own reminders or to-dos; campaign members who responded, not those merely sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmsync.errors import QuotaError, RetriableError
from crmsync.model import OwnerTask
from crmsync.rules import decide
from tests.builders import EPOCH, LATER
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_salesforce_contract import pull_all


def test_crmsyncs_own_reminder_is_not_the_owners_call() -> None:
    with salesforce(40) as (app, url):
        conn = sf_connector(url)
        contacts, _ = pull_all(conn)
        before = conn.activities([c.id for c in contacts])
        mql = next(c for c in contacts if decide(c, before[c.id], DEFS, SEED_NOW).target_stage.value == "mql"
                   and not any(a.by_owner for a in before[c.id]))
        clocks = {s.name: s.state for s in decide(mql, before[mql.id], DEFS, SEED_NOW).slas}
        assert clocks.get("first_contact") not in (None, "met", "met_late")
        reminder = OwnerTask(mql.id, mql.owner_id, "crmsync: SLA needs attention", "first contact is due", "sla-1",
                             due_at=SEED_NOW + timedelta(hours=4))
        assert conn.create_tasks([reminder])[0].ok
        app.org.create("Task", {"WhoId": mql.id, "Subject": "Follow up", "TaskSubtype": "Task", "Status": "Open"})
        after = conn.activities([mql.id])[mql.id]
        assert after == before[mql.id]  # neither the reminder nor a to-do is a contact attempt
        assert {s.name: s.state for s in decide(mql, after, DEFS, SEED_NOW).slas} == clocks

        app.org.create("Task", {"WhoId": mql.id, "Subject": "Intro call", "TaskSubtype": "Call", "Type": "Call",
                                "Status": "Completed"}, at=SEED_NOW)
        called = conn.activities([mql.id])[mql.id]
        assert [a.kind for a in called if a.by_owner] == ["call"]


def test_only_campaign_members_who_responded_count() -> None:
    with salesforce(20) as (app, url):
        conn = sf_connector(url)
        members = list(app.org.records["CampaignMember"].values())
        assert members
        lead_id = members[0]["LeadId"]
        counted = len(conn.activities([lead_id])[lead_id])
        members[0]["HasResponded"] = False  # sent the campaign, never responded
        assert len(conn.activities([lead_id])[lead_id]) == counted - 1


def test_a_bulk_backfill_has_no_order_by_and_no_resume_keys() -> None:
    with salesforce(90) as (app, url):
        app.pk_chunk = 20  # the job's chunks come back in no order
        conn = sf_connector(url)
        conn.bulk_threshold, conn.bulk_wait = 10, 0
        pages = list(conn.pull_changed(EPOCH, LATER, backfill=True))
        (job,) = app.jobs.values()
        assert "ORDER BY" not in job["query"].upper()
        ids = [c.id for page in pages for c in page.contacts]
        assert sorted(ids) == sorted(r for r, lead in app.org.records["Lead"].items()) and ids != sorted(ids)
        assert all(page.resume_key is None for page in pages)
        rest = list(conn.pull_changed(EPOCH, LATER))  # incremental pulls stay on REST, by Id, resumable
        assert [p.resume_key for p in rest if p.contacts] == [rest[-1].contacts[-1].id]


def test_a_failed_bulk_job_is_created_again_then_reported() -> None:
    with salesforce(30) as (app, url):
        conn = sf_connector(url)
        conn.bulk_threshold, conn.bulk_wait = 10, 0
        app.org.failing_bulk_jobs = 2  # two jobs fail, the third completes
        pages = list(conn.pull_changed(EPOCH, LATER, backfill=True))
        assert sum(len(p.contacts) for p in pages) == 30 and len(app.jobs) == 3
        app.org.failing_bulk_jobs = 3
        with pytest.raises(RetriableError, match=r"failed 3 times.*QUERY_TIMEOUT"):
            list(conn.pull_changed(EPOCH, LATER, backfill=True))


def test_the_concurrent_limit_is_retried_not_taken_for_the_daily_limit() -> None:
    with salesforce(3) as (app, url):
        conn = sf_connector(url)
        app.org.concurrent_refusals = 1
        assert list(conn._soql("read", "SELECT Id FROM Lead"))  # refused once, retried: it clears in seconds
        app.org.concurrent_refusals = 100
        with pytest.raises(RetriableError, match="ConcurrentPerOrgLongTxn") as refused:
            list(conn._soql("read", "SELECT Id FROM Lead"))
        assert not isinstance(refused.value, QuotaError)  # never a pause until the quota resets


def test_the_campaign_type_gives_the_kind_through_the_mapping() -> None:
    with salesforce(30) as (app, url):
        conn = sf_connector(url)
        kinds = {c["Type"] for c in app.org.records["Campaign"].values()}
        assert {"Web Form", "Webinar"} <= kinds
        members = {m["LeadId"] for m in app.org.records["CampaignMember"].values()}
        found = {a.kind for acts in conn.activities(sorted(members)).values() for a in acts if not a.by_owner}
        assert {"form_submission", "webinar"} <= found
        for campaign in app.org.records["Campaign"].values():
            campaign["Type"] = "Other"  # an org without the mapped types
        for member in app.org.records["CampaignMember"].values():
            member["Campaign"]["Type"] = "Other"
        found = {a.kind for acts in conn.activities(sorted(members)).values() for a in acts if not a.by_owner}
        assert found == {"campaign_response"}
