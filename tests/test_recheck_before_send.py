"""A person's later edit wins over a write decided in the same pass: before a write batch's first send,
the writes whose record was read `sync.recheck_after_seconds` or longer ago are re-read (one batch read)
and dropped + re-decided where a rep changed the record since the pull; fresh writes go out as decided,
with no extra call. The rep edits through the official clients (hubspot-api-client, simple-salesforce)
against the sandboxes; time is an injected timer, or a real slow network through the fault proxy."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from tests.faultproxy import FaultProxy
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_later_edits_win import ACCEPTED, READ, _accept, _state, _to_mql

EDITS = 3
LEADS = 80
MAKE = {"hubspot": connector, "salesforce": sf_connector}
SANDBOX = {"hubspot": hubspot, "salesforce": salesforce}


class Timer:
    """The pass's monotonic timer, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _new_mqls(store: Store, crm: str, url: str, app: Any) -> list[str]:
    """Records this first pass will make MQLs (lead status new), from a dry run (it stores and writes nothing)."""
    plan = SyncPass(store, MAKE[crm](url), DEFS, dry_run=True).run().plan
    found = [p["record_id"] for p in plan if _to_mql(crm, p["properties"])
             and _state(app, crm, p["record_id"])[1] in (None, "", "NEW", "Open - Not Contacted")]
    assert len(found) >= EDITS
    return found[:EDITS]


def _kept(app: Any, crm: str, accepted: list[str]) -> None:
    for record_id in accepted:  # the rep's status stands, and the record was re-decided from it: SAL
        stage, status = _state(app, crm, record_id)
        assert status == ACCEPTED[crm], f"{record_id}: crmsync wrote {status} over the rep's edit"
        assert stage == ("sal" if crm == "hubspot" else "SAL"), record_id


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_reps_edit_between_the_pull_and_a_write_older_than_the_threshold_is_kept(database_url: str,
                                                                                   crm: str) -> None:
    store = Store.open(database_url)
    with SANDBOX[crm](LEADS) as (app, url):
        accepted = _new_mqls(store, crm, url, app)
        timer = Timer()

        def slow_pass(_report: PassReport) -> None:
            """After a page is decided, before the pass's flush: the rep accepts the MQLs, and the pass
            goes on for longer than the threshold (say, retried reads on a slow network)."""
            if timer.now == 100.0:
                for record_id in accepted:
                    _accept(crm, url, record_id)
            timer.now += 6.0

        calls: Counter[str] = Counter()
        conn = MAKE[crm](url)
        conn.on_call = lambda what, _status: calls.update([what])
        report = SyncPass(store, conn, DEFS, progress=slow_pass, timer=timer).run()
        assert report.outcome == "ok" and report.counts["stale_writes"] == EDITS
        assert calls[READ[crm]] == 1  # the aged batch re-read in one call; the re-decided writes were fresh
        _kept(app, crm, accepted)
        assert sorted(r["record_id"] for r in store.outbox_rows(crm, "stale")) == sorted(accepted)
        assert store.outbox_depth() == 0  # the re-decided writes went out in the same flush


@pytest.mark.parametrize("after", [5.0, 0.0])
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_fresh_write_costs_no_extra_read_and_zero_rereads_every_batch(database_url: str, crm: str,
                                                                        after: float) -> None:
    """A healthy pass (the writes younger than the threshold) makes no read call before its writes; with
    `recheck_after` 0 every write batch is re-read first, one read call each."""
    store = Store.open(database_url)
    with SANDBOX[crm](250) as (_app, url):
        calls: Counter[str] = Counter()
        conn = MAKE[crm](url)
        conn.on_call = lambda what, _status: calls.update([what])
        report = SyncPass(store, conn, DEFS, timer=Timer(), recheck_after=timedelta(seconds=after)).run()
    assert report.outcome == "ok" and report.counts["written"] == 250, report.counts
    batches = math.ceil(250 / conn.write_batch)
    assert calls[READ[crm]] == (0 if after else batches), dict(calls)


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
def test_on_a_slow_network_a_reps_edit_made_after_the_pull_is_not_overwritten(database_url: str, crm: str) -> None:
    store = Store.open(database_url)
    with SANDBOX[crm](LEADS) as (app, url):
        accepted = _new_mqls(store, crm, url, app)
        rule = EditWhileAReadHangs(crm, url, accepted)
        with FaultProxy(url, [rule], slow_seconds=1.0) as proxy:
            report = SyncPass(store, MAKE[crm](proxy.url, timeout=0.5), DEFS,
                              recheck_after=timedelta(seconds=0.25)).run()
        assert rule.edited, "no read after the pull"
        assert report.outcome == "ok" and report.counts["stale_writes"] == EDITS, report.counts
        _kept(app, crm, accepted)
