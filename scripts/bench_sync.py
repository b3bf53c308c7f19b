"""A first sync (or a backfill) of N contacts against the HubSpot sandbox running in its own process.

Reports records/s, API calls against the minimum, and this process's RSS sampled over the run
(the sandbox's memory is not counted: it runs apart). Goals (the goals table in docs/benchmarks.md):
calls <= 1.1 x minimum; flat memory on a 100,000-record backfill.

Where the time goes, per record: crmsync's own CPU (this process's CPU time; the sandbox runs in
another process, so none of its work is counted) apart from waiting on the CRM. Every CRM call goes
through `RetryPolicy.run`, so a timing policy splits the run into time inside CRM calls (wall: the
round trips; CPU: the client library building requests and reading answers) and outside them (the
engine, the store). Waiting = wall - CPU, inside calls: the CRM's answer time plus any pacing.

    python scripts/bench_sync.py [--contacts 10000] [--backfill] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.definitions import load_definitions
from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass(frozen=True)
class TimedRetry(RetryPolicy):
    """The connectors' retry policy, timing what happens inside CRM calls (wall and process CPU)."""

    spent: dict[str, float] = field(default_factory=lambda: {"wall": 0.0, "cpu": 0.0, "calls": 0, "depth": 0},
                                    compare=False)

    def run(self, call: Callable[[], T]) -> T:
        if self.spent["depth"]:  # a call made inside another is already being timed
            return super().run(call)
        self.spent["depth"] = 1
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return super().run(call)
        finally:
            self.spent["wall"] += time.perf_counter() - wall
            self.spent["cpu"] += time.process_time() - cpu
            self.spent["calls"] += 1
            self.spent["depth"] = 0


def split(wall: float, cpu: float, inside: dict[str, float], records: int) -> dict[str, float]:
    """Milliseconds per record: crmsync's CPU (total, outside CRM calls, inside them) and waiting on the CRM."""
    per = 1000 / max(records, 1)
    return {"cpu_ms_per_record": round(cpu * per, 3),
            "cpu_outside_crm_calls_ms_per_record": round((cpu - inside["cpu"]) * per, 3),
            "cpu_inside_crm_calls_ms_per_record": round(inside["cpu"] * per, 3),
            "waiting_on_crm_ms_per_record": round((inside["wall"] - inside["cpu"]) * per, 3),
            "other_waiting_ms_per_record": round(((wall - inside["wall"]) - (cpu - inside["cpu"])) * per, 3),
            "cpu_seconds": round(cpu, 2), "inside_crm_calls_seconds": round(inside["wall"], 2)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--backfill", action="store_true", help="run as `crmsync backfill` (own cursor)")
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "crmsync", "sandbox", "serve", "--crm", args.crm, "--port", "0",
                               "--contacts", str(args.contacts)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
    samples: list[tuple[float, float, int]] = []
    try:
        definitions = load_definitions(ROOT / "config" / "definitions.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{tmp}/bench.db")
            connector: HubSpotConnector | SalesforceConnector
            timed = TimedRetry()
            if args.crm == "hubspot":
                connector = HubSpotConnector(HubSpotSettings(access_token=SecretStr("bench"), base_url=url),
                                             definitions.definitions.mappings.hubspot, retry=timed)
            else:
                connector = SalesforceConnector(
                    SalesforceSettings(instance_url=url, login_url=url, client_id="bench",
                                       client_secret=SecretStr("bench")), definitions.definitions.mappings.salesforce,
                    retry=timed)
            done = threading.Event()
            progress: dict[str, int] = {"pulled": 0}
            started, cpu_started = time.perf_counter(), time.process_time()

            def sample() -> None:
                while not done.wait(0.5):
                    samples.append((time.perf_counter() - started, rss_mb(), progress["pulled"]))

            def on_page(report: PassReport) -> None:
                progress["pulled"] = report.counts["pulled"]

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            syncer = SyncPass(store, connector, definitions, progress=on_page)
            if args.backfill:
                report = syncer.run(kind="backfill", since=datetime(2000, 1, 1, tzinfo=UTC),
                                    until=datetime.now(UTC), stream="backfill:bench")
            else:
                report = syncer.run()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            done.set()
            sampler.join()
            with urllib.request.urlopen(url + "/__sandbox/counts") as response:
                calls = json.loads(response.read())["calls"]
    finally:
        server.terminate()
        server.wait(timeout=10)

    c = report.counts
    pages = math.ceil(c["pulled"] / 200)
    minimum = calls.get("events.list", 0) + pages + calls.get("associations.batch_read", 0) \
        + calls.get("objects.batch_read", 0) + calls.get("objects.batch_update", 0) \
        + calls.get("objects.batch_create", 0) + calls.get("objects.search", 0) - pages
    made = sum(calls.values())
    rss = [s[1] for s in samples] or [rss_mb()]
    quarter = max(1, len(rss) // 4)
    result = {
        "benchmark": "backfill" if args.backfill else "first_sync", "crm": args.crm, "contacts": c["pulled"],
        "seconds": round(elapsed, 1), "records_per_second": round(c["pulled"] / elapsed), "written": c["written"],
        "tasks": c["tasks"], "events": c["events"], "calls": made, "calls_by_endpoint": calls,
        "peak_rss_mb": round(max(rss), 1), "rss_first_quarter_mb": round(max(rss[:quarter]), 1),
        "rss_last_quarter_mb": round(max(rss[-quarter:]), 1),
        "rss_samples": [(round(t, 1), round(m, 1), n) for t, m, n in samples[:: max(1, len(samples) // 20)]],
        "minimum_calls": minimum, **split(elapsed, cpu, timed.spent, c["pulled"]),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.crm} {result['benchmark']}: {c['pulled']:,} contacts in {elapsed:.1f}s = "
          f"{result['records_per_second']:,} records/s; {c['written']:,} written, {c['tasks']} tasks; "
          f"{made} API calls {calls}; peak RSS {result['peak_rss_mb']} MB "
          f"(first quarter {result['rss_first_quarter_mb']} MB, last quarter {result['rss_last_quarter_mb']} MB)")
    print(f"per record: crmsync CPU {result['cpu_ms_per_record']} ms "
          f"(engine and store {result['cpu_outside_crm_calls_ms_per_record']} ms, client library "
          f"{result['cpu_inside_crm_calls_ms_per_record']} ms); waiting on the CRM "
          f"{result['waiting_on_crm_ms_per_record']} ms; other waiting (store I/O) "
          f"{result['other_waiting_ms_per_record']} ms")


if __name__ == "__main__":
    main()
