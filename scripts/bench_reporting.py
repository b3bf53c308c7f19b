"""Report and backtest over N stored decisions: time and peak memory.

Fills a fresh SQLite store with N decisions made by the real engine on generated leads (as a
sync would store them), then times `report` and a `backtest` of a candidate with a higher
threshold, and prints the peak RSS of this process.

    python scripts/bench_reporting.py [--decisions 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import NOW, population

from crmsync.definitions import load_definitions, parse_definitions
from crmsync.reporting.backtest import backtest
from crmsync.reporting.report import build_report
from crmsync.rules import decide
from crmsync.store import Store, fingerprint
from crmsync.sync.inputs import contact_inputs

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(store: Store, n: int, definitions: object) -> None:
    chunk = 2000
    for start in range(0, n, chunk):
        people = population(min(chunk, n - start), 10, seed=start)
        inputs, decisions, records = [], [], []
        for offset, (contact, acts) in enumerate(people):
            contact.id = str(start + offset)
            when = NOW - timedelta(days=(start + offset) % 80)
            decision = decide(contact, acts, definitions, when)  # type: ignore[arg-type]
            data = contact_inputs(contact, acts)
            digest = fingerprint(data)
            inputs.append({"hash": digest, "crm": "hubspot", "record_id": contact.id, "data": data})
            decisions.append({"run_id": None, "crm": "hubspot", "record_id": contact.id, "decided_at": when,
                              "inputs_hash": digest, "definitions_version": decision.definitions_version,
                              "definitions_hash": decision.definitions_hash,
                              "current_stage": decision.current_stage.value,
                              "target_stage": decision.target_stage.value, "mql": decision.mql,
                              "decision": decision.to_dict()})
            writes = decision.writes
            records.append({"crm": "hubspot", "record_id": contact.id, "snapshot_hash": "", "inputs_hash": digest,
                            "definitions_hash": decision.definitions_hash, "stage": decision.current_stage.value,
                            "target_stage": decision.target_stage.value, "updated_at": when,
                            "created_at": when - timedelta(days=3),
                            "mql_at": when if writes.get("mql_at") else None,
                            "sal_at": when if writes.get("sal_at") else None,
                            "sql_at": when if writes.get("sql_at") else None,
                            "slas": [{"name": c.name, "state": c.state, "started_at": c.started_at}
                                     for c in decision.slas],
                            "dq_reason": decision.reason.code if decision.reason and decision.reason.valid else None})
        with store.transaction() as c:
            store.save_inputs(c, inputs)
            store.add_decisions(c, decisions)
            store.save_records(c, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fill", metavar="DB", help=argparse.SUPPRESS)  # internal: fill DB, then exit
    args = parser.parse_args()
    if args.fill:
        definitions = load_definitions(ROOT / "config" / "definitions.yaml")
        fill(Store.open(f"sqlite:///{args.fill}"), args.decisions, definitions)
        return
    definitions = load_definitions(ROOT / "config" / "definitions.yaml")
    text = (ROOT / "config" / "definitions.yaml").read_text()
    candidate = parse_definitions(text.replace("  threshold: 50", "  threshold: 60"), "candidate")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()  # filled in another process, so the RSS below is report + backtest only
        subprocess.run([sys.executable, __file__, "--fill", f"{tmp}/bench.db", "--decisions", str(args.decisions)],
                       check=True)
        filled = time.perf_counter() - started
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        rss_after_fill = peak_rss_mb()
        started = time.perf_counter()
        report = build_report(store, definitions, NOW - timedelta(days=90), NOW + timedelta(seconds=1))
        report_seconds = time.perf_counter() - started
        started = time.perf_counter()
        summary = backtest(store, definitions, candidate, days=90, now=NOW + timedelta(seconds=1))
        backtest_seconds = time.perf_counter() - started
    result = {"benchmark": "reporting", "decisions": args.decisions, "fill_seconds": round(filled, 1),
              "report_seconds": round(report_seconds, 1), "backtest_seconds": round(backtest_seconds, 1),
              "backtest_records": summary["records"], "backtest_changed": summary["changed"],
              "report_leads": report["funnel"][0]["count"], "peak_rss_mb_before": round(rss_after_fill, 1),
              "peak_rss_mb": round(peak_rss_mb(), 1), "when": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.decisions:,} stored decisions: report {report_seconds:.1f}s, backtest {backtest_seconds:.1f}s "
          f"({summary['changed']:,} of {summary['records']:,} classified differently at threshold 60); "
          f"peak RSS {result['peak_rss_mb']} MB ({result['peak_rss_mb_before']} MB before them); "
          f"filling the store took {filled:.0f}s")


if __name__ == "__main__":
    main()
