"""`crmsync demo`: the whole loop on the embedded default, with no CRM account and no services.

Both sandboxes start in-process with realistic seeded leads, the store is a SQLite file, a first
sync runs on both CRMs, then a day of rep activity happens (MQLs accepted, calls logged, one rep
setting SQL without a budget, a "not interested" disqualification), and a second sync a day later
enforces the contract. On Salesforce the BANT guard is installed first (`crmsync setup --guard`, with
the org's "Require Validation for Converted Leads" on), so a rep's attempt to convert an undocumented
lead is refused by the org itself; on HubSpot, which has no such rule, a rep's deal for an undocumented
MQL is detected by the second sync and its owner tasked. The output is the funnel, what was written, the
blocked SQLs with what is missing, the pipeline without documented qualification, SLA states and two
explained decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from crmsync.connectors import registry
from crmsync.connectors.base import Connector
from crmsync.connectors.retry import RetryPolicy
from crmsync.crms.hubspot.sandbox import HubSpotApp, seed_portal
from crmsync.crms.hubspot.sandbox.state import Portal, Record
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.crms.salesforce.sandbox import SalesforceApp, seed_org
from crmsync.crms.salesforce.sandbox.org import BANT_FIELDS, FieldError, Org
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.definitions import LoadedDefinitions
from crmsync.model import BANT_ITEMS
from crmsync.reporting.contract import pipeline_line
from crmsync.reporting.explain import explain, render
from crmsync.reporting.report import build_report
from crmsync.sandbox.http import SandboxServer
from crmsync.settings import Settings
from crmsync.store import Store
from crmsync.store.kinds import OutboxKind, OutboxStatus
from crmsync.sync import PassReport, SyncPass
from crmsync.sync.decide import TASK_SUBJECTS

Print = Callable[[str], None]


def run_demo(definitions: LoadedDefinitions, database: Path, leads: int = 300, echo: Print = print) -> None:
    if database.exists():
        database.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{database}")
    hubspot, salesforce = HubSpotApp(), SalesforceApp(shape="rich")
    seed_portal(hubspot.portal, leads, seed=7)
    seed_org(salesforce.org, leads, seed=8)
    retry = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.5)
    with SandboxServer(hubspot) as hs_server, SandboxServer(salesforce) as sf_server:
        sections: dict[str, Any] = {  # the CRM sections (built at import: by name), validated
            "hubspot": HubSpotSettings(access_token=SecretStr("demo"), base_url=hs_server.url),
            "salesforce": SalesforceSettings(instance_url=sf_server.url, login_url=sf_server.url, client_id="demo",
                                             client_secret=SecretStr("demo"))}
        settings = Settings.model_construct(**sections)  # nothing read from the environment
        connectors: dict[str, Connector] = {name: registry.connect(name, settings, definitions, retry)
                                            for name in registry.configured(settings)}
        for name, connector in connectors.items():  # what `crmsync setup --guard` does (Salesforce's guard)
            if (guard := registry.get(name).guard) is not None:
                guard(connector)
        salesforce.org.require_validation_on_convert = True  # the admin's Lead Settings
        echo(f"crmsync demo: HubSpot sandbox {hs_server.url} ({leads} contacts), Salesforce sandbox "
             f"{sf_server.url} ({leads} leads), store {database}, definitions {definitions.version}\n")
        echo("1. First sync: decide every lead and write the contract back")
        first_now = datetime.now(UTC)
        for connector in connectors.values():
            _summary(echo, SyncPass(store, connector, definitions, clock=lambda: first_now).run())

        echo("\n2. A day of rep activity")
        for line in _rep_day(hubspot, salesforce):
            echo(f"   - {line}")

        echo("\n3. Second sync, a day later: accepted MQLs become SAL, undocumented SQLs are reverted")
        later = first_now + timedelta(days=1, hours=2)
        for connector in connectors.values():
            syncer = SyncPass(store, connector, definitions, clock=lambda: later)
            _summary(echo, syncer.run())
            syncer.sweep()
        _results(echo, store, definitions, hubspot, salesforce, later)


def _summary(echo: Print, report: PassReport) -> None:
    c = report.counts
    stages = ", ".join(f"{stage} {n}" for stage, n in sorted(report.stages.items(), key=lambda kv: -kv[1]))
    echo(f"   {report.crm:10} pulled {c['pulled']}, deals {c['deals']}, written {c['written']}, owner tasks "
         f"{c['tasks']}, quarantined {c['quarantined']}; decided: {stages}")


def _rep_day(hubspot: HubSpotApp, salesforce: SalesforceApp) -> list[str]:
    portal, org = hubspot.portal, salesforce.org
    lines = []
    mqls = [r for r in portal.records["contacts"].values() if r.properties.get("crmsync_stage") == "mql"]
    for record in mqls[:4]:
        portal.update("contacts", record.id, {"hs_lead_status": "IN_PROGRESS"})
    lines.append(f"HubSpot: owners accepted {min(4, len(mqls))} MQLs (lead status In progress)")
    if mqls:
        call = portal.create("calls", {"hs_call_title": "Discovery call", "hs_call_direction": "OUTBOUND",
                                       "hs_timestamp": datetime.now(UTC).isoformat()})
        portal.associate("calls", mqls[0].id, call.id)
        portal.touch(mqls[0].id, datetime.now(UTC))
        lines.append(f"HubSpot: a discovery call logged on contact {mqls[0].id}")
    if len(mqls) > 5:
        sql = mqls[5]
        portal.update("contacts", sql.id, {
            "lifecyclestage": "salesqualifiedlead",
            "crmsync_bant_need": "Routing loses a third of inbound demo requests",
            "crmsync_bant_authority": "VP Sales signs off", "crmsync_bant_timeline": "within 6 weeks",
            "crmsync_bant_budget": ""})
        lines.append(f"HubSpot: a rep set contact {sql.id} to SQL with the budget left blank")
    if len(mqls) > 6:
        portal.update("contacts", mqls[6].id, {"hs_lead_status": "UNQUALIFIED", "crmsync_dq_reason": "Not interested"})
        lines.append(f"HubSpot: contact {mqls[6].id} disqualified as \"Not interested\"")
    lines += _deal_for_undocumented(portal, mqls[7:])
    sf_mqls = [r for r in org.records["Lead"].values() if r.get("CRMSync_Stage__c") == "MQL"]
    for lead in sf_mqls[:3]:
        org.update("Lead", lead["Id"], {"Status": "Working - Contacted"})
    lines.append(f"Salesforce: owners accepted {min(3, len(sf_mqls))} MQLs (Working - Contacted)")
    if len(sf_mqls) > 4:
        chosen = sf_mqls[4]["Id"]
        # text in all four fields passes the guard's formula; the definitions judge the words
        org.update("Lead", chosen, {"Status": "Qualified", "BANT_Need__c": "Forecasts are off by 30 % every quarter",
                                    "BANT_Authority__c": "CFO decides", "BANT_Timeline__c": "next year",
                                    "BANT_Budget__c": "tbd"})
        lines.append(f"Salesforce: a rep set lead {chosen} to Qualified with timeline \"next year\" and budget \"tbd\"")
    lines += _convert_undocumented(org, [lead["Id"] for lead in sf_mqls])
    return lines


def _deal_for_undocumented(portal: Portal, mqls: list[Record]) -> list[str]:
    """A rep creating a deal for an MQL with no BANT: HubSpot has no rule to refuse it, so crmsync
    detects it (the deal stream names the contact, now at opportunity) and tasks the owner."""
    contact = next((r for r in mqls if not any(r.properties.get(f"crmsync_bant_{item}") for item in BANT_ITEMS)), None)
    if contact is None:
        return []
    deal = portal.create("deals", {"dealname": "Expansion (demo)", "dealstage": "appointmentscheduled",
                                   "amount": "18000"})
    portal.associate_deal(deal.id, contact.id)  # HubSpot's lifecycle sync moves the contact to opportunity
    return [f"HubSpot: a rep created deal {deal.id} (amount 18,000) for undocumented MQL {contact.id}"]


def _convert_undocumented(org: Org, mqls: list[str]) -> list[str]:
    """A rep pressing Convert on an MQL with no BANT: the guard's validation rule refuses it."""
    rid = next((r for r in mqls if not any(org.records["Lead"][r].get(f) for f in BANT_FIELDS)), None)
    if rid is None:
        return []
    try:
        org.convert(rid)
    except FieldError as exc:
        return [f"Salesforce: a rep tried to convert undocumented lead {rid}: refused by the guard ({exc.code})"]
    return [f"Salesforce: a rep converted undocumented lead {rid} (no guard)"]


def _results(echo: Print, store: Store, definitions: LoadedDefinitions, hubspot: HubSpotApp,
             salesforce: SalesforceApp, now: datetime) -> None:
    report = build_report(store, definitions, now - timedelta(days=365), now)
    echo("\n4. Funnel (both CRMs, first seen in the last year)")
    for row in report["funnel"]:
        rate = "" if row["rate_from_previous"] is None else f"  {row['rate_from_previous']:.0%} of previous"
        echo(f"   {row['stage']:12} {row['count']:5}{rate}")

    echo("\n5. What crmsync wrote (fields set on the records)")
    written: Counter[str] = Counter()
    for crm in registry.KNOWN:
        for row in store.outbox_rows(crm, OutboxStatus.DONE):
            if row["kind"] == OutboxKind.WRITE:
                written.update(row["payload"]["properties"].keys())
    for name, count in written.most_common(12):
        echo(f"   {name:34} {count:5}")

    echo("\n6. SQL requests blocked, and what is missing")
    blocked = []
    for record in hubspot.portal.records["contacts"].values():
        if record.properties.get("crmsync_sql_blocked_reason"):
            blocked.append(("hubspot", record.id, record.properties["crmsync_sql_blocked_reason"]))
    for lead in salesforce.org.records["Lead"].values():
        if lead.get("CRMSync_SQL_Blocked_Reason__c"):
            blocked.append(("salesforce", lead["Id"], lead["CRMSync_SQL_Blocked_Reason__c"]))
    for crm, rid, reason in blocked[:6]:
        echo(f"   {crm:10} {rid}: {reason}")
    echo(f"   ({len(blocked)} in all; each owner got a task)")
    flagged = [(r.id, r.properties["crmsync_dq_reason_status"]) for r in hubspot.portal.records["contacts"].values()
               if r.properties.get("crmsync_dq_reason_status", "").startswith("invalid")]
    echo(f"\n   Disqualification reasons flagged as invalid: {len(flagged)}")
    for rid, status in flagged[:3]:
        echo(f"   hubspot    {rid}: {status}")

    echo("\n   Pipeline without documented qualification (deals for undocumented records, detected and tasked)")
    portal = hubspot.portal
    for record in portal.records["contacts"].values():
        if record.properties.get("crmsync_skipped_gate", "").startswith("deal:"):
            tasked = sum(portal.records["tasks"][tid].properties.get("hs_task_subject") == TASK_SUBJECTS["skipped_gate"]
                         for tid in portal.associations["tasks"].get(record.id, []))
            echo(f"   hubspot    {record.id}: {record.properties['crmsync_skipped_gate']} (owner tasks: {tasked})")
    echo(f"   {pipeline_line(store.contract(now))}")

    echo("\n7. SLA states after a day")
    states = Counter(r.properties.get("crmsync_sla_state") for r in hubspot.portal.records["contacts"].values()
                     if r.properties.get("crmsync_sla_state"))
    states.update(lead.get("CRMSync_SLA_State__c") for lead in salesforce.org.records["Lead"].values()
                  if lead.get("CRMSync_SLA_State__c"))
    for state, count in states.most_common():
        echo(f"   {state:36} {count:5}")

    echo("\n8. Two decisions, explained")
    picks = [("hubspot", b[1]) for b in blocked if b[0] == "hubspot"][:1]
    mql = next((r.id for r in hubspot.portal.records["contacts"].values()
                if r.properties.get("crmsync_stage") in ("mql", "sal")
                and not r.properties.get("crmsync_sql_blocked_reason")), None)
    if mql:
        picks.append(("hubspot", mql))
    for crm, rid in picks:
        echo("")
        echo("\n".join("   " + line for line in render(explain(store, crm, rid, definitions)).splitlines()))
