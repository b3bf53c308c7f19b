"""The store on SQLite and on the local PostgreSQL: migrations, cursors, outbox, quarantine, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmsync.model import Activity
from crmsync.store import Store, fingerprint


def test_migrations_apply_and_reopen(empty_database_url: str) -> None:
    store = Store.open(empty_database_url)
    store.close()
    again = Store.open(empty_database_url)  # a second open finds the schema at head and changes nothing
    assert again.cursor("hubspot", "contacts") is None
    again.close()


def test_cursor_and_checkpoint_round_trip(database_url: str) -> None:
    store = Store.open(database_url)
    when = datetime(2026, 11, 25, 10, 30, 15, 123000, tzinfo=UTC)
    frozen = when + timedelta(days=1)
    with store.transaction() as c:
        store.set_cursor(c, "hubspot", "backfill:x", when, upper_bound=frozen)
    assert store.unfinished("hubspot", "backfill:x") == (frozen, None)
    with store.transaction() as c:
        store.set_checkpoint(c, "hubspot", "backfill:x", "1234")
    assert store.cursor("hubspot", "backfill:x") == when
    assert store.unfinished("hubspot", "backfill:x") == (frozen, "1234")
    with store.transaction() as c:  # the window completes: nothing is left to resume
        store.set_cursor(c, "hubspot", "backfill:x", frozen)
    assert store.unfinished("hubspot", "backfill:x") == (None, None)
    assert store.cursor("hubspot", "backfill:x") == frozen
    assert store.unfinished("hubspot", "contacts") == (None, None)


def test_a_failed_transaction_leaves_nothing(database_url: str) -> None:
    store = Store.open(database_url)
    try:
        with store.transaction() as c:
            store.set_cursor(c, "hubspot", "contacts", datetime(2026, 1, 1, tzinfo=UTC))
            store.enqueue(c, "hubspot", "1", "write", "k1", {"properties": {}}, "pending", None)
            raise RuntimeError("crash in the middle of a page")
    except RuntimeError:
        pass
    assert store.cursor("hubspot", "contacts") is None
    assert store.outbox_depth() == 0


def test_outbox_is_idempotent_and_newer_writes_supersede(database_url: str) -> None:
    store = Store.open(database_url)
    with store.transaction() as c:
        store.enqueue(c, "hubspot", "1", "write", "k1", {"properties": {"a": "1"}}, "pending", None)
        store.enqueue(c, "hubspot", "1", "write", "k1", {"properties": {"a": "1"}}, "pending", None)
    assert store.outbox_depth() == 1
    with store.transaction() as c:
        store.enqueue(c, "hubspot", "1", "write", "k2", {"properties": {"a": "2"}}, "pending", None)
        store.enqueue(c, "hubspot", "1", "task", "t1", {"subject": "x"}, "pending", None)
    pending = store.pending("hubspot", "write", 10)
    assert [row["key"] for row in pending] == ["k2"]
    assert [row["status"] for row in store.outbox_rows("hubspot")] == ["superseded", "pending", "pending"]
    store.acknowledge([(pending[0]["id"], "done", None)])
    assert store.outbox_depth() == 1  # the task


def test_quarantine_counts_and_release(database_url: str) -> None:
    store = Store.open(database_url)
    with store.transaction() as c:
        store.quarantine(c, "hubspot", "7", "read", "bad lead status")
        store.quarantine(c, "hubspot", "7", "read", "bad lead status")
    rows = store.quarantined()
    assert len(rows) == 1 and rows[0]["count"] == 2
    with store.transaction() as c:
        store.release(c, "hubspot", ["7"])
    assert store.quarantined() == []


def test_leases_exclude_and_expire(database_url: str) -> None:
    store = Store.open(database_url)
    assert store.acquire_lease("sync:hubspot", "a", timedelta(seconds=30))
    assert not store.acquire_lease("sync:hubspot", "b", timedelta(seconds=30))
    assert store.acquire_lease("sync:hubspot", "a", timedelta(seconds=30))  # renewal
    assert store.acquire_lease("sync:hubspot", "a", timedelta(seconds=-1))  # expire it now
    assert store.acquire_lease("sync:hubspot", "b", timedelta(seconds=30))  # the standby takes over
    store.release_lease("sync:hubspot", "b")
    assert store.lease_holder("sync:hubspot") is None


def test_lease_tokens_fence_a_replica_that_lost_its_lease(database_url: str) -> None:
    store = Store.open(database_url)
    first = store.acquire_lease("sync:hubspot", "a", timedelta(seconds=30))
    assert first == 1 and store.acquire_lease("sync:hubspot", "a", timedelta(seconds=30)) == first  # renewal keeps it
    assert store.renew_lease("sync:hubspot", "a", first, timedelta(seconds=-1))  # expire it now
    assert not store.renew_lease("sync:hubspot", "a", first, timedelta(seconds=30))  # expired: lost, even unclaimed
    second = store.acquire_lease("sync:hubspot", "b", timedelta(seconds=30))
    assert second == first + 1
    assert not store.renew_lease("sync:hubspot", "a", first, timedelta(seconds=30))
    assert store.renew_lease("sync:hubspot", "b", second, timedelta(seconds=30))
    store.release_lease("sync:hubspot", "b")
    assert store.acquire_lease("sync:hubspot", "a", timedelta(seconds=30)) == 1  # a released lease starts over


def test_runs_left_running_are_closed_as_interrupted_unless_leased(database_url: str) -> None:
    store = Store.open(database_url)
    killed = store.start_run("hubspot", "sync", "enforce", None)
    other = store.start_run("salesforce", "sync", "enforce", None)
    store.acquire_lease("sync:hubspot", "live", timedelta(seconds=30))
    assert store.close_stale_runs("hubspot", ["sync"], unless_leased="sync:hubspot") == 0  # a replica may run it
    assert store.close_stale_runs("hubspot", ["sync"]) == 1  # the lease holder knows nobody else runs one
    outcomes = {r["id"]: r["outcome"] for r in store.runs()}
    assert outcomes == {killed: "interrupted", other: "running"}


def test_activities_are_stored_once(database_url: str) -> None:
    store = Store.open(database_url)
    when = datetime(2026, 11, 1, tzinfo=UTC)
    items = [("1", Activity("e1", "page_view", when, "/pricing")), ("1", Activity("e1", "page_view", when, "/pricing")),
             ("2", Activity("e2", "form_submission", when, "Demo request"))]
    store.add_activities("hubspot", items)
    store.add_activities("hubspot", items)
    found = store.activities_for("hubspot", ["1", "2", "3"])
    assert [a.id for a in found["1"]] == ["e1"] and found["2"][0].detail == "Demo request"
    assert found["1"][0].occurred_at == when


def test_fingerprint_is_stable() -> None:
    assert fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
