"""HubSpot's registration (crmsync.connectors.crm): contacts over hubspot-api-client, signed webhooks."""

from __future__ import annotations

from crmsync.connectors.base import Connector
from crmsync.connectors.crm import Crm, Feeds, Sandbox, SandboxOptions, Webhooks
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.definitions import LoadedDefinitions
from crmsync.definitions.schema import CrmMapping
from crmsync.errors import CrmsyncError
from crmsync.model import ActivityKind as K
from crmsync.settings import Settings


def _build(settings: Settings, definitions: LoadedDefinitions, retry: RetryPolicy | None) -> Connector:
    return HubSpotConnector(HubSpotSettings.of(settings), CRM.mapping(definitions.definitions), retry=retry)


def _sandbox(options: SandboxOptions, mapping: CrmMapping) -> Sandbox:
    from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal

    app = HubSpotApp(token=options.token, faults=options.faults, seed=options.seed, rate_limit=options.rate_limit,
                     tier=options.tier)
    seed_portal(app.portal, options.records, seed=options.seed, mapping=mapping)
    return Sandbox(app, f"{options.tier} tier; point CRMSYNC_HUBSPOT__BASE_URL at it")


READS: dict[K, str] = {
    K.CALL: "calls", K.EMAIL: "emails", K.MEETING: "meetings",
    K.EMAIL_OPEN: "hs_email_last_open_date history", K.EMAIL_CLICK: "hs_email_last_click_date history",
    K.PAGE_VIEW: "the events API (e_visited_page)", K.FORM_SUBMISSION: "the events API (form submission events)",
}
"""What the connector reads on an Enterprise portal (engagements, property history, events API); keep it
true to `HubSpotConnector.activities`."""
BELOW_ENTERPRISE: dict[K, str] = {
    K.PAGE_VIEW: "only the last page seen (hs_analytics_last_url history), no events API below Enterprise",
    K.FORM_SUBMISSION: "only the recent conversion (recent_conversion_event_name history), no events API "
                       "below Enterprise",
}
"""Kinds a portal without the events API feeds only in part: each change of one property is one activity."""


def fed(*, events: bool = True) -> Feeds:
    """What the connector reads; `events`: the portal has the events API (Enterprise)."""
    if events:
        return Feeds(READS)
    return Feeds({**READS, **BELOW_ENTERPRISE}, frozenset(BELOW_ENTERPRISE))


def _feeds(mapping: CrmMapping, connector: Connector | None) -> Feeds | None:
    """Below Enterprise a portal has no events API: page views and forms come from property history."""
    if not isinstance(connector, HubSpotConnector):
        return fed()
    try:
        events = connector.capabilities().events
    except CrmsyncError:
        return None  # doctor's tier check already says why
    return fed(events=events)


def _webhooks(settings: Settings) -> Webhooks | None:
    hubspot = HubSpotSettings.of(settings)
    if hubspot.app_secret is None:
        return None
    return Webhooks(hubspot.app_secret.get_secret_value(), hubspot.webhook_dedupe_days, hubspot.webhook_url)


CRM = Crm(
    name="hubspot",
    label="HubSpot",
    records="contacts",
    settings_hint="CRMSYNC_HUBSPOT__ACCESS_TOKEN",
    configured=lambda settings: HubSpotSettings.of(settings).access_token is not None,
    not_configured="HubSpot is not configured: set CRMSYNC_HUBSPOT__ACCESS_TOKEN",
    build=_build,
    sandbox=_sandbox,
    feeds=_feeds,
    webhooks=_webhooks,
    no_guard="hubspot: no guard installed: HubSpot has no rule that refuses a save based on other properties "
             "(its property validation rules check one property's format); crmsync detects and flags skipped "
             "gates after the fact instead (docs/hubspot.md)",
)
