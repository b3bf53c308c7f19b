"""The CRMs crmsync knows: one registration each (crmsync.connectors.crm), `CRM` in its package's `crm.py`.

`REGISTRY` follows the names in `crmsync.crms.CRMS`; nothing else looks a CRM up by name.
"""

from __future__ import annotations

from importlib import import_module

from crmsync.connectors.base import Connector
from crmsync.connectors.crm import Crm
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms import CRMS
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import ConfigError
from crmsync.settings import Settings


def _registration(name: str) -> Crm:
    crm = import_module(f"crmsync.crms.{name}.crm").CRM
    if not isinstance(crm, Crm) or crm.name != name:
        raise TypeError(f"crmsync.crms.{name}.crm.CRM must be the Crm named {name!r}")
    return crm


REGISTRY: tuple[Crm, ...] = tuple(_registration(name) for name in CRMS)
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
