"""The daemon under a used-up daily quota (a pause in the store, one alert, the other CRM goes on), its
daily retention job, webhook batches at a definitions boundary, and `crmsync status` showing both."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sentry_sdk
from sqlalchemy import update

from crmsync.daemon import RETENTION_EVERY, RETENTION_FIRST, Daemon
from crmsync.store import Store
from crmsync.store import schema as t
from tests.builders import DEFAULT_DEFINITIONS, ManualClock
from tests.faultproxy import Fault, FaultProxy
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run
from tests.test_daemon import activate, settings
from tests.test_governance import candidate
from tests.test_sentry_scrub import FakeTransport
from tests.test_sentry_scrub import sentry as sentry  # the fixture


@pytest.fixture
def daemon_log(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("crmsync.daemon")  # the CLI configures its own handlers: keep them apart
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    monkeypatch.setattr(logger, "propagate", False)
    with caplog.at_level(logging.INFO, logger="crmsync.daemon"):
        yield caplog


def paused_gauge(daemon: Daemon, crm: str) -> str:
    return next(line for line in daemon.metrics.exposition().decode().splitlines()
                if line.startswith(f'crmsync_crm_paused{{crm="{crm}"}}'))


def test_hubspot_daily_limit_pauses_hubspot_until_the_reset_with_one_alert_and_salesforce_goes_on(
        tmp_path: Path, daemon_log: pytest.LogCaptureFixture, sentry: FakeTransport) -> None:
    with hubspot(20, real_clock=True) as (_app, url), salesforce(15, real_clock=True) as (_sf, sf_url), \
            FaultProxy(url) as proxy:
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        clock = ManualClock(datetime.now(UTC))
        crms = {"hubspot": connector(proxy.url), "salesforce": sf_connector(sf_url)}
        daemon = Daemon(settings(proxy.url, store.url), DEFS, store, crms, clock=clock)
        proxy.faults.append(Fault("daily_limit"))  # the first HubSpot call answers 429 policyName DAILY
        assert daemon.sync("hubspot") is None
        until, why = store.paused("hubspot", clock()) or (None, "")
        assert until is not None and until.minute == 0 and clock() < until <= clock() + timedelta(hours=1)
        assert "daily API quota" in why and "429" in why
        assert store.runs(1)[0]["outcome"] == "failed"  # the refused pass closed its run row
        calls = len(proxy.log)
        assert calls == 1

        for _ in range(3):  # every tick until the reset: not one call to HubSpot, and no second alert
            assert daemon.sync("hubspot") is None
            assert daemon.sweep("hubspot") is None
            daemon.react("hubspot", ["1"])
        assert len(proxy.log) == calls
        alerts = [r for r in daemon_log.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in alerts] == [f"hubspot paused until {until:%Y-%m-%d %H:%M} UTC: "
                                                    "its daily API quota is used up"]
        sentry_sdk.flush(2)
        assert len(sentry.events) == 1 and "paused until" in json.dumps(sentry.events[0])
        assert daemon.failed_passes["hubspot"] == 0  # a pause is not a failed pass
        ok, health = daemon.healthy()
        assert ok and health["degraded"] and health["paused"]["hubspot"]["until"] == until.isoformat()
        assert paused_gauge(daemon, "hubspot").endswith(" 1.0")

        other = daemon.sync("salesforce")  # the other CRM keeps syncing
        assert other is not None and other.outcome == "ok" and other.counts["pulled"] == 15
        assert paused_gauge(daemon, "salesforce").endswith(" 0.0")

        store.release_lease("sync:hubspot", daemon.holder)  # a restart during the pause: still no call
        restarted = Daemon(settings(proxy.url, store.url), DEFS, store, crms, clock=clock)
        assert restarted.sync("hubspot") is None and len(proxy.log) == calls
        assert restarted.healthy()[1]["paused"]["hubspot"]["until"] == until.isoformat()
        assert paused_gauge(restarted, "hubspot").endswith(" 1.0")

        clock.now = until + timedelta(seconds=1)  # the quota is back: the next tick syncs
        report = restarted.sync("hubspot")
        assert report is not None and report.outcome == "ok" and report.counts["pulled"] == 20
        assert store.paused("hubspot", clock()) is None and store.lease_holder("pause:hubspot") is None
        assert paused_gauge(restarted, "hubspot").endswith(" 0.0")
        ok, health = restarted.healthy()
        assert ok and not health["degraded"] and health["paused"] == {}
        assert any(r.getMessage() == "hubspot quota pause over: syncing again" for r in daemon_log.records)


def test_salesforce_request_limit_exceeded_pauses_salesforce_in_the_store(
        database_url: str, daemon_log: pytest.LogCaptureFixture) -> None:
    """The Salesforce sandbox's own daily limit (403 REQUEST_LIMIT_EXCEEDED past `api_limit`), on
    SQLite and PostgreSQL."""
    with salesforce(10, real_clock=True) as (app, url):
        store = Store.open(database_url)
        clock = ManualClock(datetime.now(UTC))
        daemon = Daemon(settings("http://127.0.0.1:9", store.url), DEFS, store, {"salesforce": sf_connector(url)},
                        clock=clock)
        app.org.api_limit = 0
        assert daemon.sync("salesforce") is None
        pause = store.paused("salesforce", clock())
        assert pause is not None and "REQUEST_LIMIT_EXCEEDED" in pause[1]
        used = app.org.api_used
        for _ in range(3):
            assert daemon.sync("salesforce") is None and daemon.sweep("salesforce") is None
        assert app.org.api_used == used  # no refused call every interval
        assert len([r for r in daemon_log.records if r.levelno >= logging.ERROR]) == 1

        app.org.api_limit = 100_000
        clock.now = pause[0] - timedelta(seconds=1)  # not one pass before the reset
        assert daemon.sync("salesforce") is None and app.org.api_used == used
        clock.now = pause[0]
        report = daemon.sync("salesforce")
        assert report is not None and report.outcome == "ok" and report.counts["pulled"] == 10


def test_a_pause_is_extended_never_shortened_and_is_new_only_once(database_url: str) -> None:
    store = Store.open(database_url)
    now = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    first, later = now + timedelta(minutes=30), now + timedelta(hours=5)
    assert store.pause("hubspot", first, "daily quota", now) is True
    assert store.pause("hubspot", later, "daily quota again", now) is False  # extended, not a new pause
    assert store.pause("hubspot", first, "shorter", now) is False
    assert store.paused("hubspot", now) == (later, "daily quota again")
    assert store.paused("salesforce", now) is None
    store.resume("hubspot", now)  # not over yet: kept
    assert store.paused("hubspot", now) is not None
    assert store.pause("hubspot", later + timedelta(hours=1), "next day", later) is True  # the old one ended
    store.resume("hubspot", later + timedelta(hours=2))
    assert store.lease_holder("pause:hubspot") is None


def test_the_retention_job_is_scheduled_daily_and_prunes_by_the_daemons_clock(
        tmp_path: Path, daemon_log: pytest.LogCaptureFixture) -> None:
    with hubspot(20) as (_app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        clock = ManualClock(SEED_NOW)
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": connector(url)}, clock=clock)
        daemon.settings.inputs_retention_days = 365
        assert daemon.sync("hubspot") is not None
        daemon.start()
        try:
            job = daemon.scheduler.get_job("retention")
            assert job is not None and job.func == daemon.prune
            assert job.trigger.interval == RETENTION_EVERY == timedelta(days=1)
            assert job.next_run_time - datetime.now(UTC) <= RETENTION_FIRST
        finally:
            daemon.stop()
    record_id = next(iter(store.latest_decisions(SEED_NOW - timedelta(days=3650))))["record_id"]
    old = store.decisions_for("hubspot", record_id)[0]
    with store.transaction() as c:  # the decision is 364 days old and its inputs are no longer current
        c.execute(update(t.decisions).where(t.decisions.c.id == old["id"])
                  .values(decided_at=SEED_NOW - timedelta(days=364)))
        c.execute(update(t.records).where(t.records.c.crm == "hubspot", t.records.c.record_id == record_id)
                  .values(inputs_hash="a-newer-pull"))
    assert daemon.prune() == 0 and store.inputs_for(old["inputs_hash"]) is not None  # within the retention
    clock.now = SEED_NOW + timedelta(days=2)
    assert daemon.prune() == 1 and store.inputs_for(old["inputs_hash"]) is None
    assert store.decisions_for("hubspot", record_id)[0]["id"] == old["id"]  # the decision stays
    logged = [r for r in daemon_log.records if r.getMessage() == "retention applied"]
    assert [(r.dropped_inputs, r.retention_days) for r in logged] == [(0, 365), (1, 365)]
    assert "crmsync_pruned_inputs_total 1.0" in daemon.metrics.exposition().decode()


def test_a_webhook_batch_uses_the_definitions_activated_since_the_last_pass(tmp_path: Path) -> None:
    with hubspot(10, real_clock=True) as (_app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": connector(url)})
        assert daemon.sync("hubspot") is not None  # takes the lease
        record_id = next(iter(store.latest_decisions(datetime(2000, 1, 1, tzinfo=UTC))))["record_id"]
        new = tmp_path / "new.yaml"
        new.write_text(candidate(70))
        activate(new, store.url)
        daemon.react("hubspot", [record_id])  # no pass in between: the batch itself is the boundary
        assert daemon.definitions.version == "2026.12.0"
        assert store.decisions_for("hubspot", record_id)[0]["definitions_version"] == "2026.12.0"


def test_status_shows_the_activated_version_which_one_the_daemon_uses_and_pauses(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    env = {"CRMSYNC_DATABASE_URL": db, "CRMSYNC_DEFINITIONS": str(DEFAULT_DEFINITIONS)}
    first = json.loads(run("status", "--json", env=env).stdout)
    assert first["definitions"]["activated"] is None and first["definitions"]["daemon_uses"]["source"] == "file"
    assert first["paused"] == {}

    new = tmp_path / "new.yaml"
    new.write_text(candidate(70))
    activate(new, db)
    until = datetime.now(UTC) + timedelta(hours=1)
    Store.open(db).pause("salesforce", until, "Salesforce query: HTTP 403 REQUEST_LIMIT_EXCEEDED", datetime.now(UTC))
    data = json.loads(run("status", "--json", env=env).stdout)
    assert data["definitions"]["version"] == DEFS.version  # the file CRMSYNC_DEFINITIONS names
    assert data["definitions"]["activated"]["version"] == "2026.12.0"
    assert data["definitions"]["daemon_uses"]["version"] == "2026.12.0"
    assert data["definitions"]["daemon_uses"]["source"] == "activated"
    assert data["paused"]["salesforce"]["until"] == until.isoformat()
    text = run("status", env=env).stdout
    assert "the daemon uses the activated 2026.12.0" in text and str(DEFAULT_DEFINITIONS) in text
    assert f"salesforce PAUSED until {until.isoformat()}" in text

    new.unlink()  # the activated file is gone: the daemon keeps what it has
    data = json.loads(run("status", "--json", env=env).stdout)
    assert data["definitions"]["daemon_uses"]["source"] == "file"
    assert "cannot be used" in data["definitions"]["daemon_uses"]["note"]


def test_a_daily_limit_met_by_the_sla_sweep_pauses_the_crm_too(tmp_path: Path) -> None:
    """The sweep's writes hit Salesforce's daily limit: the CRM pauses, and neither pass nor sweep calls it."""
    with salesforce(30, real_clock=True) as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        clock = ManualClock(datetime.now(UTC))
        daemon = Daemon(settings("http://127.0.0.1:9", store.url), DEFS, store, {"salesforce": sf_connector(url)},
                        clock=clock)
        assert daemon.sync("salesforce") is not None
        clock.now += timedelta(days=10)  # the MQLs' SLA clocks come due: the sweep has state to write
        assert store.records_due("salesforce", clock())
        app.org.api_limit = app.org.api_used
        assert daemon.sweep("salesforce") is None
        clock.now = datetime.now(UTC)  # back to the time the quota's reset was reckoned in
        pause = store.paused("salesforce", clock())
        assert pause is not None and "REQUEST_LIMIT_EXCEEDED" in pause[1]
        used = app.org.api_used
        assert daemon.sweep("salesforce") is None and daemon.sync("salesforce") is None
        assert app.org.api_used == used
