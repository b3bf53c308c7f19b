"""A Salesforce sandbox on loopback and a connector pointed at it (real HTTP, real simple-salesforce)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.sandbox import SalesforceApp, install_custom_fields, seed_org
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.sandbox.http import SandboxServer
from tests.hubspot_fixtures import DEFS, SEED_NOW, fast_retry


@contextmanager
def salesforce(leads: int = 0, *, seed: int = 42, custom_fields: bool = True, real_clock: bool = False,
               fault_seed: int = 0, **options: Any) -> Iterator[tuple[SalesforceApp, str]]:
    app = SalesforceApp(seed=fault_seed, **options)
    if not real_clock:
        app.org.clock = lambda: SEED_NOW
    if leads:
        seed_org(app.org, leads, seed=seed, now=app.org.clock(), custom=custom_fields)
    elif custom_fields:
        install_custom_fields(app.org)
    with SandboxServer(app) as server:
        yield app, server.url


def sf_connector(url: str, *, retry: RetryPolicy | None = None, timeout: float = 5.0) -> SalesforceConnector:
    settings = SalesforceSettings(instance_url=url, login_url=url, client_id="crmsync-app",
                                  client_secret=SecretStr("s3cret"), timeout_seconds=timeout)
    return SalesforceConnector(settings, DEFS.definitions.mappings.salesforce, retry=retry or fast_retry(),
                               fit_industries=DEFS.definitions.fit.industries)
