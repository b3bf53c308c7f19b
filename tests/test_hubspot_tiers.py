"""A HubSpot portal of any tier: the sandbox refuses what the tier refuses, the connector lives with it.

The events API is Enterprise only (events-v3.json `x-hubspot-product-tier-requirements`); below it,
page views and form submissions come from contact property history, so demo requests still score.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from hubspot.events.exceptions import ApiException
from urllib3.util.retry import Retry

from crmsync.crms.hubspot.sandbox import HubSpotApp
from tests.builders import EPOCH, LATER
from tests.hubspot_fixtures import TOKEN, connector, hubspot, need_shared
from tests.test_cli import run
from tests.test_sync_e2e import FIT_BLOG_ONLY, IDEAL_DEMO, contact, env, post


def test_the_events_tier_is_the_one_the_spec_states() -> None:
    spec = json.loads(need_shared("specs", "hubspot", "events-v3.json").read_text())
    tiers = set(spec["info"]["x-hubspot-product-tier-requirements"].values())
    assert tiers == {"ENTERPRISE"}


@pytest.mark.parametrize("tier", ["starter", "professional"])
def test_below_enterprise_the_events_api_answers_403_as_hubspot_does(tier: str) -> None:
    with hubspot(3, tier=tier) as (_app, url):
        client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
        for call in (lambda: client.events.events_api.get_page(object_type="contact"),
                     client.events.events_api.get_types):
            with pytest.raises(ApiException) as raised:
                call()
            assert raised.value.status == 403
            body = json.loads(raised.value.body)
            assert body["category"] == "MISSING_SCOPES" and "web-analytics-api-access" in body["message"]


def test_an_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="tier must be one of"):
        HubSpotApp(tier="free")
    result = run("sandbox", "serve", "--crm", "hubspot", "--port", "0", "--contacts", "0", "--tier", "free")
    assert result.returncode == 2 and "tier must be one of starter, professional, enterprise" in result.stderr


def test_capabilities_are_found_once_and_a_missing_events_api_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    with hubspot(30, tier="professional") as (app, url):
        conn = connector(url)
        with caplog.at_level(logging.INFO, logger="crmsync.hubspot"):
            assert list(conn.events(EPOCH, LATER)) == []
            assert list(conn.events(EPOCH, LATER)) == []
            conn.activities([next(iter(app.portal.records["contacts"]))])
        calls = app.call_counts()
        assert calls.get("events.types") == 1 and "events.list" not in calls
        warnings = [r for r in caplog.records if "without the events API" in r.getMessage()]
        assert len(warnings) == 1
        tier = next(c for c in conn.doctor() if c.name == "hubspot tier")
        assert tier.ok and "Enterprise only" in tier.detail and "recent_conversion_event_name" in tier.detail


def test_on_enterprise_events_come_from_the_events_api_with_real_type_names() -> None:
    with hubspot(40, tier="enterprise") as (app, url):
        conn = connector(url)
        assert set(conn.capabilities().event_types) == {"e_visited_page", "e_form_submission_v2"}  # what it lists
        events = list(conn.events(EPOCH, LATER))
        assert {e["eventType"] for e in app.portal.events} == {"e_visited_page", "e_form_submission_v2"}
        assert len(events) == len(app.portal.events)
        assert any(a.kind == "form_submission" and a.detail == "Demo request" for _, a in events)
        tier = next(c for c in conn.doctor() if c.name == "hubspot tier")
        assert "events API available" in tier.detail


@pytest.mark.parametrize("tier", ["starter", "professional"])
def test_below_enterprise_page_views_and_forms_come_from_property_history(tier: str) -> None:
    with hubspot(40, tier=tier) as (app, url):
        conn = connector(url)
        ids = list(app.portal.records["contacts"])
        found = conn.activities(ids)
        expected: dict[str, list[tuple[str, str]]] = {}
        for event in app.portal.events:
            kind = "page_view" if event["eventType"] == "e_visited_page" else "form_submission"
            detail = event["properties"].get("hs_url") if kind == "page_view" else event["properties"]["hs_form_title"]
            expected.setdefault(event["objectId"], []).append((kind, detail))
        for cid in ids:
            got = sorted((a.kind, a.detail) for a in found[cid] if a.kind in ("page_view", "form_submission"))
            assert got == sorted(expected.get(cid, [])), cid
        assert any(a.detail == "Demo request" for a in found[ids[IDEAL_DEMO]])


@pytest.mark.parametrize("tier", ["starter", "professional", "enterprise"])
def test_a_full_sync_on_every_tier_finds_mqls_from_form_conversions(tier: str, tmp_path: Path) -> None:
    with hubspot(30, real_clock=True, tier=tier) as (app, url):
        result = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert result.returncode == 0, result.stderr
        assert contact(app, IDEAL_DEMO)["lifecyclestage"] == "marketingqualifiedlead"  # demo request form
        assert contact(app, IDEAL_DEMO)["crmsync_stage"] == "mql"
        assert contact(app, FIT_BLOG_ONLY)["lifecyclestage"] == "lead"
        calls = app.call_counts()
        assert ("events.list" in calls) is (tier == "enterprise")
        assert not any(row["status"] >= 400 for row in app.call_counts_by_status()
                       if row["endpoint"] != "events.types"), app.call_counts_by_status()


def test_a_form_submitted_after_the_first_pass_is_seen_on_the_next_one(tmp_path: Path) -> None:
    with hubspot(30, real_clock=True, tier="starter") as (app, url):
        assert run("sync", "--once", env=env(url, tmp_path / "s.db")).returncode == 0
        blog = list(app.portal.records["contacts"])[FIT_BLOG_ONLY]
        assert contact(app, FIT_BLOG_ONLY)["lifecyclestage"] == "lead"
        post(url, f"/__sandbox/contacts/{blog}/events", {"type": "form_submission", "detail": "Request a demo"})
        assert run("sync", "--once", env=env(url, tmp_path / "s.db")).returncode == 0
        assert contact(app, FIT_BLOG_ONLY)["lifecyclestage"] == "marketingqualifiedlead"


def test_the_daily_limit_is_the_tiers_and_answers_429_daily_until_the_next_day() -> None:
    assert [HubSpotApp(tier=t).daily_limit for t in ("starter", "professional", "enterprise")] == [
        250_000, 650_000, 1_000_000]
    with hubspot(1, daily_limit=3) as (app, url):
        client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
        for _ in range(3):
            client.crm.owners.owners_api.get_page()
        with pytest.raises(OwnersApiException) as raised:
            client.crm.owners.owners_api.get_page()
        assert raised.value.status == 429
        body = json.loads(raised.value.body)
        assert body["policyName"] == "DAILY" and body["message"] == "You have reached your daily limit."
        app.portal.clock = lambda: datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC)  # the next day
        client.crm.owners.owners_api.get_page()


def test_the_events_loop_ends_when_a_page_repeats_its_cursor() -> None:
    from crmsync.sandbox.http import Request, Response

    with hubspot(2, tier="enterprise") as (app, url):
        event = dict(app.portal.events[0])
        event.pop("_at")

        def stuck(request: Request) -> Response:  # a server that always says there is a next page
            return Response(200, {"results": [event], "paging": {"next": {"after": "7"}}})

        app.route("GET", "/events/v3/events", "events.list")(stuck)
        app.routes.insert(0, app.routes.pop())
        conn = connector(url)
        found = list(conn.events(EPOCH, LATER))
        types = len(conn.capabilities().event_types)
        assert app.call_counts()["events.list"] == 2 * types and len(found) == 2 * types


def test_token_info_needs_no_authorization_header_and_doctor_checks_the_scopes() -> None:
    with hubspot(1) as (_app, url):
        client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
        info = client.oauth.access_tokens_api.get(TOKEN)  # the client sends no Authorization header here
        assert "crm.objects.contacts.write" in info.scopes
        scopes = next(c for c in connector(url).doctor() if c.name == "hubspot scopes")
        assert scopes.ok and scopes.detail == "ok"


@pytest.mark.parametrize("tier", ["starter", "enterprise"])
def test_marketing_email_opens_and_clicks_come_from_property_history_on_every_tier(tier: str) -> None:
    with hubspot(1, tier=tier) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        start = datetime(2026, 11, 20, 9, tzinfo=UTC)
        for hours in (0, 5):
            app.portal.marketing_email(cid, start.replace(hour=9 + hours), "November newsletter")
        app.portal.marketing_email(cid, start.replace(hour=15), "November newsletter", clicked=True)
        found = connector(url, engagement_types=()).activities([cid])[cid]
        kinds = sorted(a.kind for a in found if a.kind in ("email_open", "email_click"))
        assert kinds == ["email_click", "email_open", "email_open"]
        again = connector(url, engagement_types=()).activities([cid])[cid]
        assert {a.id for a in again} == {a.id for a in found}  # the same versions are the same activities


def test_the_connector_reads_the_sandbox_daily_limit_as_the_daily_quota() -> None:
    from crmsync.errors import QuotaError

    with hubspot(3, daily_limit=1) as (_app, url):
        conn = connector(url)
        list(conn.pull_changed(EPOCH, LATER))  # the day's one call
        with pytest.raises(QuotaError, match="daily") as stopped:
            list(conn.pull_changed(EPOCH, LATER))
        assert stopped.value.resume_at > datetime.now(UTC)
