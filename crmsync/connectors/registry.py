"""Which CRMs are configured, and their connectors built from the settings and definitions."""

from __future__ import annotations

from typing import Literal

from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import ConfigError
from crmsync.settings import Settings

CrmName = Literal["hubspot", "salesforce"]
KNOWN: tuple[CrmName, ...] = ("hubspot", "salesforce")


def configured(settings: Settings) -> list[CrmName]:
    names: list[CrmName] = []
    if settings.hubspot.access_token is not None:
        names.append("hubspot")
    sf = settings.salesforce
    if (sf.instance_url and sf.access_token) or sf.username or sf.client_id:
        names.append("salesforce")
    return names


def connect(name: str, settings: Settings, definitions: LoadedDefinitions,
            retry: RetryPolicy | None = None) -> HubSpotConnector | SalesforceConnector:
    if name == "hubspot":
        if settings.hubspot.access_token is None:
            raise ConfigError("HubSpot is not configured: set CRMSYNC_HUBSPOT__ACCESS_TOKEN")
        return HubSpotConnector(settings.hubspot, definitions.definitions.mappings.hubspot, retry=retry)
    if name == "salesforce":
        sf = settings.salesforce
        if not sf.instance_url and not (sf.username or sf.client_id):
            raise ConfigError("Salesforce is not configured: set CRMSYNC_SALESFORCE__INSTANCE_URL and an access "
                              "token, or the login URL with username/password or client credentials")
        rules = definitions.definitions.engagement.property_points
        return SalesforceConnector(sf, definitions.definitions.mappings.salesforce, retry=retry,
                                   fit_industries=definitions.definitions.fit.industries,
                                   scored_sources=[v for r in rules if r.field == "source" for v in r.values])
    raise ConfigError(f"unknown CRM {name!r}: expected one of {', '.join(KNOWN)}")
