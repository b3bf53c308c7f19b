"""Fencing: a replica writes only while it holds the stream's lease. Its token is checked and the
lease renewed before every CRM write call; a replica that lost it stops before its next call."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from crmsync.daemon import Daemon
from crmsync.errors import LeaseLost
from crmsync.sandbox.http import Request, Response
from crmsync.settings import HttpSettings, Settings, SyncSettings
from crmsync.store import Store
from crmsync.sync import SyncPass
from crmsync.sync.lease import Lease
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.test_daemon import wait_for

WRITES = ("/batch/update", "/batch/create")
LEASE = "sync:hubspot"


def test_a_pass_that_lost_its_lease_writes_nothing_and_ends_interrupted(database_url: str) -> None:
    store = Store.open(database_url)
    with hubspot(50) as (app, url):
        lease = Lease.take(store, LEASE, "a", timedelta(seconds=30))
        assert lease is not None
        lost = SyncPass(store, connector(url), DEFS, lease=lease, progress=lambda _r: _taken_over(store))
        with pytest.raises(LeaseLost):
            lost.run()
        assert not any(endpoint.startswith("objects.batch_") and "read" not in endpoint
                       for endpoint in app.call_counts())  # not one write batch
        assert store.runs()[0]["outcome"] == "interrupted"
        assert store.outbox_depth("hubspot") > 0  # the decisions wait for the new holder


def test_the_lease_is_checked_before_every_write_call_of_a_batch_not_only_its_first(database_url: str) -> None:
    """A backward lifecycle move on HubSpot is two calls (a clear, then the set of the same records).
    When the lease is lost while the clear is in flight, the set is not sent: it would land after
    another replica took over, over whatever was decided or edited since. The records wait, cleared,
    for the new holder, which finishes the move. The takeover happens inside the CRM's handling of the
    clear (a pause point, no load or timing)."""
    store = Store.open(database_url)
    with hubspot(50) as (app, url):
        dispatch, writes, cleared, taken = app.dispatch, [], [], threading.Event()

        def crm(request: Request) -> Response | None:
            if request.method == "POST" and request.path.endswith(WRITES):
                inputs = request.json().get("inputs", [])
                writes.append((taken.is_set(), [str(i.get("id", "")) for i in inputs]))
                clear = bool(inputs) and all(i.get("properties") == {"lifecyclestage": ""} for i in inputs)
                if clear and not taken.is_set():
                    cleared.extend(writes[-1][1])
                    _taken_over(store)  # the lease runs out while the clear is in flight
                    taken.set()
            return dispatch(request)

        app.dispatch = crm
        lease = Lease.take(store, LEASE, "a", timedelta(seconds=30))
        assert lease is not None
        with pytest.raises(LeaseLost):
            SyncPass(store, connector(url), DEFS, lease=lease).run()
        assert taken.is_set(), writes  # the data set has backward moves: a clear was sent under the lease
        assert [ids for after, ids in writes if after] == []  # not the set, nor any later batch
        assert store.outbox_depth("hubspot") > 0
        new_holder = Lease(store, LEASE, "b", 2, timedelta(seconds=30))
        assert SyncPass(store, connector(url), DEFS, lease=new_holder).run().outcome == "ok"
        stages = {i: app.portal.records["contacts"][i].properties.get("lifecyclestage", "") for i in cleared}
        assert stages and all(stages.values()), stages  # the new holder finished every move the clear began


def _taken_over(store: Store) -> None:
    """The lease runs out and another replica takes it (token + 1)."""
    holder = store.lease_holder(LEASE)
    assert holder is not None
    store.renew_lease(LEASE, holder[0], 1, timedelta(seconds=-1))
    assert store.acquire_lease(LEASE, "b", timedelta(seconds=30)) == 2


@dataclass
class SlowCrm:
    """A slow wrapper around the sandbox's transport: a write of replica A (known by its token) takes
    until replica B holds the lease, i.e. longer than A's lease. Logs every write: the replica, the
    records, when it arrived and ended, and the other replica holding a live lease when it arrived."""

    app: Any
    store: Store
    slow_token: str
    fast_holder: str
    log: list[tuple[str, list[str], float, float, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slow_write_started: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.dispatch = self.app.dispatch
        self.app.dispatch = self

    def __call__(self, request: Request) -> Response | None:
        if not (request.method == "POST" and request.path.endswith(WRITES)):
            return self.dispatch(request)
        token = request.headers.get("Authorization", "").partition(" ")[2]
        started = time.monotonic()
        lease = self.store.lease_holder(LEASE)
        other = lease[0] if lease and lease[1] > datetime.now(UTC) and lease[0] != token.removeprefix("pat-") else None
        if token == self.slow_token:
            self.slow_write_started.set()
            wait_for(lambda: (h := self.store.lease_holder(LEASE)) and h[0] == self.fast_holder, seconds=60,
                     what="replica B to take the lease")
        response = self.dispatch(request)
        ids = [str(i.get("id", "")) for i in request.json().get("inputs", [])]
        with self.lock:
            records = ids if "/contacts/" in request.path else ["task"]
            self.log.append((token, records, started, time.monotonic(), other))
        return response


def test_two_daemons_on_postgres_no_write_batch_from_the_replica_that_lost_the_lease(
        postgres_url: str, tmp_path: Path) -> None:
    store = Store.open(postgres_url)
    with hubspot(300, token=None, real_clock=True) as (app, url):
        slow = SlowCrm(app, store, slow_token="pat-replica-a", fast_holder="replica-b")
        config = Settings(database_url=postgres_url, hubspot={"access_token": SecretStr("pat-x"), "base_url": url},
                          http=HttpSettings(port=0), sync=SyncSettings(interval_seconds=1, lease_seconds=2))
        first = Daemon(config, DEFS, Store.open(postgres_url), {"hubspot": connector(url, token="pat-replica-a",
                                                                                      timeout=90)},
                       holder="replica-a")
        second = Daemon(config, DEFS, Store.open(postgres_url), {"hubspot": connector(url, token="pat-replica-b")},
                        holder="replica-b")
        first.start()
        try:
            wait_for(slow.slow_write_started.is_set, seconds=60, what="replica A's first write batch")
            second.start()
            wait_for(lambda: any(r["outcome"] == "interrupted" for r in store.runs(20)), seconds=60,
                     what="replica A's pass to stop")
            wait_for(lambda: store.outbox_depth("hubspot") == 0 and any(r["outcome"] == "ok" for r in store.runs(50)),
                     seconds=60, what="replica B to finish a pass and the writes")
        finally:
            first.stop()
            second.stop()
        by_a = [entry for entry in slow.log if entry[0] == "pat-replica-a"]
        by_b = [entry for entry in slow.log if entry[0] == "pat-replica-b"]
        # What matters: no write of A's reaches the CRM while B holds the lease. The call in flight when A's
        # lease ran out (held until B took over) is A's last under that lease: the next call, even the set
        # after a clear, is fenced. Under load B's 2 s lease can lapse between its passes and A take it
        # back (a new token): A writes again then, rightly, so A's calls are not counted, B's lease is.
        assert by_a and all(len(ids) <= 100 for _t, ids, _s, _e, _o in by_a), by_a
        assert [(ids, other) for _t, ids, _s, _e, other in by_a if other is not None] == [], by_a
        assert by_b and min(start for _t, _i, start, _e, _o in by_b) > by_a[0][2]
        runs = sorted(store.runs(50), key=lambda r: r["id"])
        assert runs[0]["outcome"] == "interrupted" and "ok" in {r["outcome"] for r in runs[1:]}  # A's, then B's
        assert 'outcome="interrupted"' in first.metrics.exposition().decode()
        assert store.lease_holder(LEASE) is None or store.lease_holder(LEASE)[0] != "replica-a"  # type: ignore[index]

