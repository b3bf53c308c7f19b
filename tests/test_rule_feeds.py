"""Engagement rules a CRM can never feed are said up front (issue 17 item 14): `doctor` per connected
portal and its tier, `definitions validate` for the CRMs configured."""

from __future__ import annotations

import json

import pytest

from crmsync.connectors.feeds import rules_check, unfed
from crmsync.crms.hubspot import crm as hubspot_crm
from crmsync.crms.salesforce import crm as salesforce_crm
from crmsync.model import ActivityKind
from tests.builders import DEFAULT_DEFINITIONS
from tests.hubspot_fixtures import DEFS, TOKEN, hubspot
from tests.test_cli import run

D = DEFS.definitions
SF_ONLY = {"CRMSYNC_SALESFORCE__INSTANCE_URL": "https://example.my.salesforce.com",
           "CRMSYNC_SALESFORCE__ACCESS_TOKEN": "00Dxx!token"}


def _doctor_rules(url: str) -> str:
    result = run("doctor", "--json", env={"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["hubspot rule kinds"]["ok"]  # advice: never what makes doctor fail
    return str(checks["hubspot rule kinds"]["detail"])


@pytest.mark.parametrize("tier", ["starter", "enterprise"])
def test_doctor_lists_the_rules_a_hubspot_portal_never_feeds_at_its_tier(tier: str) -> None:
    with hubspot(0, tier=tier) as (_app, url):
        detail = _doctor_rules(url)
    never = detail.split(" | ")[0]
    assert "webinar_attended (webinar)" in never and "campaign_response (campaign_response)" in never
    assert "email_open" not in never and "demo_request" not in never
    if tier == "starter":
        assert "fed in part: demo_request, trial_signup, contact_sales" in detail
        assert "pricing_page_view, blog_view, page_view, pricing_page_visits (page_view: only the last page" in detail
    else:
        assert "fed in part" not in detail


def test_a_salesforce_mapping_without_campaign_types_never_feeds_webinars() -> None:
    mapping = D.mappings.salesforce.model_copy(update={"campaign_types": {}})
    definitions = D.model_copy(update={"mappings": D.mappings.model_copy(update={"salesforce": mapping})})
    never = unfed(definitions, [salesforce_crm.fed(mapping)])
    assert set(never) == {ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_OPEN, ActivityKind.EMAIL_CLICK,
                          ActivityKind.WEBINAR, ActivityKind.FORM_SUBMISSION}
    assert never[ActivityKind.WEBINAR] == ["webinar_attended"]
    assert set(unfed(D, [salesforce_crm.fed(D.mappings.salesforce)])) == {
        ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_OPEN, ActivityKind.EMAIL_CLICK}  # the default maps Web Form, Webinar
    check = rules_check("salesforce", definitions, salesforce_crm.fed(mapping))
    assert "never fed: demo_request, trial_signup" in check.detail


def test_both_crms_together_feed_every_default_rule() -> None:
    assert unfed(D, [hubspot_crm.fed(), salesforce_crm.fed(D.mappings.salesforce)]) == {}


def test_validate_notes_the_rules_no_configured_crm_reads() -> None:
    hubspot_only = run("definitions", "validate", str(DEFAULT_DEFINITIONS),
                       env={"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN})
    assert hubspot_only.returncode == 0, hubspot_only.stderr
    assert "note: no connector of hubspot reads webinar: webinar_attended never score" in hubspot_only.stdout
    assert "reads campaign_response: campaign_response never score" in hubspot_only.stdout
    assert "page_view" not in hubspot_only.stdout
    sf_only = run("definitions", "validate", "--json", str(DEFAULT_DEFINITIONS), env=SF_ONLY)
    assert json.loads(sf_only.stdout)["rules_never_fed"] == {
        "page_view": ["pricing_page_view", "blog_view", "page_view", "pricing_page_visits"],
        "email_click": ["email_click"], "email_open": ["email_open"]}
    unconfigured = run("definitions", "validate", str(DEFAULT_DEFINITIONS))
    assert unconfigured.returncode == 0 and "note:" not in unconfigured.stdout  # every connector counts
