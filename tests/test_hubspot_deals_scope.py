"""A token without crm.objects.deals.read (one made before crmsync read deals): HubSpot answers the deal
search 403 MISSING_SCOPES; the pass goes on without the deal stream, says so once, and doctor names the
scope. With the scope, deals are read."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot

WITHOUT_DEALS = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.read",
                 "crm.schemas.contacts.write", "crm.objects.owners.read", "timeline", "oauth"]


def test_a_token_without_the_deals_scope_syncs_contacts_and_says_so_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with hubspot(30, scopes=WITHOUT_DEALS) as (app, url):
        conn = connector(url)
        with caplog.at_level(logging.WARNING, logger="crmsync"):
            first = SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW).run()
            second = SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW + timedelta(minutes=5)).run()
        assert first.outcome == second.outcome == "ok" and first.counts["decided"] == 30
        warnings = [r for r in caplog.records if "deal stream off" in r.getMessage()]
        assert len(warnings) == 1  # said once, not every pass
        refused = [row for row in app.call_counts_by_status() if row["status"] == 403
                   and row["endpoint"] == "objects.search"]  # (the events API's 403 is the tier's)
        assert [r["count"] for r in refused] == [1]  # asked once per connector, not every pass
        scopes = next(c for c in conn.doctor() if c.name == "hubspot scopes")
        assert not scopes.ok and "crm.objects.deals.read" in scopes.detail


def test_with_the_scope_deals_are_read() -> None:
    with hubspot(5) as (app, url):
        list(connector(url).pull_deals(SEED_NOW - timedelta(days=1), SEED_NOW))
        answered = {(row["endpoint"], row["status"]) for row in app.call_counts_by_status()}
        assert ("objects.search", 200) in answered and ("objects.search", 403) not in answered
        scopes = next(c for c in connector(url).doctor() if c.name == "hubspot scopes")
        assert scopes.ok, scopes.detail
