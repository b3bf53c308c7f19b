"""Every run row closes: ok, failed (any exception), interrupted (Ctrl-C, SystemExit, a lost lease)."""

from __future__ import annotations

import pytest

from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from tests.hubspot_fixtures import DEFS, connector, hubspot


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
    from datetime import timedelta

    from crmsync.sync.lease import Lease

    store = Store.open(database_url)
    webhook = store.start_run("hubspot", "webhook", "enforce", None)
    with hubspot(10) as (_app, url):
        SyncPass(store, connector(url), DEFS).run()  # no lease: it cannot tell a live batch from a dead one
        assert {r["id"]: r["outcome"] for r in store.runs()}[webhook] == "running"
        lease = Lease.take(store, "sync:hubspot", "me", timedelta(seconds=30))
        SyncPass(store, connector(url), DEFS, lease=lease).run()
    assert {r["id"]: r["outcome"] for r in store.runs()}[webhook] == "interrupted"
