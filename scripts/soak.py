"""Soak: the daemon against both sandboxes through a hostile network, with the sandboxes' own faults,
SIGKILL restarts at random moments and human edits, compared with a fault-free run of the same seed.

    python scripts/soak.py [--store sqlite|postgres] [--seconds 120] [--leads 300] [--kills 4] [--seed 2026]

The daemon's CRM traffic goes through tests/faultproxy.py (one proxy per CRM) with a seeded random mix
of every network fault kind (HTML 502/503/504 pages, resets before and during the answer, truncated
JSON, empty 200, slower than the client's timeout, a request delivered twice, a 401 outage) on reads,
writes, task creates and the Salesforce login, on top of the sandboxes' own `--faults`.

Both runs apply the same human edits (accepting MQLs, SQL with and without BANT, "not interested",
valid reason codes, discovery calls) in three rounds; each round comes once the daemon has caught up
with the last (`caught_up`: for each CRM a sync pass that pulled after the edits ended ok, and the
outbox is empty), in the fault-free run too, however slowly the daemon starts or works (with
--edits-while-behind, the soak run's rounds come on time whatever it has seen). This orders every
edit after the passes that pulled before it: such a pass sends what it decided as it is
(docs/operations.md, "A person's later edit wins"), so an edit landing between its pull and its
write would make the end state depend on timing. At the end faults and kills stop and the daemon
settles. Printed: faults by kind (from the proxy's log, and the sandboxes' own), kills,
differences (every field crmsync owns, lifecycle stage, lead status, owner tasks per record),
duplicate tasks (one task key twice), tracebacks (daemon stderr lines that are not JSON or contain
"Traceback") and lost edits (a field a person set that ends differently from the fault-free run).
Exit status 1 when any of these is not zero.

PostgreSQL (--store postgres): a fresh database per run on 127.0.0.1:5432 (user postgres, trust auth),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the proxy is test code: it lives in tests/, not in the crmsync package
    sys.path.insert(0, str(ROOT))

from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal  # noqa: E402
from crmsync.crms.salesforce.sandbox import SalesforceApp, seed_org  # noqa: E402
from crmsync.sandbox.http import SandboxServer  # noqa: E402
from crmsync.settings import SyncSettings  # noqa: E402
from crmsync.store import Store, aware  # noqa: E402
from crmsync.store.kinds import RunKind, RunOutcome  # noqa: E402
from tests.faultproxy import KINDS, FaultProxy, Mix  # noqa: E402

HS_OWNED = ("lifecyclestage", "hs_lead_status", "crmsync_stage", "crmsync_fit", "crmsync_sql_blocked_reason",
            "crmsync_dq_reason_status", "crmsync_definitions_version")
SF_OWNED = ("Status", "CRMSync_Stage__c", "CRMSync_Fit__c", "CRMSync_SQL_Blocked_Reason__c",
            "CRMSync_DQ_Reason_Status__c", "CRMSync_Definitions_Version__c")
HS_TASK_KEY, SF_TASK_KEY = "crmsync_task_key", "CRMSync_Task_Key__c"
WRITES = ("objects.batch_update", "objects.batch_create", "composite.update", "composite.create")
SANDBOX_FAULTS = "429:0.03,500:0.03,503:0.02,timeout:0.02"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CLIENT_TIMEOUT, SLOW = 2.0, 2.5  # the connectors' timeout, and how late a `slow` answer comes

# (operation, method, path pattern): where the proxy's faults go, and how its log is counted
HUBSPOT_OPS = (("tasks", "POST", r"^/crm/v3/objects/tasks/batch/create"),
               ("write", "POST", r"^/crm/v3/objects/contacts/batch/update"),
               ("read", None, ""))
SALESFORCE_OPS = (("login", "POST", r"^/services/oauth2/token"),
                  ("tasks", "POST", r"/composite/sobjects"),
                  ("write", "PATCH", r"/composite/sobjects"),
                  ("read", None, ""))


def fault_mix(ops: tuple[tuple[str, str | None, str], ...], seed: int, read_rate: float, write_rate: float,
              twice_creates: bool) -> list[Mix]:
    """Every fault kind on every operation: writes and task creates (rarer calls) at `write_rate`,
    logins (one per start, and after a 401) at 0.5, everything else at `read_rate`. A create the
    network delivers twice makes two tasks (tests/test_network_faults.py: only a unique key in the
    CRM could refuse the second), so `twice_creates=False` leaves that one kind out of task creates."""
    mixes = []
    for n, (op, method, path) in enumerate(ops):
        kinds = tuple(k for k in KINDS if twice_creates or op != "tasks" or k != "twice")
        rate = {"read": read_rate, "login": 0.5}.get(op, write_rate)
        mixes.append(Mix(rate, kinds, seed * 100 + n, method, path))
    return mixes


def operation(ops: tuple[tuple[str, str | None, str], ...], method: str, path: str) -> str:
    return next(op for op, m, p in ops if (m is None or m == method) and re.search(p, path))


@dataclass
class Run:
    label: str
    hubspot: HubSpotApp
    salesforce: SalesforceApp
    env: dict[str, str]
    workdir: Path
    store: Store
    """The daemon's store, read (runs, outbox depth) to know when it has caught up."""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    exits: list[int] = field(default_factory=list)
    """Exit statuses of daemons that stopped on their own (restarted)."""
    restarts_at: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.starts += 1
        with open(self.workdir / f"{self.label}-{self.starts}.err", "wb") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=self.env,
                                            stdout=subprocess.DEVNULL, stderr=stderr)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.kills += 1
            self.restarts_at.append(time.time())

    def keep_alive(self) -> None:
        if self.process and self.process.poll() is not None:
            self.exits.append(self.process.returncode)
            self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                self.exits.append(-9)
                return
            if self.process.returncode:
                self.exits.append(self.process.returncode)

    def writes(self) -> int:
        counts = {**self.hubspot.call_counts(), **self.salesforce.call_counts()}
        return sum(counts.get(name, 0) for name in WRITES)

    def stderr_problems(self) -> list[str]:
        """Daemon stderr lines that are not a JSON log line, or carry a traceback."""
        found = []
        for n in range(1, self.starts + 1):
            for line in (self.workdir / f"{self.label}-{n}.err").read_text(errors="replace").splitlines():
                try:
                    json.loads(line)
                    parsed = True
                except ValueError:
                    parsed = False
                if line.strip() and (not parsed or "Traceback" in line):
                    found.append(f"start {n}: {line[:300]}")
        return found


def caught_up(store: Store, since: datetime, crms: tuple[str, ...] = ("hubspot", "salesforce")) -> bool:
    """Whether the daemon has seen every change made before `since` and sent what it decided: for each
    CRM a sync pass whose window reached `since` (its pull came after) ended ok, and no write or task
    is pending in the outbox. Counting pulls and quiet seconds is not enough: a pass that pulled
    before `since` may still be deciding, or backing off before a retry, and it sends what it decided
    then."""
    try:
        runs = store.runs(500, kinds=[RunKind.SYNC])
        pending = store.outbox_depth()
    except SQLAlchemyError:  # the daemon has not created its tables yet
        return False
    done = {r["crm"] for r in runs if r["outcome"] == RunOutcome.OK and (aware(r["window_end"]) or since) > since}
    return pending == 0 and done >= set(crms)


def wait_quiet(run: Run, quiet: float, deadline: float, tick: Callable[[], None]) -> bool:
    """Until the daemon has caught up with everything made before now (`caught_up`) and no write has
    happened for `quiet` seconds: it has seen the latest edits, written what it decided and settled.
    False when the deadline passed."""
    since = datetime.now(UTC)
    last_count, last_change = run.writes(), time.monotonic()
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        time.sleep(0.2)
        tick()
        count = run.writes()
        if count != last_count:
            last_count, last_change = count, time.monotonic()
            continue
        if time.monotonic() - last_change >= quiet and caught_up(run.store, since):
            return True
    return False


Edit = tuple[str, str, tuple[str, ...]]
"""(crm, record id, fields a person set)"""


def human_phase(run: Run, seed: int, index: int, per_crm: int = 6) -> list[Edit]:
    """The same edits in every run of a seed: reps working their leads while the daemon runs."""
    rnd = random.Random(seed * 10 + index)
    portal, org = run.hubspot.portal, run.salesforce.org
    now = datetime.now(UTC)
    edits: list[Edit] = []
    with run.hubspot.lock:
        for cid in rnd.sample(sorted(portal.records["contacts"]), per_crm):
            kind = rnd.choice(["accept", "sql_blank", "sql_full", "not_interested", "valid_reason", "call"])
            props = {"accept": {"hs_lead_status": "IN_PROGRESS"},
                     "sql_blank": {"lifecyclestage": "salesqualifiedlead", "crmsync_bant_budget": ""},
                     "sql_full": {"lifecyclestage": "salesqualifiedlead",
                                  "crmsync_bant_need": "Routing loses a third of demo requests",
                                  "crmsync_bant_authority": "CFO signs", "crmsync_bant_timeline": "within 6 weeks",
                                  "crmsync_bant_budget": "$40k approved"},
                     "not_interested": {"hs_lead_status": "UNQUALIFIED", "crmsync_dq_reason": "not interested"},
                     "valid_reason": {"hs_lead_status": "UNQUALIFIED", "crmsync_dq_reason": "no_need"},
                     }.get(kind)
            if props is not None:
                portal.update("contacts", cid, props, at=now)
                edits.append(("hubspot", cid, tuple(props)))
            else:
                call = portal.create("calls", {"hs_call_title": "Discovery call", "hs_call_direction": "OUTBOUND",
                                               "hs_timestamp": now.isoformat()}, at=now)
                portal.associate("calls", cid, call.id)
                portal.touch(cid, now)
    with run.salesforce.lock:
        open_leads = sorted(lid for lid, r in org.records["Lead"].items()  # converted: read-only, to a rep too
                            if not (r.get("IsConverted") or r.get("IsDeleted")))
        for lid in rnd.sample(open_leads, per_crm):
            kind = rnd.choice(["accept", "sql_blank", "sql_full", "not_interested"])
            values = {"accept": {"Status": "Working - Contacted"},
                      "sql_blank": {"Status": "Qualified", "BANT_Budget__c": None},
                      "sql_full": {"Status": "Qualified", "BANT_Need__c": "Forecasts are off by a third",
                                   "BANT_Authority__c": "CFO signs", "BANT_Timeline__c": "within 6 weeks",
                                   "BANT_Budget__c": "$40k approved"},
                      "not_interested": {"Status": "Closed - Not Converted",
                                         "CRMSync_DQ_Reason__c": "not interested"}}[kind]
            org.update("Lead", lid, values, at=now)
            edits.append(("salesforce", lid, tuple(values)))
    return edits


def crm_state(hubspot: HubSpotApp, salesforce: SalesforceApp) -> dict[str, Any]:
    """Per record: the fields crmsync owns (the MQL stamp by presence) and its owner tasks."""
    with hubspot.lock, salesforce.lock:
        portal, org = hubspot.portal, salesforce.org
        linked = {tid: cid for cid, tids in portal.associations["tasks"].items() for tid in tids}
        hs_tasks: dict[str, list[Any]] = {}
        for tid, t in portal.records["tasks"].items():
            if t.properties.get(HS_TASK_KEY):
                hs_tasks.setdefault(str(linked.get(tid)), []).append(
                    (t.properties.get("hs_task_subject"), t.properties.get("hs_task_body")))
        sf_tasks: dict[str, list[Any]] = {}
        for t in org.records["Task"].values():
            if t.get(SF_TASK_KEY):
                sf_tasks.setdefault(str(t.get("WhoId")), []).append((t.get("Subject"), t.get("Description")))
        hs = {cid: (*(r.properties.get(p) for p in HS_OWNED), bool(r.properties.get("crmsync_mql_at")),
                    sorted(hs_tasks.get(cid, [])))
              for cid, r in portal.records["contacts"].items()}
        sf = {lid: (*(r.get(p) for p in SF_OWNED), bool(r.get("CRMSync_MQL_At__c")), sorted(sf_tasks.get(lid, [])))
              for lid, r in org.records["Lead"].items()}
        keys = Counter(("hubspot", t.properties.get(HS_TASK_KEY)) for t in portal.records["tasks"].values()
                       if t.properties.get(HS_TASK_KEY))
        keys.update(("salesforce", t.get(SF_TASK_KEY)) for t in org.records["Task"].values() if t.get(SF_TASK_KEY))
        return {"hubspot": hs, "salesforce": sf, "task_keys": keys}


def same_records(expected: dict[str, Any], state: dict[str, Any]) -> bool:
    """Whether every record's state is as expected: what `compare` calls no difference. Not the whole
    `crm_state`: a task key hashes moments of its own run (an SLA's due time, a record's last change),
    so the keys of two runs never match, and waiting for them would always wait until the deadline."""
    return all(state[crm].get(rid) == values for crm in ("hubspot", "salesforce")
               for rid, values in expected[crm].items())


def edited_values(hubspot: HubSpotApp, salesforce: SalesforceApp, edits: list[Edit]) -> dict[tuple[str, str], Any]:
    """The final value of every field a person set, per record."""
    out: dict[tuple[str, str], Any] = {}
    for crm, rid, fields in edits:
        if crm == "hubspot":
            record = hubspot.portal.records["contacts"][rid].properties
        else:
            record = salesforce.org.records["Lead"][rid]
        out.setdefault((crm, rid), {}).update({f: record.get(f) for f in fields})
    return out


@contextmanager
def database(store: str, workdir: Path, label: str) -> Iterator[str]:
    """A fresh store for one run: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if store == "sqlite":
        yield f"sqlite:///{workdir / (label + '.db')}"
        return
    import psycopg

    name = f"crmsync_soak_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Outcome:
    state: dict[str, Any]
    edited: dict[tuple[str, str], Any]
    faults: Counter[str]
    """"crm operation kind" -> count, from the proxies' logs and the sandboxes' own injectors."""
    requests: Counter[str]
    """"crm operation" -> requests through the proxy."""
    kills: int
    exits: list[int]
    problems: list[str]
    seconds: float
    settled: bool
    history: list[tuple[float, str, str, str, Any]] = field(default_factory=list)
    """Human edits, SIGKILLs and the write requests through the proxies (with bodies), in time order."""
    behind: list[int] = field(default_factory=list)
    """Rounds of edits (0 the first) made before the daemon had caught up (its wait timed out after 90 s)."""

    def story(self, crm: str, rid: str) -> list[str]:
        """What happened to one record: the edits made to it and every write request naming it."""
        t0 = self.history[0][0] if self.history else 0
        return [f"    +{at - t0:7.2f}s {what}" + (f" {detail}" if rec == rid else f" {_excerpt(detail, rid)}")
                for at, what, c, rec, detail in self.history
                if (c == crm and (rec == rid or rid in str(detail))) or what.startswith("SIGKILL")]


def one_run(*, leads: int, seed: int, seconds: float, kills: int, database_url: str, workdir: Path,
            chaotic: bool, quiet: float = 4.0, read_rate: float = 0.04, write_rate: float = 0.15,
            twice_creates: bool = True, expected: dict[str, Any] | None = None, settle: bool = True,
            lease: int = 8) -> Outcome:
    """One run of the daemon from a freshly seeded pair of sandboxes; with `chaotic`, under faults and
    kills, and (given `expected`) polled until its CRM state converges there or 30 s have passed.
    `lease`: the daemon's lease in seconds, how long a restart after a SIGKILL waits before it syncs."""
    hubspot, salesforce = HubSpotApp(), SalesforceApp(shape="rich")
    seed_portal(hubspot.portal, leads, seed=seed)
    seed_org(salesforce.org, leads, seed=seed + 1)
    store = Store(database_url)  # read only: the daemon creates and migrates it
    with SandboxServer(hubspot) as hs, SandboxServer(salesforce) as sf, \
            FaultProxy(hs.url, slow_seconds=SLOW) as hs_proxy, FaultProxy(sf.url, slow_seconds=SLOW) as sf_proxy, \
            closing(store):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": "soak", "CRMSYNC_HUBSPOT__BASE_URL": hs_proxy.url,
                    "CRMSYNC_SALESFORCE__INSTANCE_URL": sf_proxy.url, "CRMSYNC_SALESFORCE__LOGIN_URL": sf_proxy.url,
                    "CRMSYNC_SALESFORCE__CLIENT_ID": "soak", "CRMSYNC_SALESFORCE__CLIENT_SECRET": "soak",
                    "CRMSYNC_DATABASE_URL": database_url, "CRMSYNC_SALESFORCE__POLL_SECONDS": "1",
                    "CRMSYNC_SYNC__INTERVAL_SECONDS": "1", "CRMSYNC_SYNC__SLA_SWEEP_SECONDS": "3600",
                    "CRMSYNC_HTTP__PORT": "0", "CRMSYNC_LOG_FORMAT": "json",
                    "CRMSYNC_HUBSPOT__TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
                    "CRMSYNC_SALESFORCE__TIMEOUT_SECONDS": str(CLIENT_TIMEOUT)})
        if "lease_seconds" in SyncSettings.model_fields:  # (not in releases before the setting)
            env["CRMSYNC_SYNC__LEASE_SECONDS"] = str(lease)  # one daemon: its restart after a SIGKILL takes over soon
        run = Run("chaos" if chaotic else "calm", hubspot, salesforce, env, workdir, store)
        rnd = random.Random(seed)
        if chaotic:
            hubspot.faults.set(SANDBOX_FAULTS, seed)
            salesforce.faults.set(SANDBOX_FAULTS, seed + 1)
            hubspot.timeout_hang_seconds = salesforce.timeout_hang_seconds = SLOW
            hs_proxy.faults = list(fault_mix(HUBSPOT_OPS, seed, read_rate, write_rate, twice_creates))
            sf_proxy.faults = list(fault_mix(SALESFORCE_OPS, seed + 1, read_rate, write_rate, twice_creates))
        phases = 4  # before the first edits, then three rounds of edits
        phase_time = seconds / phases
        kill_at = sorted((i % phases) * phase_time + rnd.uniform(0.5, phase_time) for i in range(kills)) \
            if chaotic else []
        started = time.monotonic()

        def tick() -> None:
            if kill_at and time.monotonic() - started >= kill_at[0]:
                kill_at.pop(0)
                run.kill()
                run.start()
            run.keep_alive()

        run.start()
        edits: list[Edit] = []
        history: list[tuple[float, str, str, str, Any]] = []
        behind: list[int] = []
        for index in range(phases):
            if index:
                made = human_phase(run, seed, index - 1)
                edits += made
                history.extend((time.time(), f"phase {index - 1} edit", crm, rid, fields) for crm, rid, fields in made)
            if chaotic:  # the whole phase under faults (every kill of it happens), then until the daemon
                end = started + (index + 1) * phase_time  # has seen the edits: the next ones come on top
                while time.monotonic() < end:
                    time.sleep(0.2)
                    tick()
            if (settle or not chaotic) and not wait_quiet(run, quiet, 90, tick) and index < phases - 1:
                behind.append(index)  # the next round comes all the same
        while kill_at:  # a phase that went long cannot skip a kill
            kill_at[0] = 0
            tick()
        hs_proxy.faults, sf_proxy.faults = [], []  # the end: no more faults or kills, let it finish
        hubspot.faults.set("")
        salesforce.faults.set("")
        settled = wait_quiet(run, quiet * 1.5, 120, run.keep_alive)
        end = time.monotonic() + 30
        while expected is not None and not same_records(expected, crm_state(hubspot, salesforce)) \
                and time.monotonic() < end:
            time.sleep(0.5)  # converging: a flush of the last outbox rows may still be on its way
            run.keep_alive()
        run.stop()
        faults: Counter[str] = Counter()
        requests: Counter[str] = Counter()
        for crm, proxy, ops in (("hubspot", hs_proxy, HUBSPOT_OPS), ("salesforce", sf_proxy, SALESFORCE_OPS)):
            requests.update(f"{crm} {operation(ops, e.method, e.path)}" for e in proxy.log)
            faults.update(f"{crm} {operation(ops, e.method, e.path)} {e.action}" for e in proxy.injected())
        for crm, app in (("hubspot", hubspot), ("salesforce", salesforce)):
            faults.update({f"{crm} sandbox {f.value}": n for f, n in app.faults.injected.items()})
        for crm, proxy in (("hubspot", hs_proxy), ("salesforce", sf_proxy)):
            history.extend((e.at, f"{e.method} {e.path.split('?')[0]} {e.action}", crm, "",
                            e.body.decode(errors="replace")) for e in proxy.log
                           if e.method in ("POST", "PATCH") and e.body and not e.path.endswith("/search")
                           and "oauth2" not in e.path)
        history.extend((at, f"SIGKILL / start {n}", "", "", "") for n, at in enumerate(run.restarts_at, 2))
        return Outcome(crm_state(hubspot, salesforce), edited_values(hubspot, salesforce, edits), faults, requests,
                       run.kills, run.exits, run.stderr_problems(), time.monotonic() - started, settled,
                       sorted(history, key=lambda h: h[0]), behind)


@dataclass
class Findings:
    calm: Outcome
    chaos: Outcome
    differences: list[str]
    duplicates: list[str]
    lost_edits: list[str]

    @property
    def tracebacks(self) -> list[str]:
        return self.chaos.problems + [f"fault-free run, {p}" for p in self.calm.problems]

    @property
    def clean(self) -> bool:
        return not (self.differences or self.duplicates or self.tracebacks or self.lost_edits)


def compare(calm: Outcome, chaos: Outcome) -> Findings:
    differences = [f"{crm} {rid}: expected {values}, got {chaos.state[crm].get(rid)}"
                   for crm in ("hubspot", "salesforce") for rid, values in calm.state[crm].items()
                   if chaos.state[crm].get(rid) != values]
    duplicates = [f"{crm} task key {key}: {n} tasks" for (crm, key), n in chaos.state["task_keys"].items() if n > 1]
    duplicates += [f"fault-free run: {crm} task key {key}: {n} tasks"
                   for (crm, key), n in calm.state["task_keys"].items() if n > 1]
    lost = [f"{crm} {rid}: a person set {values}, the soak ended with {chaos.edited.get((crm, rid))}"
            for (crm, rid), values in calm.edited.items() if chaos.edited.get((crm, rid)) != values]
    return Findings(calm, chaos, differences, duplicates, lost)


def soak(*, leads: int, seed: int, seconds: float, kills: int, workdir: Path,
         databases: Callable[[str], AbstractContextManager[str]], quiet: float = 4.0, twice_creates: bool = True,
         read_rate: float = 0.04, write_rate: float = 0.15, calm: Outcome | None = None,
         settle: bool = True, lease: int = 8) -> Findings:
    """The fault-free run (unless given), then the soak run of the same seed; what differs."""
    if calm is None:
        with databases("calm") as url:
            calm = one_run(leads=leads, seed=seed, seconds=seconds, kills=0, database_url=url, workdir=workdir,
                           chaotic=False, quiet=quiet, lease=lease)
    with databases("chaos") as url:
        chaos = one_run(leads=leads, seed=seed, seconds=seconds, kills=kills, database_url=url, workdir=workdir,
                        chaotic=True, quiet=quiet, twice_creates=twice_creates, read_rate=read_rate,
                        write_rate=write_rate, expected=calm.state, settle=settle, lease=lease)
    return compare(calm, chaos)


def report(found: Findings, out: Callable[[str], None] = print) -> None:
    for name, outcome in (("fault-free run", found.calm), ("soak run", found.chaos)):
        out(f"{name}: {outcome.seconds:.0f} s, {outcome.kills} SIGKILL restarts, daemon exits on its own: "
            f"{outcome.exits or 'none'}, settled: {outcome.settled}, rounds of edits made before the daemon "
            f"caught up with the last: {outcome.behind or 'none'}")
    out("requests through the proxies: " + ", ".join(f"{k} {n}" for k, n in sorted(found.chaos.requests.items())))
    out(f"faults injected: {sum(found.chaos.faults.values())}")
    for key, n in sorted(found.chaos.faults.items()):
        out(f"  {key}: {n}")
    by_kind: Counter[str] = Counter()
    for key, n in found.chaos.faults.items():
        by_kind[key.split()[-1]] += n
    out("faults by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())))
    out(f"kills: {found.chaos.kills}")
    lines = [line.split(": ", 1)[-1] for line in found.tracebacks]
    raised = Counter(line.split(":")[0] for line in lines if re.match(r"[\w.]+(Error|Exception|Expired\w*)\b", line))
    out(f"stderr: {len(lines)} lines not JSON or with a traceback, {sum('Traceback' in x for x in lines)} "
        f"tracebacks, exceptions: {dict(raised.most_common()) or 'none'}")
    for title, items in (("differences", found.differences), ("duplicate tasks", found.duplicates),
                         ("tracebacks", found.tracebacks), ("lost edits", found.lost_edits)):
        out(f"{title}: {len(items)}")
        for item in items[:20]:
            out(f"  {item}")
            if title in ("differences", "lost edits"):
                crm, rid = item.split()[:2]
                for line in found.chaos.story(crm, rid.rstrip(":"))[-25:]:
                    out(line)


def _excerpt(body: str, rid: str, around: int = 300) -> str:
    """The part of a request body about one record."""
    at = body.find(rid)
    return body[max(0, at - 40):at + around] if at >= 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-twice-creates", action="store_true",
                        help="leave `twice` out of task creates (a create delivered twice makes two tasks)")
    parser.add_argument("--read-rate", type=float, default=0.04, help="share of reads given a network fault")
    parser.add_argument("--write-rate", type=float, default=0.15,
                        help="share of writes and task creates given a network fault")
    parser.add_argument("--edits-while-behind", action="store_true",
                        help="make each round of edits on time, even when the daemon has not caught up with the "
                             "last (decisions that depend on the states crmsync saw may then differ)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        found = soak(leads=args.leads, seed=args.seed, seconds=args.seconds, kills=args.kills, workdir=workdir,
                     databases=lambda label: database(args.store, workdir, label),
                     twice_creates=not args.no_twice_creates, settle=not args.edits_while_behind,
                     read_rate=args.read_rate, write_rate=args.write_rate)
    print(f"store: {args.store}, leads: {args.leads} per CRM, seed: {args.seed}, edits "
          f"{'on time' if args.edits_while_behind else 'once the daemon has seen the last'}")
    report(found)
    sys.exit(0 if found.clean else 1)


if __name__ == "__main__":
    main()
