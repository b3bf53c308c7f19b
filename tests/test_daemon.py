"""The daemon: scheduled passes, health and metrics, clean shutdown, leases across replicas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from crmsync.daemon import Daemon
from crmsync.settings import HttpSettings, Settings, SyncSettings
from crmsync.store import Store
from tests.builders import ROOT
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot


def wait_for(condition: Callable[[], Any], seconds: float = 20.0, what: str = "condition") -> Any:
    """Poll with a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def settings(url: str, db: str, interval: int = 1) -> Settings:
    return Settings(database_url=db, hubspot={"access_token": SecretStr(TOKEN), "base_url": url},
                    http=HttpSettings(port=0), sync=SyncSettings(interval_seconds=interval))


def test_daemon_syncs_reports_health_and_metrics_and_stops(tmp_path: Path) -> None:
    with hubspot(40, real_clock=True) as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": connector(url)})
        daemon.start()
        try:
            wait_for(lambda: "hubspot" in daemon.last_success, what="a successful pass")
            base = f"http://127.0.0.1:{daemon.http_port}"
            status, body = get(base + "/healthz")
            assert status == 200 and json.loads(body)["ok"] is True
            status, metrics = get(base + "/metrics")
            text = metrics.decode()
            assert status == 200
            assert 'crmsync_records_pulled_total{crm="hubspot"} 40.0' in text
            assert 'crmsync_api_calls_total{crm="hubspot",endpoint="search contacts",status="200"}' in text
            assert "crmsync_outbox_depth 0.0" in text and "crmsync_lag_seconds" in text
            assert store.lease_holder("sync:hubspot") is not None
        finally:
            daemon.stop()
        assert store.lease_holder("sync:hubspot") is None
        assert app.portal.records["contacts"][next(iter(app.portal.records["contacts"]))].properties["crmsync_stage"]


def test_health_turns_503_when_syncs_keep_failing(tmp_path: Path) -> None:
    with hubspot(5, real_clock=True, faults="503:1.0") as (_app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        from tests.hubspot_fixtures import fast_retry

        failing = connector(url, retry=fast_retry(attempts=2))
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": failing})
        daemon.health_threshold = daemon.health_threshold * 0  # any age is too old once a pass has failed
        daemon.start()
        try:
            base = f"http://127.0.0.1:{daemon.http_port}"
            wait_for(lambda: get(base + "/metrics")[1].find(b'outcome="failed"') >= 0, what="a failed pass")
            status, body = get(base + "/healthz")
            assert status == 503 and json.loads(body)["ok"] is False
        finally:
            daemon.stop()


def _run_daemon(url: str, db: str, port: int = 0) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url, "CRMSYNC_DATABASE_URL": db,
                "CRMSYNC_HTTP__PORT": str(port), "CRMSYNC_SYNC__INTERVAL_SECONDS": "1", "CRMSYNC_LOG_FORMAT": "json"})
    return subprocess.Popen([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigterm_finishes_releases_the_lease_and_exits_0(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    with hubspot(300, real_clock=True) as (app, url):
        process = _run_daemon(url, db)
        try:
            wait_for(lambda: app.call_counts().get("objects.search"), what="the daemon's first pull")
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            process.wait(timeout=10)
            assert time.monotonic() - started < 10
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
        assert Store.open(db).lease_holder("sync:hubspot") is None


def test_two_daemons_one_syncs_and_the_standby_takes_over(postgres_url: str) -> None:
    with hubspot(50, real_clock=True) as (_app, url):
        store = Store.open(postgres_url)
        first = _run_daemon(url, postgres_url)
        holder = wait_for(lambda: store.lease_holder("sync:hubspot"), what="a lease holder")[0]
        second = _run_daemon(url, postgres_url)
        try:
            holders = set()
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # while both run, the lease never changes hands
                current = store.lease_holder("sync:hubspot")
                holders.add(current[0] if current else None)
                time.sleep(0.1)
            assert holders == {holder}
            first.kill()  # SIGKILL: no chance to release the lease
            first.wait(timeout=10)
            takeover = wait_for(lambda: (h := store.lease_holder("sync:hubspot")) and h[0] != holder and h,
                                seconds=30, what="the standby to take the lease")
            assert takeover[0] != holder
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=15)
