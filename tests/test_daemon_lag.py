"""`crmsync_lag_seconds{crm,stream}`: the daemon reports each stream's lag from its own cursor (records,
HubSpot's events, Salesforce's activity streams, deals), not a backfill's cursor nor the daily sweep's
note; `crmsync status` lists the same streams. Real passes against both sandboxes, a real store, the
daemon's own exposition."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from crmsync.daemon import Daemon
from crmsync.settings import HttpSettings, Settings
from crmsync.store import Store
from crmsync.sync import SyncPass
from crmsync.sync.window import backfill_stream
from tests.hubspot_fixtures import DEFS, SEED_NOW, TOKEN, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run

LAG = re.compile(r'^crmsync_lag_seconds\{crm="(\w+)",stream="([^"]+)"\} (\S+)$', re.M)


def test_the_lag_gauge_reports_every_live_stream_of_every_crm(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'lag.db'}")
    passed = SEED_NOW + timedelta(minutes=1)
    with hubspot(3) as (_, url):
        assert SyncPass(store, connector(url), DEFS, clock=lambda: passed).run().outcome == "ok"
    with salesforce(3) as (app, url):
        app.org.clock = lambda: SEED_NOW
        assert SyncPass(store, sf_connector(url), DEFS, clock=lambda: passed).run().outcome == "ok"
    backfill = backfill_stream("hubspot", SEED_NOW - timedelta(days=30), SEED_NOW)
    with store.transaction() as c:  # a backfill's window stays where it ended: no lag to report
        store.set_cursor(c, "hubspot", backfill, SEED_NOW - timedelta(days=20), upper_bound=SEED_NOW)

    settings = Settings(database_url=store.url, hubspot={"access_token": SecretStr(TOKEN), "base_url": "http://x"},
                        http=HttpSettings(port=0))
    daemon = Daemon(settings, DEFS, store, {}, clock=lambda: passed + timedelta(seconds=90))
    daemon._gauges()
    lags = {(crm, stream): float(value) for crm, stream, value in LAG.findall(daemon.metrics.exposition().decode())}
    assert lags == {("hubspot", "contacts"): 90.0, ("hubspot", "contacts:events"): 90.0, ("hubspot", "deals"): 90.0,
                    ("salesforce", "contacts"): 90.0, ("salesforce", "contacts:Task"): 90.0,
                    ("salesforce", "contacts:Event"): 90.0, ("salesforce", "contacts:CampaignMember"): 90.0,
                    ("salesforce", "deals"): 90.0}
    assert {c["stream"] for c in store.cursors()} >= {"contacts:deleted", backfill}  # kept, not gauged
    shown = json.loads(run("status", "--json", env={"CRMSYNC_DATABASE_URL": store.url}).stdout)["cursors"]
    assert {(c["crm"], c["stream"]) for c in shown} == set(lags)  # `crmsync status` lists the same streams
