"""Salesforce's registration (crmsync.connectors.crm): leads over simple-salesforce, the BANT guard."""

from __future__ import annotations

from crmsync.connectors.base import Connector
from crmsync.connectors.crm import Crm, Feeds, Sandbox, SandboxOptions
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.guard import install_guard
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.definitions import LoadedDefinitions
from crmsync.definitions.schema import CrmMapping
from crmsync.model import ActivityKind as K
from crmsync.settings import Settings


def _configured(settings: Settings) -> bool:
    """An instance URL with an access token, or what the token endpoint needs to issue one."""
    sf = SalesforceSettings.of(settings)
    return bool((sf.instance_url and sf.access_token) or sf.username or sf.client_id)


def _build(settings: Settings, definitions: LoadedDefinitions, retry: RetryPolicy | None) -> Connector:
    d = definitions.definitions
    return SalesforceConnector(SalesforceSettings.of(settings), CRM.mapping(d), retry=retry,
                               fit_industries=d.fit.industries,
                               scored_sources=[v for r in d.engagement.property_points if r.field == "source"
                                               for v in r.values])


def _sandbox(options: SandboxOptions, mapping: CrmMapping) -> Sandbox:
    from crmsync.crms.salesforce.sandbox import SalesforceApp, seed_org

    app = SalesforceApp(token=options.token, faults=options.faults, seed=options.seed, rate_limit=options.rate_limit,
                        shape=options.org_shape)
    seed_org(app.org, options.records, seed=options.seed, mapping=mapping)
    return Sandbox(app, "point CRMSYNC_SALESFORCE__INSTANCE_URL and __LOGIN_URL at it (any client id and secret)")


def _guard(connector: Connector) -> list[str]:
    assert isinstance(connector, SalesforceConnector)
    return install_guard(connector)


READS: dict[K, str] = {
    K.CALL: "Tasks", K.EMAIL: "Tasks", K.MEETING: "Events", K.CAMPAIGN_RESPONSE: "campaign members who responded",
}
"""What the connector reads (keep it true to `SalesforceConnector.activities`); responses also feed the
kinds the mapping's `campaign_types` name."""


def fed(mapping: CrmMapping) -> Feeds:
    """What the connector reads, with the kinds the mapping's campaign types name."""
    found = dict(READS)
    for campaign_type, kind in mapping.campaign_types.items():
        found.setdefault(kind, f"responses to {campaign_type!r} campaigns")
    return Feeds(found)


def _feeds(mapping: CrmMapping, connector: Connector | None) -> Feeds:
    return fed(mapping)


CRM = Crm(
    name="salesforce",
    label="Salesforce",
    records="leads",
    settings_hint="CRMSYNC_SALESFORCE__*",
    configured=_configured,
    not_configured="Salesforce is not configured: set CRMSYNC_SALESFORCE__INSTANCE_URL and an access token, or "
                   "the login URL with username/password or client credentials",
    build=_build,
    sandbox=_sandbox,
    feeds=_feeds,
    poll_seconds=lambda settings: SalesforceSettings.of(settings).poll_seconds,
    guard=_guard,
)
