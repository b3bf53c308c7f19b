"""The soak (scripts/soak.py) at a small size: the daemon against both sandboxes through the fault
proxy (a seeded mix of every network fault kind on reads, writes, task creates and login), with the
sandboxes' own faults, SIGKILL restarts and human edits during the run, ends as the fault-free run of
the same seed: no difference, no task twice, no traceback, no person's edit lost.

By default (every CI run): 40 leads per CRM, 12 s of faults over the four phases, two SIGKILL
restarts (in the first two phases: one before any edit, one after the first round) and a 4 s lease,
so that a restarted daemon syncs again soon: every fault kind, kills mid-pass and all three rounds of
edits still happen, and the assertions below check that they did. CRMSYNC_TEST_SCALE=nightly: 120
leads, 40 s, four kills (one in every phase, the last after the final round of edits), the soak
script's 8 s lease, and PostgreSQL as well as SQLite."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import pickle
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.builders import NIGHTLY, ROOT, scaled

_spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
assert _spec is not None and _spec.loader is not None
soak: Any = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak  # dataclasses look their module up there
_spec.loader.exec_module(soak)

SIZE = {"leads": scaled(ci=40, nightly=120), "seed": 2026, "seconds": scaled(ci=12, nightly=40), "quiet": 2.0,
        "lease": scaled(ci=4, nightly=8)}
KILLS = scaled(ci=2, nightly=4)


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """The fault-free run of the seed, shared by both stores (the CRM end state does not depend on it)
    and made once per test session: under xdist the tests using it may run on different workers, and
    the first to ask makes it while the others wait on a lock in the session's shared temporary
    directory, then read it from there."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base  # xdist: one per worker under it
    saved = shared / "soak-fault-free.pickle"
    with open(shared / "soak-fault-free.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if saved.exists():
            return pickle.loads(saved.read_bytes())
        workdir = tmp_path_factory.mktemp("fault-free")
        outcome = soak.one_run(**SIZE, kills=0, database_url=f"sqlite:///{workdir / 'calm.db'}", workdir=workdir,
                               chaotic=False)
        saved.write_bytes(pickle.dumps(outcome))
        return outcome


# The store's own tests run on both backends; the soak, a minute and more of real time, runs on
# PostgreSQL too with CRMSYNC_TEST_SCALE=nightly.
@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
                         if NIGHTLY else ["sqlite"], indirect=True)
def test_the_soak_under_every_network_fault_and_kill_ends_as_the_fault_free_run(
        database_url: str, fault_free: Any, tmp_path: Path) -> None:
    @contextmanager
    def databases(label: str) -> Iterator[str]:
        yield database_url

    lines: list[str] = []
    found = soak.soak(**SIZE, kills=KILLS, workdir=tmp_path, databases=databases, calm=fault_free,
                      twice_creates=False, read_rate=0.06, write_rate=0.3)
    soak.report(found, lines.append)
    summary = "\n".join(lines)
    assert found.chaos.kills == KILLS, summary
    assert found.calm.behind == found.chaos.behind == [], summary  # each round once the daemon caught up
    kinds = {key.split()[-1] for key in found.chaos.faults}
    assert len(kinds & set(soak.KINDS)) >= 5, summary  # a real mix of network faults, not one kind
    assert {key.split()[1] for key in found.chaos.faults} >= {"read", "write", "sandbox"}, summary
    assert found.differences == [], summary
    assert found.duplicates == [], summary
    assert found.tracebacks == [], summary
    assert found.lost_edits == [], summary
    assert found.calm.state["task_keys"], "the fault-free run made owner tasks: the task comparison means something"


def test_each_round_of_edits_waits_for_the_daemon_so_the_fault_free_run_does_not_depend_on_its_speed(
        fault_free: Any, tmp_path: Path) -> None:
    """The soak's oracle: the fault-free run makes each round of edits once the daemon has caught up
    with the last (a pass that pulled after them ended and the outbox is empty), however slowly the
    daemon starts or works. With no time given to the phases at all, every round would otherwise be
    made before the daemon's first pull, or during a pass that pulled before it (which sends what it
    decided then, docs/operations.md "A person's later edit wins"): another end state."""
    quick = soak.one_run(**{**SIZE, "seconds": 0}, kills=0, database_url=f"sqlite:///{tmp_path / 'quick.db'}",
                         workdir=tmp_path, chaotic=False)
    differences = [f"{crm} {rid}: {values} with time to settle, {quick.state[crm].get(rid)} with none"
                   for crm in ("hubspot", "salesforce") for rid, values in fault_free.state[crm].items()
                   if quick.state[crm].get(rid) != values]
    assert quick.behind == [], f"rounds of edits made before the daemon caught up: {quick.behind}"
    assert differences == [], "\n".join(differences)


class EditDuringTheWrite:
    """A rep's edit (lead status Unqualified, reason "not interested") to the first record of the first
    write batch, made as the batch arrives, before it is forwarded: between the pass's pull and its write.
    `since` is the moment after the edit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.since: datetime | None = None

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None:
        if self.since is None and method == "POST" and "batch/update" in path:
            rid = json.loads(body)["inputs"][0]["id"]
            with self.app.lock:
                self.app.portal.update("contacts", rid, {"hs_lead_status": "UNQUALIFIED",
                                                         "crmsync_dq_reason": "not interested"})
            self.since = datetime.now(UTC)
        return None


def test_the_daemon_has_caught_up_with_an_edit_only_after_a_pass_that_pulled_after_it(tmp_path: Path) -> None:
    """The soak's wait (`caught_up`): an edit made while a pass writes what it decided from an earlier
    pull is not seen by that pass, though it ends ok after the edit with nothing left to send; the next
    pass sees it."""
    from crmsync.store import Store
    from crmsync.sync import SyncPass
    from tests.faultproxy import FaultProxy
    from tests.hubspot_fixtures import DEFS, connector, hubspot

    with hubspot(20, real_clock=True) as (app, url):
        rule = EditDuringTheWrite(app)
        with FaultProxy(url, [rule]) as proxy:
            store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
            before = datetime.now(UTC)
            assert not soak.caught_up(store, before, ("hubspot",)), "no pass yet"
            SyncPass(store, connector(proxy.url), DEFS).run()
            assert rule.since is not None, "the pass wrote nothing"
            assert soak.caught_up(store, before, ("hubspot",))
            assert store.outbox_depth() == 0 and store.runs(1)[0]["outcome"] == "ok"
            assert not soak.caught_up(store, rule.since, ("hubspot",)), "the pass pulled before the edit"
            SyncPass(store, connector(proxy.url), DEFS).run()
            assert soak.caught_up(store, rule.since, ("hubspot",))


class EditBeforeTheRetry:
    """The first write batch that sets `field` gets `kind` (forwarded and applied, the answer lost);
    a rep then sets `field` on its first record while crmsync backs off: the edit is made as the next
    request after the lost answer arrives, whatever it is (crmsync's retry, or a read before it)."""

    def __init__(self, app: Any, kind: str, method: str, field: str, person_value: str) -> None:
        self.app, self.kind, self.method, self.field, self.person_value = app, kind, method, field, person_value
        self.first: tuple[str, str] | None = None  # (record id, the value crmsync wrote)
        self.edited: tuple[str, str] | None = None

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None:
        if self.first is not None:
            if self.edited is None:  # the first request after the lost answer: the rep's edit comes first
                rid = self.first[0]
                with self.app.lock:
                    if hasattr(self.app, "portal"):
                        self.app.portal.update("contacts", rid, {self.field: self.person_value})
                    else:
                        self.app.org.update("Lead", rid, {self.field: self.person_value})
                self.edited = self.first
            return None
        if method != self.method or not re.search(r"batch/update|composite/sobjects", path):
            return None
        payload = json.loads(body)
        items = [(i["id"], i["properties"]) for i in payload.get("inputs", [])] + \
            [(r["id"], r) for r in payload.get("records", [])]
        items = [(rid, values) for rid, values in items
                 if values.get(self.field) and values[self.field] != self.person_value]
        if not items:
            return None
        self.first = (items[0][0], items[0][1][self.field])
        return self.kind


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_persons_edit_between_a_lost_answer_and_the_retry_wins(crm: str, tmp_path: Path) -> None:
    from crmsync.store import Store
    from crmsync.sync import SyncPass
    from tests.faultproxy import FaultProxy
    from tests.hubspot_fixtures import DEFS, connector, hubspot
    from tests.salesforce_fixtures import salesforce, sf_connector

    sandbox, make = (hubspot, connector) if crm == "hubspot" else (salesforce, sf_connector)
    with sandbox(40) as (app, url):
        rule = EditBeforeTheRetry(app, "html504", *(("POST", "hs_lead_status", "IN_PROGRESS") if crm == "hubspot"
                                                    else ("PATCH", "Status", "Working - Contacted")))
        with FaultProxy(url, [rule]) as proxy:
            store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
            for _ in range(2):
                SyncPass(store, make(proxy.url, timeout=0.5), DEFS).run()
        assert rule.edited is not None, "no write batch was retried"
        rid, written = rule.edited
        record = app.portal.records["contacts"][rid].properties if crm == "hubspot" else app.org.records["Lead"][rid]
        assert record.get(rule.field) == rule.person_value, f"{rid}: crmsync's retry wrote {written} over the edit"
