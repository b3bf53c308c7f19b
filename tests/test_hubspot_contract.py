"""Contract tests: the real hubspot-api-client and our connector against the HubSpot sandbox."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from urllib3.util.retry import Retry

from crmsync.crms.hubspot.connector import HISTORY_BATCH, AuthError
from crmsync.crms.hubspot.sandbox import seed_portal
from crmsync.crms.hubspot.sandbox.api import SEARCH_CAP
from crmsync.errors import RetriableError
from crmsync.model import OwnerTask, Stage, WriteBack
from crmsync.rules import decide
from tests.builders import EPOCH, LATER, scaled
from tests.hubspot_fixtures import DEFS, SEED_NOW, TOKEN, FakeClock, connector, fast_retry, hubspot


def pull_all(conn, since=EPOCH, until=LATER):  # type: ignore[no-untyped-def]
    contacts, errors = [], []
    for page in conn.pull_changed(since, until):
        contacts += page.contacts
        errors += page.errors
    return contacts, errors


def raw_client(url: str, token: str = TOKEN) -> HubSpot:
    return HubSpot(access_token=token, host=url, retry=Retry(total=0))


def test_pull_maps_every_contact_with_the_minimum_calls() -> None:
    with hubspot(450) as (app, url):
        conn = connector(url)
        contacts, errors = pull_all(conn)
        assert len(contacts) == 450 and errors == []
        assert app.call_counts() == {"objects.search": math.ceil(450 / 200)}
        sql = [c for c in contacts if c.stage == "sql"]
        assert sql and all(c.bant.get("need") is not None for c in sql[:1])
        first = next(c for c in contacts if c.email == app.portal.records["contacts"][c.id].properties["email"])
        assert first.employees in {"1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000-5000",
                                   "5000-10000", "10000+", None}


def test_time_window_bounds_are_respected() -> None:
    with hubspot(50) as (app, url):
        record = app.portal.records["contacts"]
        inside = sorted(record.values(), key=lambda r: r.updated_at)[25]
        contacts, _ = pull_all(connector(url), since=inside.updated_at, until=inside.updated_at + timedelta(seconds=1))
        assert inside.id in {c.id for c in contacts}
        assert all(inside.updated_at <= c.updated_at < inside.updated_at + timedelta(seconds=1) for c in contacts)


def test_more_than_10000_contacts_modified_in_the_same_hour_are_all_pulled() -> None:
    """More contacts in one window than search answers for one query are all pulled, with no page past
    the cap. By default the sandbox's cap is lowered to 1,000 with 1,200 contacts: crmsync pages by id,
    never by `after`, so the cap's value does not matter to it, and a client paging by `after` gets the
    400 past 1,000 just as past 10,000. Nightly: 25,000 contacts against HubSpot's own 10,000."""
    cap = scaled(ci=1_000, nightly=SEARCH_CAP)
    count = scaled(ci=1_200, nightly=25_000)
    assert count > cap
    with hubspot(search_rate_limit=None, search_cap=cap) as (app, url):  # search pacing: test_hubspot_batches
        same_time = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
        seed_portal(app.portal, count, now=SEED_NOW, modified_at=same_time)
        conn = connector(url, search_per_second=None)
        hour = datetime(2026, 11, 25, 10, tzinfo=UTC)
        contacts, errors = pull_all(conn, hour, hour + timedelta(hours=1))
        assert errors == []
        assert len({c.id for c in contacts}) == count
        assert app.call_counts() == {"objects.search": count // 200}  # no page past the cap, no extra call


def test_paging_past_10000_results_fails_as_the_real_api_does() -> None:
    with hubspot(10) as (_app, url):
        client = raw_client(url)
        with pytest.raises(Exception) as caught:
            client.crm.contacts.search_api.do_search(public_object_search_request={
                "filterGroups": [], "sorts": [], "properties": [], "limit": 100, "after": "10000"})
        assert caught.value.status == 400  # type: ignore[attr-defined]
        with pytest.raises(Exception) as too_big:
            client.crm.contacts.search_api.do_search(public_object_search_request={
                "filterGroups": [], "sorts": [], "properties": [], "limit": 201, "after": "0"})
        assert too_big.value.status == 400  # type: ignore[attr-defined]


def test_wrong_token_is_an_auth_error() -> None:
    with hubspot(5) as (_app, url), pytest.raises(AuthError, match="HTTP 401"):
        pull_all(connector(url, token="pat-wrong"))


def test_429_with_retry_after_is_honoured() -> None:
    clock = FakeClock()
    with hubspot(600, rate_limit="2/10s") as (app, url):
        assert app.limiter is not None
        app.limiter.clock = clock
        conn = connector(url, retry=fast_retry(clock))
        contacts, _ = pull_all(conn)
        assert len(contacts) == 600
        assert clock.sleeps and all(s >= 1 for s in clock.sleeps)  # waited as told, not the short backoff
        statuses = {(row["endpoint"], row["status"]) for row in app.call_counts_by_status()}
        assert ("objects.search", 429) in statuses


def test_rate_limit_headers_are_sent() -> None:
    with hubspot(3, rate_limit="100/10s") as (_app, url):
        client = raw_client(url)
        _, status, headers = client.crm.contacts.basic_api.get_page_with_http_info(limit=1)
        assert status == 200
        assert headers["X-HubSpot-RateLimit-Max"] == "100"
        assert int(headers["X-HubSpot-RateLimit-Remaining"]) == 99


def test_server_errors_and_timeouts_are_retried() -> None:
    with hubspot(1000, faults="500:0.3,503:0.2,timeout:0.1", seed=3, timeout_hang_seconds=0.3) as (app, url):
        conn = connector(url, timeout=0.2)
        contacts, errors = pull_all(conn)
        assert len(contacts) == 1000 and errors == []
        assert app.faults.injected  # faults happened, and the pull still completed


def test_retries_give_up_with_a_retriable_error() -> None:
    with hubspot(5, faults="503:1.0") as (_app, url), pytest.raises(RetriableError, match="HTTP 503"):
        pull_all(connector(url, retry=fast_retry(attempts=3)))


def test_batch_update_207_reports_per_record_errors() -> None:
    with hubspot(3) as (app, url):
        conn = connector(url)
        ids = list(app.portal.records["contacts"])
        results = conn.write([
            WriteBack(ids[0], {"crmsync_fit_reasons": "ok"}),
            WriteBack(ids[1], {"hs_lead_status": "NOT_A_STATUS"}),
            WriteBack("999999", {"crmsync_fit_reasons": "x"}),
        ])
        by_id = {r.record_id: r for r in results}
        assert by_id[ids[0]].ok
        assert not by_id[ids[1]].ok and not by_id[ids[1]].retriable and "NOT_A_STATUS" in by_id[ids[1]].error
        assert not by_id["999999"].ok and "OBJECT_NOT_FOUND" in by_id["999999"].error
        assert app.portal.records["contacts"][ids[0]].properties["crmsync_fit_reasons"] == "ok"


def test_injected_partial_failures_are_retriable() -> None:
    with hubspot(4, faults="207:1.0") as (app, url):
        ids = list(app.portal.records["contacts"])
        results = connector(url).write([WriteBack(i, {"crmsync_sla_state": "on_track"}) for i in ids])
        assert [r.ok for r in results] == [True, False, True, False]
        assert all(r.retriable for r in results if not r.ok)


def test_batch_update_refuses_more_than_100_inputs() -> None:
    with hubspot(1) as (_app, url):
        client = raw_client(url)
        with pytest.raises(Exception) as caught:
            client.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
                "inputs": [{"id": str(i), "properties": {}} for i in range(101)]})
        assert caught.value.status == 400  # type: ignore[attr-defined]


def test_writes_go_in_batches_of_100() -> None:
    with hubspot(250) as (app, url):
        ids = list(app.portal.records["contacts"])
        results = connector(url).write([WriteBack(i, {"crmsync_sla_state": "on_track"}) for i in ids])
        assert all(r.ok for r in results) and len(results) == 250
        assert app.call_counts() == {"objects.batch_update": 3}


def test_lifecycle_only_moves_forward_unless_cleared() -> None:
    with hubspot(1) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        client = raw_client(url)
        update = client.crm.contacts.basic_api.update
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": "salesqualifiedlead"}})
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": "marketingqualifiedlead"}})
        assert app.portal.records["contacts"][cid].properties["lifecyclestage"] == "salesqualifiedlead"
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": ""}})
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": "marketingqualifiedlead"}})
        assert app.portal.records["contacts"][cid].properties["lifecyclestage"] == "marketingqualifiedlead"


def test_every_change_bumps_lastmodifieddate() -> None:
    with hubspot(1) as (app, url):
        record = next(iter(app.portal.records["contacts"].values()))
        before = record.properties["lastmodifieddate"]
        app.portal.clock = lambda: SEED_NOW + timedelta(hours=1)
        raw_client(url).crm.contacts.basic_api.update(record.id, simple_public_object_input={
            "properties": {"jobtitle": "VP of Revenue"}})
        assert record.properties["lastmodifieddate"] > before
        assert record.properties["hs_lastmodifieddate"] == record.properties["lastmodifieddate"]


def test_undocumented_sql_is_reverted_with_clear_then_set() -> None:
    """A rep sets SQL with budget blank; the decision reverts it and the connector clears then sets."""
    with hubspot(12) as (app, url):
        conn = connector(url)
        contacts, _ = pull_all(conn)
        missing_budget = next(c for c in contacts if c.bant.get("budget") in (None, "") and c.stage == "sql")
        decision = decide(missing_budget, [], DEFS, SEED_NOW)
        assert decision.target_stage is not Stage.SQL
        change = conn.changes(missing_budget, decision.writes)
        assert change is not None and change.properties["lifecyclestage"] != "salesqualifiedlead"
        app.reset_counts()
        assert all(r.ok for r in conn.write([change]))
        # the portal's stage order (read once per connector), then clear, then set
        assert app.call_counts() == {"properties.get": 1, "objects.batch_update": 2}
        stored = app.portal.records["contacts"][missing_budget.id].properties
        assert stored["lifecyclestage"] == change.properties["lifecyclestage"]
        assert "budget" in stored["crmsync_sql_blocked_reason"]


def test_a_second_decision_on_written_values_changes_nothing() -> None:
    with hubspot(40) as (_app, url):
        conn = connector(url)
        contacts, _ = pull_all(conn)
        writes = []
        for contact in contacts:
            change = conn.changes(contact, decide(contact, [], DEFS, SEED_NOW).writes)
            if change:
                writes.append(change)
        assert writes and all(r.ok for r in conn.write(writes))
        again, _ = pull_all(conn)
        leftovers = [c.id for c in again if conn.changes(c, decide(c, [], DEFS, SEED_NOW).writes)]
        assert leftovers == []


def test_unmappable_records_are_record_errors_and_the_pull_goes_on() -> None:
    with hubspot(20) as (app, url):
        records = list(app.portal.records["contacts"].values())
        records[3].properties["hs_lead_status"] = "OPEN_DEAL"  # a real HubSpot value the definitions don't map
        records[7].properties["lifecyclestage"] = "custom_stage_1234"  # portals can add lifecycle stages
        contacts, errors = pull_all(connector(url))
        assert len(contacts) == 18
        reasons = {e.record_id: e.reason for e in errors}
        assert "OPEN_DEAL" in reasons[records[3].id]
        assert "custom_stage_1234" in reasons[records[7].id]


def test_mapping_refuses_a_record_without_id_or_with_a_malformed_date() -> None:
    from crmsync.crms.hubspot.mapping import HubSpotMapping
    from crmsync.errors import RecordError

    mapping = HubSpotMapping(DEFS.definitions.mappings.hubspot)
    with pytest.raises(RecordError, match="without an id"):
        mapping.to_contact(None, {"email": "a@b.co"})
    with pytest.raises(RecordError, match="lastmodifieddate 'yesterday-ish' is not a date"):
        mapping.to_contact("12", {"lastmodifieddate": "yesterday-ish"})


def test_activities_come_from_batch_calls_only() -> None:
    with hubspot(150, tier="enterprise") as (app, url):
        conn = connector(url)
        contacts, _ = pull_all(conn)
        conn.capabilities()  # found once per portal (one event-types call), not part of a page's reads
        app.reset_counts()
        ids = [c.id for c in contacts]
        found = conn.activities(ids)
        calls = app.call_counts()
        linked = {t: sum(len(v) for k, v in app.portal.associations[t].items() if k in ids)
                  for t in ("calls", "emails", "meetings")}
        minimum = 3 * math.ceil(len(ids) / 1000) + sum(math.ceil(n / 100) for n in linked.values())
        minimum += math.ceil(len(ids) / HISTORY_BATCH)  # email open/click history, 50 contacts a read
        assert sum(calls.values()) == minimum
        engagements = [a for acts in found.values() for a in acts if a.kind in ("call", "email", "meeting")]
        assert len(engagements) == sum(linked.values())
        owner_calls = [a for acts in found.values() for a in acts if a.kind == "call"]
        assert owner_calls and all(a.by_owner for a in owner_calls)


def test_events_stream_page_views_and_forms() -> None:
    with hubspot(60, tier="enterprise") as (app, url):
        events = list(connector(url).events(EPOCH, LATER))
        assert len(events) == len(app.portal.events)
        kinds = {a.kind for _, a in events}
        assert kinds == {"page_view", "form_submission"}
        demo = [a for _, a in events if a.detail == "Demo request"]
        assert demo and all(a.kind == "form_submission" for a in demo)


def test_owner_tasks_are_created_and_associated() -> None:
    with hubspot(2) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        results = connector(url).create_tasks([OwnerTask(cid, "7001", "Document BANT", "budget missing", "k-1")])
        assert results[0].ok
        task = next(iter(app.portal.records["tasks"].values()))
        assert task.properties["hs_task_subject"] == "Document BANT"
        assert task.properties["crmsync_task_key"] == "k-1"
        assert app.portal.associations["tasks"][cid] == [task.id]
        again = connector(url).create_tasks([OwnerTask(cid, "7001", "Document BANT", "budget missing", "k-1")])
        assert again[0].ok and len(app.portal.records["tasks"]) == 1  # the key already exists: not created twice


def test_setup_is_idempotent_and_doctor_reports_what_is_missing() -> None:
    with hubspot(0, crmsync_properties=False) as (app, url):
        conn = connector(url)
        before = {c.name: c for c in conn.doctor()}
        assert before["hubspot token"].ok
        assert not before["hubspot properties"].ok and "crmsync setup" in before["hubspot properties"].detail
        created = conn.setup()
        assert "group crmsync" in created and "crmsync_bant_budget" in created and "crmsync_fit" in created
        assert "task property crmsync_task_key" in created
        assert conn.setup() == []
        after = {c.name: c for c in conn.doctor()}
        assert all(check.ok for check in after.values()), after
        app.portal.properties["contacts"]["hs_lead_status"]["options"] = [
            o for o in app.portal.properties["contacts"]["hs_lead_status"]["options"] if o["value"] != "BAD_TIMING"]
        drifted = {c.name: c for c in conn.doctor()}
        assert not drifted["hubspot hs_lead_status values"].ok
        assert "BAD_TIMING" in drifted["hubspot hs_lead_status values"].detail


def test_duplicate_property_is_refused_like_hubspot() -> None:
    with hubspot(0) as (_app, url):
        client = raw_client(url)
        spec = {"name": "crmsync_fit_reasons", "label": "x", "type": "string", "fieldType": "text",
                "groupName": "crmsync"}
        with pytest.raises(Exception) as caught:
            client.crm.properties.core_api.create("contacts", property_create=spec)
        assert caught.value.status == 409  # type: ignore[attr-defined]
