"""A HubSpot sandbox served on loopback, and a connector pointed at it (no mocks: real HTTP, real client)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.sandbox.http import SandboxServer
from tests.builders import DEFAULT_DEFINITIONS

TOKEN = "pat-na1-sandbox-token"
_ROOT = Path(__file__).resolve().parents[1]


def shared(*parts: str) -> Path:
    """A path under ../shared (specs, recorded responses), from a checkout or from a worktree under it."""
    candidates = [base / "shared" / Path(*parts) for base in (_ROOT.parent, _ROOT.parent.parent)]
    return next((c for c in candidates if c.exists()), candidates[0])


def shared_absent(path: Path) -> str:
    """Why a test that reads `path` under ../shared skips: the reason pytest prints (-ra)."""
    return (f"{path} not found: ../shared (specs and recorded responses) is kept beside the checkout, not in "
            "the repo, and this checkout has none; a checkout or CI clone with ../shared runs this test")


def need_shared(*parts: str) -> Path:
    """The path under ../shared, or the test skips saying why (`shared_absent`)."""
    path = shared(*parts)
    if not path.exists():
        pytest.skip(shared_absent(path))
    return path
SEED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEFS: LoadedDefinitions = load_definitions(DEFAULT_DEFINITIONS)


@dataclass
class FakeClock:
    """A clock the tests move by hand; sleeping on it just moves it (no real waiting)."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fast_retry(clock: FakeClock | None = None, attempts: int = 8) -> RetryPolicy:
    clock = clock or FakeClock()
    return RetryPolicy(attempts=attempts, initial_wait=0.001, max_wait=0.01, sleep=clock.sleep)


@contextmanager
def hubspot(contacts: int = 0, *, seed: int = 42, token: str | None = TOKEN, crmsync_properties: bool = True,
            real_clock: bool = False, fault_seed: int = 0, **options: Any) -> Iterator[tuple[HubSpotApp, str]]:
    """A seeded sandbox; its clock is fixed at SEED_NOW unless `real_clock` (for CLI runs, which use the time)."""
    app = HubSpotApp(token=token, seed=fault_seed, **options)
    if not real_clock:
        app.portal.clock = lambda: SEED_NOW
    if contacts:
        seed_portal(app.portal, contacts, seed=seed, now=app.portal.clock(), crmsync_properties=crmsync_properties)
    elif crmsync_properties:
        from crmsync.crms.hubspot.sandbox import install_crmsync_properties

        install_crmsync_properties(app.portal)
    with SandboxServer(app) as server:
        yield app, server.url


def connector(url: str, *, token: str = TOKEN, retry: RetryPolicy | None = None,
              definitions: LoadedDefinitions = DEFS, timeout: float = 5.0, **options: Any) -> HubSpotConnector:
    settings = HubSpotSettings(access_token=SecretStr(token), base_url=url, timeout_seconds=timeout)
    return HubSpotConnector(settings, definitions.definitions.mappings.hubspot, retry=retry or fast_retry(),
                            **options)
