"""The run log's retention: SLA sweeps (a row a minute per CRM) after a day, every other run after
CRMSYNC_RUNS_RETENTION_DAYS; running rows stay; `crmsync status` lists passes, not sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from crmsync import retention
from crmsync.settings import Settings
from crmsync.store import Store
from crmsync.store import schema as t
from crmsync.store.kinds import RunKind, RunOutcome

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _run(store: Store, kind: RunKind, age: timedelta, *, closed: bool = True) -> int:
    run_id = store.start_run("hubspot", kind, "enforce", None)
    if closed:
        store.finish_run(run_id, RunOutcome.OK, {"decided": 0})
    with store.transaction() as c:
        c.execute(update(t.runs).where(t.runs.c.id == run_id).values(started_at=NOW - age))
    return run_id


def test_retention_drops_old_runs_and_day_old_sweeps_only(database_url: str) -> None:
    store = Store.open(database_url)
    keep = {_run(store, RunKind.SYNC, timedelta(days=89)), _run(store, RunKind.SLA_SWEEP, timedelta(hours=23)),
            _run(store, RunKind.SYNC, timedelta(days=400), closed=False),  # still running: its process may live
            _run(store, RunKind.WEBHOOK, timedelta(days=2))}
    drop = {_run(store, RunKind.SYNC, timedelta(days=91)), _run(store, RunKind.BACKFILL, timedelta(days=200)),
            _run(store, RunKind.SLA_SWEEP, timedelta(hours=25))}
    settings = Settings(database_url=database_url, runs_retention_days=90)
    pruned = retention.prune(store, settings, NOW)
    assert pruned.runs == len(drop)
    assert {r["id"] for r in store.runs(100)} == keep
    assert retention.prune(store, settings, NOW).runs == 0


def test_status_lists_passes_not_sweeps(database_url: str) -> None:
    store = Store.open(database_url)
    sync = _run(store, RunKind.SYNC, timedelta(minutes=10))
    for minute in range(5):
        _run(store, RunKind.SLA_SWEEP, timedelta(minutes=minute))
    passes = store.runs(5, kinds=[k for k in RunKind if k != RunKind.SLA_SWEEP])
    assert [r["id"] for r in passes] == [sync]
    assert len(store.runs(5)) == 5
