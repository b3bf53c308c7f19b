"""Every run row closes: ok, failed (any exception), interrupted (Ctrl-C, SystemExit, a lost lease); every
pass kind has one (sync, backfill, webhook, SLA sweep)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.daemon import Daemon
from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from tests.builders import ManualClock
from tests.faultproxy import Fault, FaultProxy
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_daemon import settings


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def progress(_report: PassReport) -> None:
        raise exc
    return progress


@pytest.mark.parametrize(("exc", "outcome"), [
    (RuntimeError("a bug in a callback"), "failed"),
    (KeyError("missing"), "failed"),
    (KeyboardInterrupt(), "interrupted"),
    (SystemExit(1), "interrupted"),
])
def test_the_run_row_closes_whatever_the_exception(database_url: str, exc: BaseException, outcome: str) -> None:
    store = Store.open(database_url)
    with hubspot(20) as (_app, url), pytest.raises(type(exc)):
        SyncPass(store, connector(url), DEFS, progress=_raise(exc)).run()
    [run] = store.runs()
    assert run["outcome"] == outcome and run["ended_at"] is not None
    assert run["error"].startswith(type(exc).__name__)
    assert run["counts"]["pulled"] == 20  # the counts so far are kept


def test_a_run_left_running_by_a_killed_process_is_closed_at_the_next_start(database_url: str) -> None:
    store = Store.open(database_url)
    killed = store.start_run("hubspot", "sync", "enforce", None)  # what kill -9 leaves behind
    with hubspot(10) as (_app, url):
        report = SyncPass(store, connector(url), DEFS).run()
    runs = {r["id"]: r for r in store.runs()}
    assert runs[killed]["outcome"] == "interrupted" and "closed at the next start" in runs[killed]["error"]
    assert runs[report.run_id]["outcome"] == "ok"


def test_the_lease_holder_also_closes_webhook_runs_left_running(database_url: str) -> None:
    from crmsync.sync.lease import Lease

    store = Store.open(database_url)
    webhook = store.start_run("hubspot", "webhook", "enforce", None)
    with hubspot(10) as (_app, url):
        SyncPass(store, connector(url), DEFS).run()  # no lease: it cannot tell a live batch from a dead one
        assert {r["id"]: r["outcome"] for r in store.runs()}[webhook] == "running"
        lease = Lease.take(store, "sync:hubspot", "me", timedelta(seconds=30))
        SyncPass(store, connector(url), DEFS, lease=lease).run()
    assert {r["id"]: r["outcome"] for r in store.runs()}[webhook] == "interrupted"


def _newest(store: Store, kind: str) -> dict[str, Any]:
    return next(run for run in store.runs(20) if run["kind"] == kind)


def test_a_webhook_reaction_and_an_sla_sweep_each_close_a_run_row_with_counts(tmp_path: Path) -> None:
    """The daemon keeps no run bookkeeping of its own: the pass opens and closes the row."""
    with hubspot(10, real_clock=True) as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        clock = ManualClock(datetime.now(UTC))
        daemon = Daemon(settings(url, store.url), DEFS, store, {"hubspot": connector(url)}, clock=clock)
        assert daemon.sync("hubspot") is not None  # takes the lease
        ids = list(app.portal.records["contacts"])[:3]
        daemon.react("hubspot", ids)
        webhook = _newest(store, "webhook")
        assert webhook["outcome"] == "ok" and webhook["ended_at"] is not None and webhook["error"] is None
        assert webhook["counts"]["pulled"] == 3 and webhook["counts"]["unchanged"] + webhook["counts"]["decided"] == 3
        clock.now += timedelta(days=10)  # the MQLs' SLA clocks come due
        due = len(store.records_due("hubspot", clock()))
        report = daemon.sweep("hubspot")
        sweep = _newest(store, "sla_sweep")
        assert report is not None and sweep["id"] == report.run_id
        assert sweep["outcome"] == "ok" and sweep["ended_at"] is not None and sweep["error"] is None
        assert due > 0 and sweep["counts"]["decided"] == due


def test_a_failing_webhook_reaction_and_sla_sweep_leave_failed_rows_with_the_error(tmp_path: Path) -> None:
    with hubspot(10, real_clock=True) as (app, url), FaultProxy(url) as proxy:
        store = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
        daemon = Daemon(settings(proxy.url, store.url), DEFS, store, {"hubspot": connector(proxy.url)})
        assert daemon.sync("hubspot") is not None
        proxy.faults.append(Fault("daily_limit"))  # the batch read answers 429 policyName DAILY
        daemon.react("hubspot", list(app.portal.records["contacts"])[:2])
        webhook = _newest(store, "webhook")
        assert webhook["outcome"] == "failed" and webhook["ended_at"] is not None
        assert webhook["error"].startswith("QuotaError") and "429" in webhook["error"]
    with salesforce(30, real_clock=True) as (sf, sf_url):
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        clock = ManualClock(datetime.now(UTC))
        daemon = Daemon(settings("http://127.0.0.1:9", store.url), DEFS, store, {"salesforce": sf_connector(sf_url)},
                        clock=clock)
        assert daemon.sync("salesforce") is not None
        clock.now += timedelta(days=10)
        due = len(store.records_due("salesforce", clock()))
        sf.org.api_limit = sf.org.api_used  # the sweep's writes meet the daily limit
        assert daemon.sweep("salesforce") is None
        sweep = _newest(store, "sla_sweep")
        assert sweep["outcome"] == "failed" and sweep["ended_at"] is not None
        assert "REQUEST_LIMIT_EXCEEDED" in sweep["error"]
        assert due > 0 and sweep["counts"]["decided"] == due  # the counts so far are kept
