"""The CRMs crmsync knows: one registration each (crmsync.connectors.crm), kept next to its connector.

Adding a CRM is adding its registration to `REGISTRY`; nothing else looks a CRM up by name.
"""

from __future__ import annotations

from crmsync.connectors import hubspot_crm, salesforce_crm
from crmsync.connectors.base import Connector
from crmsync.connectors.crm import Crm
from crmsync.connectors.retry import RetryPolicy
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import ConfigError
from crmsync.settings import Settings

REGISTRY: tuple[Crm, ...] = (hubspot_crm.CRM, salesforce_crm.CRM)
KNOWN: tuple[str, ...] = tuple(crm.name for crm in REGISTRY)


def either(names: tuple[str, ...] = KNOWN) -> str:
    """"hubspot or salesforce"; "a, b or c"."""
    return " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def get(name: str) -> Crm:
    for crm in REGISTRY:
        if crm.name == name:
            return crm
    raise ConfigError(f"unknown CRM {name!r}: expected one of {', '.join(KNOWN)}")


def configured(settings: Settings) -> list[str]:
    return [crm.name for crm in REGISTRY if crm.configured(settings)]


def connect(name: str, settings: Settings, definitions: LoadedDefinitions,
            retry: RetryPolicy | None = None) -> Connector:
    return get(name).connect(settings, definitions, retry)
