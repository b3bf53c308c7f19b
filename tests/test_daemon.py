"""The daemon: scheduled passes, health and metrics, clean shutdown, leases across replicas."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from crmsync.cli import app as cli
from crmsync.daemon import Daemon
from crmsync.definitions import parse_definitions
from crmsync.settings import HttpSettings, Settings, SyncSettings
from crmsync.store import Store
from tests.builders import DEFAULT_DEFINITIONS, ROOT
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot
from tests.test_governance import candidate


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


def test_health_turns_503_after_n_failed_passes_in_a_row_and_recovers(tmp_path: Path) -> None:
    with hubspot(5, real_clock=True, faults="503:1.0") as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        from tests.hubspot_fixtures import fast_retry

        failing = connector(url, retry=fast_retry(attempts=2))
        config = settings(url, store.url)
        config.sync.unhealthy_after_failed_passes = 2
        daemon = Daemon(config, DEFS, store, {"hubspot": failing})
        assert daemon.health_threshold.total_seconds() >= 120  # the age check alone cannot flip it here
        daemon.start()
        try:
            base = f"http://127.0.0.1:{daemon.http_port}"
            _status, body = wait_for(lambda: (r := get(base + "/healthz"))[0] == 503 and r, what="/healthz 503")
            health = json.loads(body)
            assert health["ok"] is False and health["failing"] == ["hubspot"]
            assert health["consecutive_failed_passes"]["hubspot"] >= 2
            metrics = get(base + "/metrics")[1].decode()
            assert 'crmsync_failed_passes_total{crm="hubspot"}' in metrics
            assert 'crmsync_sync_runs_total{crm="hubspot",outcome="failed"}' in metrics
            outcomes = [run["outcome"] for run in store.runs(100)]  # every failed run row is closed
            assert set(outcomes) <= {"failed", "running"} and outcomes.count("running") <= 1
            app.faults.set("")  # the CRM is back: one good pass makes the replica healthy again
            wait_for(lambda: get(base + "/healthz")[0] == 200, what="/healthz back to 200")
            assert 'crmsync_consecutive_failed_passes{crm="hubspot"} 0.0' in get(base + "/metrics")[1].decode()
        finally:
            daemon.stop()


def _run_daemon(url: str, db: str, port: int = 0, **settings: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url, "CRMSYNC_DATABASE_URL": db,
                "CRMSYNC_HTTP__PORT": str(port), "CRMSYNC_SYNC__INTERVAL_SECONDS": "1", "CRMSYNC_LOG_FORMAT": "json"})
    env.update({f"CRMSYNC_SYNC__{name.upper()}": value for name, value in settings.items()})
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
    """A 5 s lease (the default is 15 s, 3 x the interval): the holder renews it every pass, so for
    longer than the lease lasts it never changes hands while both run; after a SIGKILL the standby
    takes it once it has expired, without waiting out the default."""
    lease = 5
    with hubspot(50, real_clock=True) as (_app, url):
        store = Store.open(postgres_url)
        first = _run_daemon(url, postgres_url, lease_seconds=str(lease))
        holder = wait_for(lambda: store.lease_holder("sync:hubspot"), what="a lease holder")[0]
        second = _run_daemon(url, postgres_url, lease_seconds=str(lease))
        try:
            holders = set()
            deadline = time.monotonic() + lease + 1
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


def activate(path: Path, database_url: str) -> None:
    result = CliRunner().invoke(cli, ["definitions", "activate", str(path)], env={"CRMSYNC_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output


def test_the_daemon_follows_the_activated_definitions_at_pass_boundaries(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger("crmsync.daemon"), "handlers", [caplog.handler])  # the CLI's own is apart
    with hubspot(30, real_clock=True) as (_, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": connector(url)})
        first = daemon.sync("hubspot")
        assert first is not None and first.outcome == "ok" and daemon.definitions is DEFS
        record_id = next(iter(store.latest_decisions(datetime(2000, 1, 1, tzinfo=UTC))))["record_id"]

        new = tmp_path / "new.yaml"
        new.write_text(candidate(70))
        activate(new, store.url)
        assert daemon.definitions is DEFS  # nothing changes between passes
        with caplog.at_level(logging.INFO, logger="crmsync.daemon"):
            daemon.sync("hubspot")
        assert daemon.definitions.content_hash == parse_definitions(candidate(70)).content_hash
        assert [r for r in caplog.records if r.message == "definitions changed"]
        daemon.react("hubspot", [record_id])  # the next decision is made with the activated version
        assert store.decisions_for("hubspot", record_id)[0]["definitions_version"] == "2026.12.0"

        activate(DEFAULT_DEFINITIONS, store.url)  # a rollback is an activation of the older version
        daemon.sync("hubspot")
        assert daemon.definitions.content_hash == DEFS.content_hash

        gone = tmp_path / "gone.yaml"
        gone.write_text(candidate(60, version="2026.12.1"))
        activate(gone, store.url)
        gone.unlink()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="crmsync.daemon"):
            assert daemon.sync("hubspot") is not None and daemon.sync("hubspot") is not None
        assert daemon.definitions.content_hash == DEFS.content_hash  # the file is gone: keep what works
        assert len([r for r in caplog.records if r.message.startswith("activated definitions not usable")]) == 1
        store.close()
