"""A person's later edit wins over a write decided in the same pass: before a write batch's first send,
the writes whose record was read `sync.recheck_after_seconds` or longer ago are re-read (one batch read)
and dropped + re-decided where a rep changed the record since the pull; fresh writes go out as decided,
with no extra call. The rep edits through the official clients (hubspot-api-client, simple-salesforce)
against the sandboxes; time is an injected timer, or a real slow network through the fault proxy.

Sizes and backends, the least that still proves each point: the rep's edits need 3 new MQLs, which the
first 40 seeded records of either CRM hold (7 on HubSpot, 4 on Salesforce; `_mqls` asserts it), and
one pull page and one write batch are all these tests need (the aged batch is re-read in one call
whatever its size). The count of re-reads per write batch needs two batches: one full batch and one
record more per CRM (HubSpot batches 100, Salesforce 200). Only the test of the stale path runs on
PostgreSQL too: the store's SQL here (the decision basis, the `stale` outbox rows, the re-decided
writes) is the same in the slow-network test, and the call counts do not depend on the store.
(Before: 80 records, 250 for the call counts, and every test on both backends.)"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.store import Store
from crmsync.store.kinds import OutboxKind, OutboxStatus
from crmsync.sync import PassReport, SyncPass
from tests.faultproxy import FaultProxy
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_later_edits_win import ACCEPTED, READ, _accept, _state, _to_mql

EDITS = 3
LEADS = 40
NEW = (None, "", "NEW", "Open - Not Contacted")  # a new lead's status on either CRM
MAKE = {"hubspot": connector, "salesforce": sf_connector}
BATCH = {"hubspot": HubSpotConnector.write_batch, "salesforce": SalesforceConnector.write_batch}
SANDBOX = {"hubspot": hubspot, "salesforce": salesforce}


class Timer:
    """The pass's monotonic timer, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _mqls(app: Any, crm: str, writes: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Of the planned writes (record id, properties), the first EDITS that make a new lead an MQL."""
    found = [record_id for record_id, properties in writes
             if _to_mql(crm, properties) and _state(app, crm, record_id)[1] in NEW]
    assert len(found) >= EDITS, f"{len(found)} new MQLs among {LEADS} records"
    return found[:EDITS]


def _new_mqls(store: Store, crm: str, url: str, app: Any) -> list[str]:
    """Records this first pass will make MQLs (lead status new), from a dry run (it stores and writes nothing)."""
    plan = SyncPass(store, MAKE[crm](url), DEFS, dry_run=True).run().plan
    return _mqls(app, crm, [(p["record_id"], p["properties"]) for p in plan])


def _kept(app: Any, crm: str, accepted: list[str]) -> None:
    for record_id in accepted:  # the rep's status stands, and the record was re-decided from it: SAL
        stage, status = _state(app, crm, record_id)
        assert status == ACCEPTED[crm], f"{record_id}: crmsync wrote {status} over the rep's edit"
        assert stage == ("sal" if crm == "hubspot" else "SAL"), record_id


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_reps_edit_between_the_pull_and_a_write_older_than_the_threshold_is_kept(database_url: str,
                                                                                   crm: str) -> None:
    """The MQLs the rep accepts are taken from the page's pending writes, once it is decided (no dry
    run before the pass: the same records, one pass fewer)."""
    store = Store.open(database_url)
    with SANDBOX[crm](LEADS) as (app, url):
        accepted: list[str] = []
        timer = Timer()

        def slow_pass(_report: PassReport) -> None:
            """After a page is decided, before the pass's flush: the rep accepts the MQLs, and the pass
            goes on for longer than the threshold (say, retried reads on a slow network)."""
            if timer.now == 100.0:
                accepted[:] = _mqls(app, crm, [(r["record_id"], r["payload"]["properties"])
                                               for r in store.outbox_rows(crm, OutboxStatus.PENDING)
                                               if r["kind"] == OutboxKind.WRITE])
                for record_id in accepted:
                    _accept(crm, url, record_id)
            timer.now += 6.0

        calls: Counter[str] = Counter()
        conn = MAKE[crm](url)
        conn.on_call = lambda what, _status: calls.update([what])
        report = SyncPass(store, conn, DEFS, progress=slow_pass, timer=timer).run()
        assert len(accepted) == EDITS, "the rep accepted nothing: no page was decided"
        assert report.outcome == "ok" and report.counts["stale_writes"] == EDITS
        assert calls[READ[crm]] == 1  # the aged batch re-read in one call; the re-decided writes were fresh
        _kept(app, crm, accepted)
        assert sorted(r["record_id"] for r in store.outbox_rows(crm, "stale")) == sorted(accepted)
        assert store.outbox_depth() == 0  # the re-decided writes went out in the same flush


@pytest.mark.parametrize("after", [5.0, 0.0])
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_fresh_write_costs_no_extra_read_and_zero_rereads_every_batch(tmp_path: Path, crm: str,
                                                                        after: float) -> None:
    """A healthy pass (the writes younger than the threshold) makes no read call before its writes; with
    `recheck_after` 0 every write batch is re-read first, one read call each. One full write batch and
    one record more: two batches, the second partial (the timer stands still, so a record's age does not
    depend on its pull page). SQLite only: the calls counted do not depend on the store."""
    records = BATCH[crm] + 1
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    with SANDBOX[crm](records) as (_app, url):
        calls: Counter[str] = Counter()
        conn = MAKE[crm](url)
        conn.on_call = lambda what, _status: calls.update([what])
        report = SyncPass(store, conn, DEFS, timer=Timer(), recheck_after=timedelta(seconds=after)).run()
    assert report.outcome == "ok" and report.counts["written"] == records, report.counts
    batches = math.ceil(records / conn.write_batch)
    assert batches == 2 and calls[READ[crm]] == (0 if after else batches), dict(calls)


class EditWhileAReadHangs:
    """The first request after the pull's first page (an activity read): a rep accepts `accepted` through
    the official client, and the answer is held past the client's timeout (`slow`): the read is retried,
    and the pass's writes are sent well after the pull."""

    def __init__(self, crm: str, url: str, accepted: list[str]) -> None:
        self.crm, self.url, self.accepted = crm, url, accepted
        self.pulled = False
        self.edited = False

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None:
        if not self.pulled:
            self.pulled = "/contacts/search" in path or ("/queryAll/" in path and "+FROM+Lead" in path)
            return None
        if self.edited:
            return None
        for record_id in self.accepted:
            _accept(self.crm, self.url, record_id)
        self.edited = True
        return "slow"


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_on_a_slow_network_a_reps_edit_made_after_the_pull_is_not_overwritten(tmp_path: Path, crm: str) -> None:
    """SQLite only: the store's part (the stale rows, the re-decision) is the first test's, on both
    backends; what this adds is real time on a slow connection, which the store does not change."""
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    with SANDBOX[crm](LEADS) as (app, url):
        accepted = _new_mqls(store, crm, url, app)
        rule = EditWhileAReadHangs(crm, url, accepted)
        with FaultProxy(url, [rule], slow_seconds=1.0) as proxy:
            report = SyncPass(store, MAKE[crm](proxy.url, timeout=0.5), DEFS,
                              recheck_after=timedelta(seconds=0.25)).run()
        assert rule.edited, "no read after the pull"
        assert report.outcome == "ok" and report.counts["stale_writes"] == EDITS, report.counts
        _kept(app, crm, accepted)
