"""Freshness: from a change in the CRM to crmsync's write-back, with the daemon running.

A rep sets SQL without a budget on one lead at a time, at a steady rate; the time until crmsync has
reverted it is measured. Three set-ups: HubSpot with webhooks, HubSpot polling only (the default 30 s
interval), Salesforce polling (the default 10 s poll). Then API calls per minute while idle.
Goals (the goals table in docs/benchmarks.md): p95 <= 5 s with webhooks, <= 60 s with polling.

    python scripts/bench_freshness.py [--changes 20] [--rate 1.0] [--idle 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal
from crmsync.crms.hubspot.sandbox.webhooks import WebhookSender
from crmsync.crms.salesforce.sandbox import SalesforceApp, seed_org
from crmsync.sandbox.http import SandboxApp, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"


def daemon(env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    full.update(env)
    return subprocess.Popen([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


def measure(app: SandboxApp, ask: Callable[[str], None], settled: Callable[[str], bool], candidates: list[str],
            changes: int, rate: float, timeout: float) -> list[float]:
    """Make `changes` changes, one every 1/rate seconds; return each one's change-to-write-back seconds."""
    pending: dict[str, float] = {}
    latencies: list[float] = []
    for record_id in candidates[:changes]:
        with app.lock:
            ask(record_id)
        pending[record_id] = time.monotonic()
        step_end = time.monotonic() + 1 / rate
        while time.monotonic() < step_end:
            for rid, started in list(pending.items()):
                if settled(rid):
                    latencies.append(time.monotonic() - started)
                    del pending[rid]
            time.sleep(0.02)
    end = time.monotonic() + timeout
    while pending and time.monotonic() < end:
        for rid, started in list(pending.items()):
            if settled(rid):
                latencies.append(time.monotonic() - started)
                del pending[rid]
        time.sleep(0.02)
    latencies += [float("inf")] * len(pending)
    return latencies


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"changes": len(ordered), "p50_s": round(statistics.median(ordered), 2), "p95_s": round(p95, 2),
            "max_s": round(ordered[-1], 2), "missed": sum(1 for x in ordered if x == float("inf"))}


def hubspot_run(tmp: Path, changes: int, rate: float, idle: float, *, webhooks: bool) -> dict[str, Any]:
    app = HubSpotApp()
    seed_portal(app.portal, 400, seed=5)
    with SandboxServer(app) as server:
        env = {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": "bench", "CRMSYNC_HUBSPOT__BASE_URL": server.url,
               "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp / ('hs-wh.db' if webhooks else 'hs-poll.db')}",
               "CRMSYNC_HTTP__PORT": "18981" if webhooks else "18982", "CRMSYNC_LOG_FORMAT": "json"}
        if webhooks:
            env["CRMSYNC_HUBSPOT__APP_SECRET"] = SECRET
            env["CRMSYNC_HUBSPOT__WEBHOOK_URL"] = f"http://127.0.0.1:{env['CRMSYNC_HTTP__PORT']}/webhooks/hubspot"
        process = daemon(env)
        sender = None
        try:
            wait(lambda: any(r.properties.get("crmsync_stage") for r in app.portal.records["contacts"].values()), 60)
            time.sleep(3)  # the first pass's writes settle
            if webhooks:
                sender = WebhookSender(app.portal, f"http://127.0.0.1:{env['CRMSYNC_HTTP__PORT']}/webhooks/hubspot",
                                       SECRET)
            mqls = [cid for cid, r in app.portal.records["contacts"].items()
                    if r.properties.get("crmsync_stage") == "mql"]

            def ask(cid: str) -> None:
                app.portal.update("contacts", cid, {"lifecyclestage": "salesqualifiedlead", "crmsync_bant_budget": ""})

            def settled(cid: str) -> bool:
                return app.portal.records["contacts"][cid].properties.get("lifecyclestage") != "salesqualifiedlead"

            latencies = measure(app, ask, settled, mqls, changes, rate, timeout=120)
            time.sleep(5)
            app.reset_counts()
            time.sleep(idle)
            calls = sum(app.call_counts().values())
        finally:
            if sender:
                sender.stop()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    return {**summary(latencies), "idle_calls_per_minute": round(calls * 60 / idle, 1)}


def salesforce_run(tmp: Path, changes: int, rate: float, idle: float) -> dict[str, Any]:
    app = SalesforceApp(shape="rich")
    seed_org(app.org, 400, seed=6)
    with SandboxServer(app) as server:
        process = daemon({"CRMSYNC_SALESFORCE__INSTANCE_URL": server.url, "CRMSYNC_SALESFORCE__LOGIN_URL": server.url,
                          "CRMSYNC_SALESFORCE__CLIENT_ID": "bench", "CRMSYNC_SALESFORCE__CLIENT_SECRET": "bench",
                          "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp / 'sf.db'}", "CRMSYNC_HTTP__PORT": "18983"})
        try:
            wait(lambda: any(r.get("CRMSync_Stage__c") for r in app.org.records["Lead"].values()), 60)
            time.sleep(3)
            mqls = [lid for lid, r in app.org.records["Lead"].items() if r.get("CRMSync_Stage__c") == "MQL"]

            def ask(lid: str) -> None:
                app.org.update("Lead", lid, {"Status": "Qualified", "BANT_Budget__c": None})

            def settled(lid: str) -> bool:
                return app.org.records["Lead"][lid].get("Status") != "Qualified"

            latencies = measure(app, ask, settled, mqls, changes, rate, timeout=120)
            time.sleep(5)
            app.reset_counts()
            time.sleep(idle)
            calls = sum(app.call_counts().values())
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    return {**summary(latencies), "idle_calls_per_minute": round(calls * 60 / idle, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1.0, help="changes per second")
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle to count API calls")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"benchmark": "freshness",
                  "hubspot_webhooks": hubspot_run(Path(tmp), args.changes, args.rate, args.idle, webhooks=True),
                  "hubspot_polling": hubspot_run(Path(tmp), args.changes, args.rate, args.idle, webhooks=False),
                  "salesforce_polling": salesforce_run(Path(tmp), args.changes, args.rate, args.idle)}
    if args.json:
        print(json.dumps(result))
        return
    for name in ("hubspot_webhooks", "hubspot_polling", "salesforce_polling"):
        r = result[name]
        print(f"{name:20} p50 {r['p50_s']} s, p95 {r['p95_s']} s, max {r['max_s']} s over {r['changes']} changes "
              f"({r['missed']} missed); idle: {r['idle_calls_per_minute']} API calls/min")


if __name__ == "__main__":
    main()
