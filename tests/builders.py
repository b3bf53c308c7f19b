"""Builders for seed-like records and activities at a fixed clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmsync.model import Activity, Contact

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEFINITIONS = ROOT / "config" / "definitions.yaml"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # a pull window (EPOCH, LATER] that holds every seeded record and event
LATER = datetime(2030, 1, 1, tzinfo=UTC)
NIGHTLY = os.environ.get("CRMSYNC_TEST_SCALE", "ci") == "nightly"


def scaled(ci: int, nightly: int) -> int:
    """A test's size: small enough for every CI run, the full size with CRMSYNC_TEST_SCALE=nightly."""
    return nightly if NIGHTLY else ci


class ManualClock:
    """A wall clock the test moves by hand (`clock.now = ...`), for code that asks for the time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fit_contact(**overrides: Any) -> Contact:
    """A perfect-fit lead: 200-person fintech, VP of Finance, in the US, company email."""
    values: dict[str, Any] = {
        "id": "c-1",
        "crm": "hubspot",
        "email": "dana.ruiz@northwind-pay.com",
        "first_name": "Dana",
        "last_name": "Ruiz",
        "company": "Northwind Pay",
        "title": "VP Finance",
        "industry": "Financial Services",
        "employees": 200,
        "country": "US",
        "stage": "lead",
    }
    values.update(overrides)
    return Contact(**values)


def activity(
    kind: str, days_ago: float, detail: str = "", *, by_owner: bool = False, id: str | None = None
) -> Activity:
    return Activity(id or f"{kind}-{detail}-{days_ago}", kind, NOW - timedelta(days=days_ago), detail, by_owner)


def demo_request(days_ago: float = 1) -> Activity:
    return activity("form_submission", days_ago, "Demo request")


def whitepaper(days_ago: float = 1, n: int = 0) -> Activity:
    return activity("form_submission", days_ago, "Whitepaper: State of RevOps 2026", id=f"wp-{n}-{days_ago}")


def pricing_view(days_ago: float, n: int = 0) -> Activity:
    return activity("page_view", days_ago, "https://example.com/pricing", id=f"pv-{n}-{days_ago}")


FULL_BANT = {
    "need": "Manual lead routing loses 30% of inbound demo requests",
    "authority": "Dana is the budget holder (VP Finance)",
    "timeline": "decision within 6 weeks",
    "budget": "$40k approved for FY27",
}
