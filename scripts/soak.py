"""Soak: the daemon against both sandboxes with injected faults, random SIGKILL restarts and human edits,
compared with a fault-free run of the same seed. Prints what differs (the goal: nothing).

    python scripts/soak.py [--seconds 120] [--leads 300] [--faults "429:0.03,500:0.03,503:0.02,timeout:0.02"]

Both runs apply the same human edits (accepting MQLs, SQL with and without BANT, "not interested",
valid reason codes, discovery calls) in the same phases; each phase waits until the daemon has gone
quiet. Compared: every field crmsync owns on every record (stage timestamps by presence), and the
owner tasks (one per situation, no duplicates).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.sandbox.http import SandboxServer
from crmsync.sandbox.hubspot import HubSpotApp, seed_portal
from crmsync.sandbox.salesforce import SalesforceApp, seed_org

ROOT = Path(__file__).resolve().parent.parent
HS_OWNED = ("lifecyclestage", "hs_lead_status", "crmsync_stage", "crmsync_fit", "crmsync_sql_blocked_reason",
            "crmsync_dq_reason_status", "crmsync_definitions_version")
SF_OWNED = ("Status", "CRMSync_Stage__c", "CRMSync_Fit__c", "CRMSync_SQL_Blocked_Reason__c",
            "CRMSync_DQ_Reason_Status__c", "CRMSync_Definitions_Version__c")
WRITES = ("objects.batch_update", "objects.batch_create", "composite.update", "composite.create")


@dataclass
class Run:
    hubspot: HubSpotApp
    salesforce: SalesforceApp
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)

    def writes(self) -> int:
        counts = {**self.hubspot.call_counts(), **self.salesforce.call_counts()}
        return sum(counts.get(name, 0) for name in WRITES)

    def pulls(self) -> tuple[int, int]:
        """Successful pulls so far: HubSpot contact searches, Salesforce lead queries."""
        def ok(app: Any, endpoint: str) -> int:
            return sum(r["count"] for r in app.call_counts_by_status()
                       if r["endpoint"] == endpoint and r["status"] == 200)
        return ok(self.hubspot, "objects.search"), ok(self.salesforce, "queryAll")


def wait_quiet(run: Run, quiet: float, deadline: float, chaos: Callable[[], None] | None = None) -> None:
    """Until both CRMs were pulled at least twice since now and no write has happened for `quiet`
    seconds: the daemon has seen the latest edits and settled (or the deadline passed)."""
    start_hs, start_sf = run.pulls()
    last_count, last_change = run.writes(), time.monotonic()
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        time.sleep(0.25)
        if chaos:
            chaos()
        count = run.writes()
        if count != last_count:
            last_count, last_change = count, time.monotonic()
            continue
        hs, sf = run.pulls()
        seen = hs - start_hs >= 2 and sf - start_sf >= 2
        if seen and time.monotonic() - last_change >= quiet and (run.process and run.process.poll() is None):
            return


def human_phases(seed: int) -> list[Callable[[Run], None]]:
    def phase(index: int) -> Callable[[Run], None]:
        def act(run: Run) -> None:
            rnd = random.Random(seed * 10 + index)
            portal, org = run.hubspot.portal, run.salesforce.org
            now = datetime.now(UTC)
            contacts = sorted(portal.records["contacts"])
            for cid in rnd.sample(contacts, 6):
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
                else:
                    call = portal.create("calls", {"hs_call_title": "Discovery call", "hs_call_direction": "OUTBOUND",
                                                   "hs_timestamp": now.isoformat()}, at=now)
                    portal.associate("calls", cid, call.id)
                    portal.touch(cid, now)
            leads = sorted(org.records["Lead"])
            for lid in rnd.sample(leads, 6):
                kind = rnd.choice(["accept", "sql_blank", "sql_full", "not_interested"])
                values = {"accept": {"Status": "Working - Contacted"},
                          "sql_blank": {"Status": "Qualified", "BANT_Budget__c": None},
                          "sql_full": {"Status": "Qualified", "BANT_Need__c": "Forecasts are off by a third",
                                       "BANT_Authority__c": "CFO signs", "BANT_Timeline__c": "within 6 weeks",
                                       "BANT_Budget__c": "$40k approved"},
                          "not_interested": {"Status": "Closed - Not Converted",
                                             "CRMSync_DQ_Reason__c": "not interested"}}[kind]
                org.update("Lead", lid, values, at=now)
        return act
    return [phase(i) for i in range(3)]


def crm_state(run: Run) -> dict[str, Any]:
    hs = {cid: (*tuple(r.properties.get(p) for p in HS_OWNED), bool(r.properties.get("crmsync_mql_at")))
          for cid, r in run.hubspot.portal.records["contacts"].items()}
    sf = {lid: (*tuple(r.get(p) for p in SF_OWNED), bool(r.get("CRMSync_MQL_At__c")))
          for lid, r in run.salesforce.org.records["Lead"].items()}
    linked = {tid: cid for cid, tids in run.hubspot.portal.associations["tasks"].items() for tid in tids}
    hs_tasks = sorted((linked.get(t.id), t.properties.get("hs_task_subject"), t.properties.get("hs_task_body"))
                      for t in run.hubspot.portal.records["tasks"].values())
    sf_tasks = sorted((t.get("WhoId"), t.get("Subject"), t.get("Description"))
                      for t in run.salesforce.org.records["Task"].values() if t.get("CRMSync_Task_Key__c"))
    return {"hubspot": hs, "salesforce": sf, "hubspot_tasks": hs_tasks, "salesforce_tasks": sf_tasks}


def one_run(leads: int, seed: int, faults: str, seconds: float, workdir: Path,
            chaotic: bool) -> tuple[Run, dict[str, Any]]:
    hubspot, salesforce = HubSpotApp(), SalesforceApp(shape="rich")
    seed_portal(hubspot.portal, leads, seed=seed)
    seed_org(salesforce.org, leads, seed=seed + 1)
    with SandboxServer(hubspot) as hs, SandboxServer(salesforce) as sf:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": "soak", "CRMSYNC_HUBSPOT__BASE_URL": hs.url,
                    "CRMSYNC_SALESFORCE__INSTANCE_URL": sf.url, "CRMSYNC_SALESFORCE__LOGIN_URL": sf.url,
                    "CRMSYNC_SALESFORCE__CLIENT_ID": "soak", "CRMSYNC_SALESFORCE__CLIENT_SECRET": "soak",
                    "CRMSYNC_DATABASE_URL": f"sqlite:///{workdir / ('chaos.db' if chaotic else 'calm.db')}",
                    "CRMSYNC_SYNC__INTERVAL_SECONDS": "1", "CRMSYNC_SYNC__SLA_SWEEP_SECONDS": "3600",
                    "CRMSYNC_HTTP__PORT": "0", "CRMSYNC_LOG_FORMAT": "json",
                    "CRMSYNC_HUBSPOT__TIMEOUT_SECONDS": "2", "CRMSYNC_SALESFORCE__TIMEOUT_SECONDS": "2"})
        run = Run(hubspot, salesforce, env)
        rnd = random.Random(seed)
        if chaotic:
            hubspot.faults.set(faults, seed)
            salesforce.faults.set(faults, seed + 1)
            hubspot.timeout_hang_seconds = salesforce.timeout_hang_seconds = 2.5
        run.start()
        next_kill = [time.monotonic() + rnd.uniform(2, 6)]

        def chaos() -> None:
            if chaotic and time.monotonic() >= next_kill[0]:
                run.kill()
                run.restarts += 1
                run.start()
                next_kill[0] = time.monotonic() + rnd.uniform(2, 6)

        phase_time = seconds / 4
        started = time.monotonic()
        wait_quiet(run, 4, phase_time, chaos)
        for act in human_phases(seed):
            act(run)
            wait_quiet(run, 4, phase_time, chaos)
        if chaotic:  # the end: no more faults or kills, let it finish what it started
            hubspot.faults.set("")
            salesforce.faults.set("")
        wait_quiet(run, 6, 120)
        run.stop()
        run.log.append(f"{time.monotonic() - started:.0f} s, {run.restarts} SIGKILL restarts, faults injected: "
                       f"hubspot {_faults(hubspot)}, salesforce {_faults(salesforce)}")
        return run, crm_state(run)


def _faults(app: Any) -> dict[str, int]:
    return {f.value: n for f, n in app.faults.injected.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--faults", default="429:0.03,500:0.03,503:0.02,timeout:0.02")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        calm, expected = one_run(args.leads, args.seed, "", args.seconds, workdir, chaotic=False)
        chaos, actual = one_run(args.leads, args.seed, args.faults, args.seconds, workdir, chaotic=True)
    print(f"fault-free run: {calm.log[-1]}")
    print(f"soak run:       {chaos.log[-1]}")
    differences = 0
    for key in expected:
        if isinstance(expected[key], dict):
            for rid, values in expected[key].items():
                if actual[key].get(rid) != values:
                    differences += 1
                    print(f"  {key} {rid}: expected {values}, got {actual[key].get(rid)}")
        elif expected[key] != actual[key]:
            differences += 1
            print(f"  {key}: expected {len(expected[key])} tasks, got {len(actual[key])} "
                  f"(duplicates: {len(actual[key]) - len(set(actual[key]))})")
    print(f"differences: {differences} (goal: none)")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
