"""The HubSpot connector keeps its connections: one pass opens one, not one per call (`_Apis` in
crmsync/crms/hubspot/connector.py), and a kept connection the server closed or broke never fails the next call."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from urllib3.util import wait_for_read

from crmsync.crms.hubspot.connector import OBJECTS, HubSpotConnector
from crmsync.errors import AuthError
from crmsync.store import Store
from crmsync.sync.pipeline import SyncPass
from tests.faultproxy import Fault, FaultProxy
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot


def _read(conn: HubSpotConnector, ids: list[str]) -> list[str]:
    """One batch read of these contacts' emails (one call): the ids it answered."""
    body = {"inputs": [{"id": i} for i in ids], "properties": ["email"], "propertiesWithHistory": []}
    answer = conn._read("read contacts", conn.client.crm.contacts.batch_api.read, OBJECTS,
                        batch_read_input_simple_public_object_id=body)
    return sorted(o["id"] for o in answer["results"])


def _kept(conn: HubSpotConnector) -> list[Any]:
    """The connections this thread's pool keeps (idle, ready for the next call)."""
    pool = conn._apis.pool
    assert pool is not None
    return [c for p in pool.pools._container.values() for c in list(p.pool.queue) if c is not None]


def test_a_pass_opens_one_connection_not_one_per_call(tmp_path: Path) -> None:
    """60 contacts: every kind of call a pass makes (searches of contacts and deals, association, engagement
    and history batch reads, event types, lifecycle stages, batch updates, task search and create) on one
    kept connection; the client alone opened one per call (32 for the 33 calls of 400 contacts). Retries
    stay off in the kept pool: `RetryPolicy` is the only one to retry."""
    with hubspot(60) as (app, url):
        conn = connector(url)
        SyncPass(Store.open(f"sqlite:///{tmp_path / 's.db'}"), conn, DEFS).run()
        assert conn.calls >= 10 and app.connections == 1, (conn.calls, app.connections)
        assert conn._apis.pool is not None
        retries = conn._apis.pool.connection_pool_kw["retries"]
        assert (retries.total, retries.connect, retries.read, retries.status) == (0, 0, 0, 0)
        clients = {id(api.api_client.rest_client.pool_manager) for api in conn._apis.apis.values()}
        assert len(conn._apis.apis) >= 5 and clients == {id(conn._apis.pool)}


def test_a_kept_connection_the_server_closed_is_not_used_for_the_next_call() -> None:
    """The server closes the kept-alive connection after its answer (as at the end of its keep-alive idle
    time): the next call opens a new connection and succeeds at its first attempt, no retry."""
    with hubspot(3) as (app, url), FaultProxy(url, [Fault("close_after", "POST", "/batch/read", times=1)]) as proxy:
        conn = connector(proxy.url)
        ids = sorted(app.portal.records["contacts"])
        assert _read(conn, ids) == ids
        (kept,) = _kept(conn)
        deadline = time.monotonic() + 5
        while not wait_for_read(kept.sock, timeout=0.05):  # the proxy's FIN has reached the client
            assert time.monotonic() < deadline, "the proxy did not close the connection"
        calls = conn.calls
        assert _read(conn, ids) == ids
        assert conn.calls == calls + 1
        assert [e.action for e in proxy.log] == ["close_after", "forwarded"]


@pytest.mark.parametrize("kind", ["reset_during", "reset_before", "truncated"])
def test_a_connection_broken_mid_answer_does_not_poison_the_pool(kind: str) -> None:
    """A kept connection broken while answering (reset, cut short) fails that attempt only: it is not put
    back in the pool, the retry and every later call work on a new connection."""
    with hubspot(3) as (app, url), FaultProxy(url, [Fault(kind, "POST", "/batch/read", skip=1, times=1)]) as proxy:
        conn = connector(proxy.url)
        ids = sorted(app.portal.records["contacts"])
        assert _read(conn, ids) == ids  # the connection is now kept
        for _ in range(3):
            assert _read(conn, ids) == ids
        assert conn.calls == 5  # 4 calls, the broken one tried twice
        assert [e.action for e in proxy.log] == ["forwarded", kind, "forwarded", "forwarded", "forwarded"]
        assert len(_kept(conn)) == 1


def test_a_new_token_reaches_the_kept_api_objects() -> None:
    """The API objects are built with the client's token: a client given another one drops them, and the
    next call sends the new token (the sandbox refuses any but its own)."""
    with hubspot(2) as (app, url):
        conn = connector(url)
        ids = sorted(app.portal.records["contacts"])
        assert _read(conn, ids) == ids
        conn.client.access_token = "pat-na1-revoked"
        with pytest.raises(AuthError, match="HTTP 401"):
            _read(conn, ids)
        conn.client.access_token = TOKEN
        assert _read(conn, ids) == ids


def test_each_thread_has_its_own_api_objects_and_keeps_them() -> None:
    """`_attempt` reads each answer from its ApiClient's `last_response`: two threads never share one."""
    conn = connector("http://127.0.0.1:9")  # never called
    mine = conn.client.crm.contacts.batch_api
    assert conn.client.crm.contacts.batch_api is mine
    assert conn.client.crm.contacts.search_api.api_client is mine.api_client  # one ApiClient per package
    theirs: list[Any] = []
    thread = threading.Thread(target=lambda: theirs.append(conn.client.crm.contacts.batch_api))
    thread.start()
    thread.join()
    assert theirs[0] is not mine and theirs[0].api_client is not mine.api_client


def test_connections_idle_between_passes_are_closed_before_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection idle longer than IDLE_SECONDS may have been dropped by the network without a word: it is
    closed before the next call, which opens a new one (here every call, with IDLE_SECONDS at 0)."""
    with hubspot(2) as (app, url):
        conn = connector(url)
        ids = sorted(app.portal.records["contacts"])
        assert _read(conn, ids) == ids and _read(conn, ids) == ids and app.connections == 1
        monkeypatch.setattr("crmsync.crms.hubspot.connector.IDLE_SECONDS", 0.0)
        assert _read(conn, ids) == ids and _read(conn, ids) == ids and app.connections == 3
