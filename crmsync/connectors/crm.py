"""What crmsync knows about a CRM besides its connector: one `Crm` registration per CRM.

Each CRM registers itself next to its connector (`crmsync/crms/hubspot/crm.py`, `crmsync/crms/salesforce/crm.py`);
`connectors/registry.py` lists the registrations. The CLI, the daemon and the doctor ask the
registration instead of naming a CRM: whether it is configured (the one place that decides it), how
its connector is built, how `crmsync sandbox serve` runs its emulator, how often the daemon polls it,
and its optional parts (webhooks, a save guard) and the activity kinds it feeds the rules.

Secrets are not listed here: a settings field typed `SecretStr` is one (`settings.secret_values` finds
them in every section, for log and Sentry scrubbing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from crmsync.connectors.base import Connector
from crmsync.connectors.retry import RetryPolicy
from crmsync.definitions import LoadedDefinitions
from crmsync.definitions.schema import CrmMapping, Definitions
from crmsync.errors import ConfigError
from crmsync.model import ActivityKind
from crmsync.settings import Settings

if TYPE_CHECKING:
    from crmsync.sandbox.http import SandboxApp


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    """`crmsync sandbox serve`'s options; each sandbox uses those that apply to it."""

    token: str | None
    faults: str
    seed: int
    rate_limit: str | None
    records: int
    org_shape: str
    tier: str


@dataclass(frozen=True)
class Sandbox:
    app: SandboxApp
    hint: str
    """What to point crmsync at, printed after the URL."""


@dataclass(frozen=True)
class Webhooks:
    """A CRM's signed webhooks, when its settings turn them on (crmsync.webhooks checks them)."""

    secret: str
    dedupe_days: int
    public_url: str | None


@dataclass(frozen=True)
class Feeds:
    """The activity kinds a connector reads for the engagement rules: where (`reads`), and the kinds it
    reads only in part on this account (`partly`, a subset of `reads`)."""

    reads: Mapping[ActivityKind, str]
    partly: frozenset[ActivityKind] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Crm:
    name: str
    """`--crm`, the settings section (CRMSYNC_<NAME>__*), the definitions' `mappings.<name>`, the store's crm."""
    label: str
    records: str
    """What its records are called ("contacts", "leads")."""
    settings_hint: str
    """Which settings configure it, for "no CRM is configured"."""
    configured: Callable[[Settings], bool]
    """Whether the settings configure this CRM: the only place that decides it."""
    not_configured: str
    """The error when a command needs it and it is not configured."""
    build: Callable[[Settings, LoadedDefinitions, RetryPolicy | None], Connector]
    sandbox: Callable[[SandboxOptions, CrmMapping], Sandbox]
    feeds: Callable[[CrmMapping, Connector | None], Feeds | None]
    """The kinds it feeds; given the connector, as this account allows (None: the account cannot say)."""
    poll_seconds: Callable[[Settings], int] = lambda settings: settings.sync.interval_seconds
    webhooks: Callable[[Settings], Webhooks | None] = lambda settings: None
    guard: Callable[[Connector], list[str]] | None = None
    """`crmsync setup --guard`: installs a rule in the CRM that refuses an undocumented SQL; what it changed."""
    no_guard: str = ""
    """Said by `setup --guard` when `guard` is None."""

    def connect(self, settings: Settings, definitions: LoadedDefinitions,
                retry: RetryPolicy | None = None) -> Connector:
        if not self.configured(settings):
            raise ConfigError(self.not_configured)
        return self.build(settings, definitions, retry)

    def mapping(self, definitions: Definitions) -> CrmMapping:
        mapping: CrmMapping = getattr(definitions.mappings, self.name)
        return mapping

    def section(self, settings: Settings) -> BaseModel:
        section: BaseModel = getattr(settings, self.name)
        return section
