"""API economy on the HubSpot sandbox: calls made to pull N contacts with their activities and
write decisions back, against the minimum the API allows (pages + batches), and writes on a re-run.

Goal (the goals table in docs/benchmarks.md): calls <= 1.1 x minimum; 0 writes on a re-run with nothing changed.

    python scripts/bench_api_calls.py [--contacts 10000] [--crm hubspot|salesforce] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from crmsync.crms.hubspot.connector import HISTORY_BATCH, HubSpotConnector
from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.sandbox import SalesforceApp, seed_org
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.rules import decide
from crmsync.sandbox.http import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EPOCH, LATER = datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)


def salesforce(count: int, definitions: LoadedDefinitions) -> dict[str, Any]:
    """The same on the Salesforce sandbox: pages of 2,000, three IN queries per 300 leads, composite of 200."""
    app = SalesforceApp(shape="rich")
    app.org.clock = lambda: NOW
    seed_org(app.org, count, now=NOW)
    with SandboxServer(app) as server:
        settings = SalesforceSettings(instance_url=server.url, login_url=server.url, client_id="bench",
                                      client_secret=SecretStr("bench"))
        connector = SalesforceConnector(settings, definitions.definitions.mappings.salesforce)
        started = time.perf_counter()
        minimum, pulled, changes = 1, 0, []  # 1: the OAuth login
        for page in connector.pull_changed(EPOCH, LATER):
            minimum += 1
            activities = connector.activities([c.id for c in page.contacts])
            minimum += 3 * math.ceil(len(page.contacts) / 300)
            for contact in page.contacts:
                change = connector.changes(contact, decide(contact, activities[contact.id], definitions, NOW).writes)
                if change:
                    changes.append(change)
            pulled += len(page.contacts)
        results = connector.write(changes)
        minimum += math.ceil(len(changes) / 200)
        seconds = time.perf_counter() - started
        calls = sum(app.call_counts().values())
        app.reset_counts()
        rewrites = 0
        for page in connector.pull_changed(EPOCH, LATER):
            activities = connector.activities([c.id for c in page.contacts])
            rewrites += sum(connector.changes(c, decide(c, activities[c.id], definitions, NOW).writes) is not None
                            for c in page.contacts)
    return {"benchmark": "api_calls", "crm": "salesforce", "contacts": pulled, "writes": len(changes),
            "write_failures": sum(not r.ok for r in results), "calls": calls, "minimum": minimum,
            "ratio": round(calls / minimum, 3), "rerun_writes": rewrites, "first_pass_seconds": round(seconds, 1),
            "records_per_second": round(pulled / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    definitions = load_definitions(ROOT / "config" / "definitions.yaml")
    if args.crm == "salesforce":
        result = salesforce(args.contacts, definitions)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"salesforce: {result['contacts']:,} leads: {result['calls']} calls for a minimum of "
                  f"{result['minimum']} (ratio {result['ratio']}, goal <= 1.1); {result['writes']:,} written, "
                  f"{result['write_failures']} failed; re-run with nothing changed: {result['rerun_writes']} writes "
                  f"(goal 0); {result['records_per_second']:,} records/s")
        return
    app = HubSpotApp(tier="enterprise")  # the events API (Enterprise only) is part of what is measured
    app.portal.clock = lambda: NOW
    seed_portal(app.portal, args.contacts, now=NOW)
    with SandboxServer(app) as server:
        connector = HubSpotConnector(HubSpotSettings(access_token=SecretStr("bench"), base_url=server.url),
                                     definitions.definitions.mappings.hubspot)
        started = time.perf_counter()
        events: dict[str, list] = {}  # type: ignore[type-arg]
        for contact_id, activity in connector.events(EPOCH, LATER):
            events.setdefault(contact_id, []).append(activity)
        minimum = 1 + sum(max(1, math.ceil(sum(1 for e in app.portal.events if e["eventType"] == t) / 100))
                          for t in connector.capabilities().event_types)  # 1: the portal's event types
        pulled, changes = 0, []
        for page in connector.pull_changed(EPOCH, LATER):
            ids = [c.id for c in page.contacts]
            minimum += 1
            activities = connector.activities(ids)
            for object_type in connector.engagement_types:
                linked = sum(len(app.portal.associations[object_type].get(i, [])) for i in ids)
                minimum += math.ceil(len(ids) / 1000) + math.ceil(linked / 100)
            minimum += math.ceil(len(ids) / HISTORY_BATCH)  # email opens/clicks from property history
            for contact in page.contacts:
                decision = decide(contact, activities[contact.id] + events.get(contact.id, []), definitions, NOW)
                change = connector.changes(contact, decision.writes)
                if change:
                    changes.append(change)
            pulled += len(page.contacts)
        read_calls = sum(app.call_counts().values())
        read_minimum = minimum
        results = connector.write(changes)
        order = connector.lifecycle_order()  # read once (counted below)
        backward = sum(1 for c in changes if connector.map.moves_lifecycle_back(
            c.previous.get("lifecyclestage", ""), c.properties.get("lifecyclestage", ""), order))
        minimum += 1 + math.ceil(len(changes) / 100) + math.ceil(backward / 100)
        first_pass = time.perf_counter() - started
        total_calls = sum(app.call_counts().values())
        app.reset_counts()
        rewrites = 0
        for page in connector.pull_changed(EPOCH, LATER):
            activities = connector.activities([c.id for c in page.contacts])
            for contact in page.contacts:
                decision = decide(contact, activities[contact.id] + events.get(contact.id, []), definitions, NOW)
                rewrites += connector.changes(contact, decision.writes) is not None
    result = {
        "benchmark": "api_calls", "crm": "hubspot", "contacts": pulled, "events": sum(map(len, events.values())),
        "read_calls": read_calls, "read_minimum": read_minimum, "writes": len(changes),
        "write_failures": sum(not r.ok for r in results), "calls": total_calls, "minimum": minimum,
        "ratio": round(total_calls / minimum, 3), "rerun_writes": rewrites, "first_pass_seconds": round(first_pass, 1),
        "records_per_second": round(pulled / first_pass),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"hubspot: {pulled:,} contacts, {result['events']:,} events: {total_calls} calls for a minimum of "
          f"{minimum} (ratio {result['ratio']}, goal <= 1.1); {len(changes):,} records written, "
          f"{result['write_failures']} failed; re-run with nothing changed: {rewrites} writes (goal 0); "
          f"{result['records_per_second']:,} records/s in {first_pass:.1f}s")


if __name__ == "__main__":
    main()
