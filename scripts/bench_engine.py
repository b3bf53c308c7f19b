"""Engine throughput: contacts decided per second, 10 activities each, default definitions.

Target (the goals table in docs/benchmarks.md): >= 20,000 contacts/s on one core. Prints numbers; never fails on timing.
Wall-clock rates are what the goal names; the CPU-time rates (this process's CPU seconds) are the
steadier figure on a busy machine, where other processes take the core away mid-round.

    python scripts/bench_engine.py [--contacts 20000] [--activities 10] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmsync.definitions import load_definitions
from crmsync.model import Activity, Contact
from crmsync.rules import decide

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TITLES = ["VP Finance", "Head of Revenue Operations", "Software Engineer", "CFO", "Marketing Manager", "Student"]
INDUSTRIES = ["Financial Services", "Software", "Mining", "Healthcare", "Retail", "Education"]
COUNTRIES = ["US", "Germany", "United Kingdom", "BR", "Canada", "India"]
DOMAINS = ["northwind-pay.com", "contoso.io", "gmail.com", "fabrikam.de", "rivalcrm.io", "tailspin.co.uk"]
STAGES = ["lead", "lead", "lead", "mql", "sal", "sql", "opportunity"]
ACTIVITIES = [("page_view", "https://example.com/pricing"), ("page_view", "https://example.com/blog/x"),
              ("page_view", "https://example.com/"), ("form_submission", "Whitepaper: RevOps 2026"),
              ("form_submission", "Demo request"), ("email_open", "Newsletter"), ("email_click", "Newsletter"),
              ("webinar", "Pipeline webinar"), ("call", "Discovery call"), ("campaign_response", "Q4 event")]


def population(n: int, per_contact: int, seed: int) -> list[tuple[Contact, list[Activity]]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        stage = rnd.choice(STAGES)
        contact = Contact(
            id=str(i), crm="hubspot", email=f"p{i}@{rnd.choice(DOMAINS)}", company=f"Company {i % 997}",
            title=rnd.choice(TITLES), industry=rnd.choice(INDUSTRIES), employees=rnd.choice([20, 80, 250, 480, 3000]),
            country=rnd.choice(COUNTRIES), stage=stage, governed_stage="mql" if stage == "sql" else stage,
            bant={"need": "Lead routing loses a third of demo requests", "authority": "CFO signs",
                  "timeline": rnd.choice(["within 6 weeks", "next year"]), "budget": rnd.choice(["$40k", "tbd"])},
        )
        acts = []
        for j in range(per_contact):
            kind, detail = rnd.choice(ACTIVITIES)
            acts.append(Activity(f"{i}-{j}", kind, NOW - timedelta(days=rnd.uniform(0, 120)), detail,
                                 by_owner=kind == "call"))
        out.append((contact, acts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    definitions = load_definitions(ROOT / "config" / "definitions.yaml")
    records = population(args.contacts, args.activities, seed=7)
    decide(*records[0], definitions, NOW)  # compile the definitions outside the timing
    rates, cpu_rates = [], []
    mql = 0
    for _ in range(args.rounds):
        start, cpu_start = time.perf_counter(), time.process_time()
        mql = sum(decide(contact, acts, definitions, NOW).mql for contact, acts in records)
        cpu_rates.append(args.contacts / max(time.process_time() - cpu_start, 1e-9))
        rates.append(args.contacts / (time.perf_counter() - start))
    result = {
        "benchmark": "engine", "contacts": args.contacts, "activities_per_contact": args.activities,
        "rounds": args.rounds, "best_per_s": round(max(rates)), "median_per_s": round(sorted(rates)[len(rates) // 2]),
        "cpu_best_per_s": round(max(cpu_rates)), "cpu_median_per_s": round(sorted(cpu_rates)[len(cpu_rates) // 2]),
        "mql_share": round(mql / args.contacts, 3), "target_per_s": 20_000, "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"engine: {result['best_per_s']:,} contacts/s best, {result['median_per_s']:,} median "
          f"({args.contacts:,} contacts x {args.activities} activities, {args.rounds} rounds, one core; "
          f"by CPU time {result['cpu_best_per_s']:,} best, {result['cpu_median_per_s']:,} median); "
          f"target >= 20,000/s; MQL share {result['mql_share']:.1%}")


if __name__ == "__main__":
    main()
