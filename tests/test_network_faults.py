"""Each network fault (tests/faultproxy.py) on each CRM's reads, writes, task creates and login.

The outcome is the right result after retries, or one clear classified crmsync error: never a
library exception's traceback, never "no data", never a task created twice. The connectors talk
to the sandboxes through the proxy, with the real client libraries, via their base-URL settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from crmsync.crms.hubspot.connector import AuthError
from crmsync.errors import CrmsyncError, RetriableError
from crmsync.model import OwnerTask, WriteBack
from tests.builders import EPOCH, LATER
from tests.faultproxy import KINDS, Fault, FaultProxy
from tests.hubspot_fixtures import connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector

TIMEOUT, SLOW = 0.4, 0.9  # the client's timeout, and how late a `slow` answer comes

# (method, path pattern) of each operation's call
HUBSPOT_ROUTES = {
    "read": ("POST", r"^/crm/v3/objects/contacts/search"),
    "events": ("GET", r"^/events/v3/events/?(\?|$)"),  # the page reads, not the one event-types call
    "activities": ("POST", r"^/crm/v4/associations/contacts/"),
    "write": ("POST", r"^/crm/v3/objects/contacts/batch/update"),
    "tasks": ("POST", r"^/crm/v3/objects/tasks/batch/create"),
}
SALESFORCE_ROUTES = {
    "login": ("POST", r"^/services/oauth2/token"),
    "read": ("GET", r"/queryAll"),
    "activities": ("GET", r"/query/?\?q="),
    "write": ("PATCH", r"/composite/sobjects"),
    "tasks": ("POST", r"/composite/sobjects"),
}


@contextmanager
def through_proxy(crm: str, faults: list[Fault], size: int = 12) -> Iterator[tuple[Any, Any, FaultProxy]]:
    """A seeded sandbox, the proxy in front of it, and a connector (short timeout) pointed at the proxy."""
    sandbox = hubspot if crm == "hubspot" else salesforce
    tier = {"tier": "enterprise"} if crm == "hubspot" else {}  # the events API is Enterprise only
    with sandbox(size, **tier) as (app, url), FaultProxy(url, faults, slow_seconds=SLOW) as proxy:
        conn = connector(proxy.url, timeout=TIMEOUT) if crm == "hubspot" else sf_connector(proxy.url, timeout=TIMEOUT)
        conn.upstream_url = url  # for reading the expected result without the proxy
        yield app, conn, proxy


def records(app: Any) -> dict[str, Any]:
    return app.portal.records["contacts"] if hasattr(app, "portal") else app.org.records["Lead"]


def tasks_per_key(app: Any) -> Counter[str]:
    if hasattr(app, "portal"):
        keys = [t.properties.get("crmsync_task_key") for t in app.portal.records["tasks"].values()]
    else:
        keys = [t.get("CRMSync_Task_Key__c") for t in app.org.records["Task"].values()]
    return Counter(k for k in keys if k)  # the seeded activities have no key


def value_of(app: Any, record_id: str, name: str) -> Any:
    record = records(app)[record_id]
    return record.properties.get(name) if hasattr(record, "properties") else record.get(name)


def run_read(app: Any, conn: Any) -> None:
    pulled = [c.id for page in conn.pull_changed(EPOCH, LATER) for c in page.contacts]
    expected = {rid for rid, r in records(app).items() if not (isinstance(r, dict) and r.get("IsDeleted"))}
    assert sorted(pulled) == sorted(expected)


def run_events(app: Any, conn: Any) -> None:
    events = list(conn.events(EPOCH, LATER))
    assert app.portal.events and len(events) == len(app.portal.events)  # none silently dropped


EXPECTED_ACTIVITIES: dict[tuple[str, ...], dict[str, list[str]]] = {}
"""What a fault-free read of a seeded sandbox's activities gives, by record ids: read without the proxy
once per worker, not once per case (every case's sandbox is seeded alike: same seed, size and clock)."""


def run_activities(app: Any, conn: Any) -> None:
    ids = sorted(records(app))
    key = (type(app).__name__, *ids)
    if key not in EXPECTED_ACTIVITIES:
        direct = (connector if hasattr(app, "portal") else sf_connector)(conn.upstream_url)
        EXPECTED_ACTIVITIES[key] = {cid: sorted(map(repr, acts)) for cid, acts in direct.activities(ids).items()}
    expected = EXPECTED_ACTIVITIES[key]
    found = {cid: sorted(map(repr, acts)) for cid, acts in conn.activities(ids).items()}
    assert any(expected.values()) and found == expected  # none silently dropped


def run_write(app: Any, conn: Any) -> None:
    field = "crmsync_sla_state" if hasattr(app, "portal") else "CRMSync_SLA_State__c"
    ids = sorted(records(app))[:3]
    results = conn.write([WriteBack(i, {field: "at_risk"}) for i in ids])
    assert [r.ok for r in results] == [True] * 3, results
    assert [value_of(app, i, field) for i in ids] == ["at_risk"] * 3


def run_tasks(app: Any, conn: Any) -> None:
    ids = sorted(records(app))[:3]
    tasks = [OwnerTask(rid, None, "Document BANT", "budget missing", f"key-{n}") for n, rid in enumerate(ids)]
    results = conn.create_tasks(tasks)
    assert [r.ok for r in results] == [True] * 3, results
    assert tasks_per_key(app) == Counter({f"key-{n}": 1 for n in range(3)})  # exactly one task per key


RUN: dict[str, Callable[[Any, Any], None]] = {"read": run_read, "events": run_events, "write": run_write,
                                              "tasks": run_tasks, "login": run_read, "activities": run_activities}


def cases() -> Iterator[Any]:
    for crm, routes in (("hubspot", HUBSPOT_ROUTES), ("salesforce", SALESFORCE_ROUTES)):
        for op in routes:
            for kind in KINDS:
                if op == "tasks" and kind == "twice":
                    continue  # a create the network delivers twice: see test_a_create_delivered_twice...
                yield pytest.param(crm, op, kind, id=f"{crm}-{op}-{kind}")


@pytest.mark.parametrize(("crm", "op", "kind"), list(cases()))
def test_one_fault_gives_the_right_result_or_one_clear_error(crm: str, op: str, kind: str) -> None:
    method, path = (HUBSPOT_ROUTES if crm == "hubspot" else SALESFORCE_ROUTES)[op]
    with through_proxy(crm, [Fault(kind, method, path)]) as (app, conn, proxy):
        if kind == "unauthorized" and (crm == "hubspot" or op == "login"):
            # a private app token cannot be renewed, and a 401 from the token endpoint is a refusal:
            # one clear error, classified, naming the call and the setting to check
            with pytest.raises(AuthError, match="HTTP 401") as refused:
                RUN[op](app, conn)
            assert "\n" not in str(refused.value)
        else:
            RUN[op](app, conn)
        assert [(e.method, e.action) for e in proxy.injected()] == [(method, kind)], proxy.log
        if kind == "unauthorized" and crm == "salesforce" and op != "login":
            logins = [e for e in proxy.log if e.path.startswith("/services/oauth2/token")]
            assert len(logins) == 2  # renewed once, then the same call


def test_a_second_401_right_after_a_new_login_is_one_clear_fatal_line() -> None:
    with through_proxy("salesforce", [Fault("unauthorized", "GET", "/queryAll", times=2)]) as (app, conn, _proxy):
        with pytest.raises(AuthError, match="again right after a new login") as refused:
            run_read(app, conn)
        assert "\n" not in str(refused.value)
        assert refused.value.__context__ is None  # raised outside the `except`: no SalesforceExpiredSession chain
        assert app.call_counts()["oauth.token"] == 2


@pytest.mark.parametrize("kind", ["html503", "empty", "truncated", "reset_during"])
def test_a_login_that_keeps_failing_is_retriable_not_bad_credentials(kind: str) -> None:
    with through_proxy("salesforce", [Fault(kind, "POST", "/oauth2/token", times=100)]) as (app, conn, _proxy):
        with pytest.raises(RetriableError, match="Salesforce login") as failed:
            run_read(app, conn)
        assert not isinstance(failed.value, AuthError)
        assert app.call_counts().get("queryAll", 0) == 0


def test_wrong_credentials_are_still_bad_credentials() -> None:
    with through_proxy("salesforce", []) as (app, conn, _proxy):
        app.org.credentials = {"client_id": "someone-else"}
        with pytest.raises(AuthError, match=r"invalid_grant.*credentials are wrong"):
            run_read(app, conn)


@pytest.mark.parametrize(("crm", "op", "kind"), [
    ("hubspot", "events", "empty"), ("hubspot", "events", "truncated"), ("hubspot", "read", "truncated"),
    ("hubspot", "read", "empty"), ("salesforce", "read", "empty"), ("salesforce", "read", "truncated"),
    ("salesforce", "write", "empty"), ("salesforce", "write", "truncated"),
])
def test_a_malformed_answer_that_persists_fails_the_call_never_reads_as_no_data(crm: str, op: str, kind: str) -> None:
    method, path = (HUBSPOT_ROUTES if crm == "hubspot" else SALESFORCE_ROUTES)[op]
    with through_proxy(crm, [Fault(kind, method, path, times=1000)]) as (app, conn, _proxy):
        with pytest.raises(RetriableError) as failed:
            RUN[op](app, conn)
        message = str(failed.value)
        assert "HTTP 200" in message or "incomplete" in message
        assert "never read as no data" in message and "\n" not in message


def test_every_fault_is_a_crmsync_error_when_it_never_ends() -> None:
    """Whatever the kind, a fault on every call ends in crmsync's own error (no library exception)."""
    for kind in KINDS:
        for crm, op in (("hubspot", "read"), ("salesforce", "read")):
            method, path = (HUBSPOT_ROUTES if crm == "hubspot" else SALESFORCE_ROUTES)[op]
            if kind == "twice":
                continue  # not a failure
            with through_proxy(crm, [Fault(kind, method, path, times=1000)], size=2) as (app, conn, _proxy):
                conn.retry = type(conn.retry)(attempts=2, initial_wait=0.001, max_wait=0.001, sleep=lambda _s: None)
                with pytest.raises(CrmsyncError):
                    RUN[op](app, conn)


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_create_delivered_twice_by_the_network_is_not_retried_into_a_third(crm: str) -> None:
    """A gateway that delivers a create twice makes two tasks in the CRM (only a unique key in the
    CRM could refuse the second); crmsync's own retries must not add a third, and a later pass
    finds the key and creates nothing."""
    method, path = (HUBSPOT_ROUTES if crm == "hubspot" else SALESFORCE_ROUTES)["tasks"]
    with through_proxy(crm, [Fault("twice", method, path)]) as (app, conn, _proxy):
        rid = sorted(records(app))[0]
        task = OwnerTask(rid, None, "Document BANT", "budget missing", "key-twice")
        assert conn.create_tasks([task])[0].ok
        assert conn.create_tasks([task])[0].ok
        assert tasks_per_key(app)["key-twice"] == 2


def test_setup_survives_a_cut_short_answer() -> None:
    with hubspot(0, crmsync_properties=False) as (app, url), \
            FaultProxy(url, [Fault("truncated", "GET", r"^/crm/v3/properties/contacts")]) as proxy:
        created = connector(proxy.url, timeout=TIMEOUT).setup()
        assert "crmsync_fit" in created and len(proxy.injected()) == 1
        assert "crmsync_fit" in app.portal.properties["contacts"]


HUBSPOT_MIX = [Fault("truncated", "POST", r"^/crm/v3/objects/contacts/search"),
               Fault("empty", "GET", r"^/events/v3/events"),
               Fault("html502", "POST", r"^/crm/v4/associations/contacts/"),
               Fault("slow", "POST", r"^/crm/v3/objects/contacts/batch/update"),
               Fault("reset_during", "POST", r"^/crm/v3/objects/tasks/batch/create"),
               Fault("truncated", "POST", r"^/crm/v3/objects/tasks/search", skip=1)]  # the retry's key lookup
SALESFORCE_MIX = [Fault("truncated", "POST", r"^/services/oauth2/token"),
                  Fault("empty", "GET", r"/queryAll"),
                  Fault("unauthorized", "GET", r"/query/?\?q="),
                  Fault("slow", "PATCH", r"/composite/sobjects"),
                  Fault("reset_during", "POST", r"/composite/sobjects"),
                  Fault("empty", "GET", r"q=SELECT\+CRMSync_Task_Key__c", skip=1)]  # the retry's key lookup


def crm_state(app: Any) -> Any:
    """What crmsync is responsible for in the CRM (timestamps by presence), and the tasks it made."""
    if hasattr(app, "portal"):
        from tests.test_resilience import crm_state as hubspot_state

        return hubspot_state(app)
    leads = {rid: {k: (bool(v) if k.endswith("_At__c") else v) for k, v in r.items()
                   if k == "Status" or (k.startswith("CRMSync_") and k != "CRMSync_Task_Key__c")}
             for rid, r in app.org.records["Lead"].items()}
    tasks = sorted((t["WhoId"], t["Subject"], t["CRMSync_Task_Key__c"]) for t in app.org.records["Task"].values()
                   if t.get("CRMSync_Task_Key__c"))
    return {"leads": leads, "tasks": tasks}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_pass_through_a_hostile_network_ends_as_the_fault_free_pass(crm: str, tmp_path: Any) -> None:
    """A whole pass (pull, activities, events, decide, write, tasks) with one fault of several kinds
    on each of its calls: the CRM ends as after a fault-free pass, nothing lost, no task twice."""
    from crmsync.store import Store
    from crmsync.sync import SyncPass
    from tests.hubspot_fixtures import DEFS

    sandbox = hubspot if crm == "hubspot" else salesforce
    now = datetime.now(UTC)  # both passes decide at the same moment: engagement decays, SLA clocks run
    with sandbox(40) as (clean, url):
        direct = connector(url) if crm == "hubspot" else sf_connector(url)
        SyncPass(Store.open(f"sqlite:///{tmp_path / 'clean.db'}"), direct, DEFS, clock=lambda: now).run()
        expected = crm_state(clean)
    assert expected["tasks"] and len(expected["tasks"]) == len(set(expected["tasks"]))
    # fresh rules: a Fault counts the requests it saw (a second run of this test in one process saw none)
    mix = [Fault(f.kind, f.method, f.path, f.times, f.skip)
           for f in (HUBSPOT_MIX if crm == "hubspot" else SALESFORCE_MIX)]
    with through_proxy(crm, mix, size=40) as (app, conn, proxy):
        report = SyncPass(Store.open(f"sqlite:///{tmp_path / 'faulty.db'}"), conn, DEFS, clock=lambda: now).run()
        assert report.outcome == "ok"
        assert len(proxy.injected()) == 6, proxy.injected()
        assert crm_state(app) == expected
