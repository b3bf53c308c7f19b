"""A person's later edit wins: writes a failed pass left in the outbox are checked against the CRM
before they are sent; where a rep changed what the decision depended on, the stale write is dropped
and the record re-decided. The rep edits through the official clients (hubspot-api-client,
simple-salesforce) against the sandboxes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hubspot import HubSpot

from crmsync.errors import CrmsyncError
from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, TOKEN, connector, fast_retry, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector

EDITS = 5
READ = {"hubspot": "read contacts", "salesforce": "read leads"}
ACCEPTED = {"hubspot": "IN_PROGRESS", "salesforce": "Working - Contacted"}  # lead status in_progress


def _faults_after_the_pull(app: Any) -> Callable[[PassReport], None]:
    """The CRM starts failing once the page is decided: the pass dies with its writes in the outbox."""
    return lambda _report: app.faults.set("503:1.0")


# SQLite only (the stale check is the engine's); PostgreSQL's outbox: test_store.py::test_outbox_is_idempotent...
@SQLITE_ONLY
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_rep_accepting_an_mql_after_a_failed_pass_is_not_overwritten(database_url: str, crm: str) -> None:
    store = Store.open(database_url)
    sandbox = hubspot if crm == "hubspot" else salesforce
    with sandbox(80) as (app, url):
        make = connector if crm == "hubspot" else sf_connector
        failing = make(url, retry=fast_retry(attempts=2))
        with pytest.raises(CrmsyncError):
            SyncPass(store, failing, DEFS, progress=_faults_after_the_pull(app)).run()
        app.faults.set("")
        assert store.runs()[0]["outcome"] == "failed"
        pending = store.outbox_rows(crm, "pending")
        mqls = [r["record_id"] for r in pending if r["kind"] == "write" and _to_mql(crm, r["payload"]["properties"])
                and _state(app, crm, r["record_id"])[1] in (None, "", "NEW", "Open - Not Contacted")]  # new leads
        assert len(mqls) >= EDITS
        accepted = mqls[:EDITS]
        for record_id in accepted:  # a rep accepts each MQL: lead status "in progress"
            _accept(crm, url, record_id)

        calls: Counter[str] = Counter()
        conn = make(url)
        conn.on_call = lambda what, _status: calls.update([what])
        report = SyncPass(store, conn, DEFS).run()
        assert report.outcome == "ok" and report.counts["stale_writes"] == EDITS
        assert calls[READ[crm]] == 1  # the stale writes' records re-read in one batch call
        for record_id in accepted:
            stage, status = _state(app, crm, record_id)
            assert stage == ("sal" if crm == "hubspot" else "SAL"), record_id  # SAL, not back to MQL
            assert status == ACCEPTED[crm]
        assert sorted(r["record_id"] for r in store.outbox_rows(crm, "stale")) == sorted(accepted)
        others = set(mqls[EDITS:])  # untouched records: their stale writes were checked and sent
        assert all(_state(app, crm, rid)[0] in ("mql", "MQL") for rid in others)

        calls.clear()
        again = SyncPass(store, conn, DEFS).run()  # nothing stale: a pass reads nothing twice
        assert again.counts["stale_writes"] == 0 and calls[READ[crm]] == 0
        assert store.outbox_depth() == 0


def _to_mql(crm: str, properties: dict[str, str]) -> bool:
    return properties.get("crmsync_stage" if crm == "hubspot" else "CRMSync_Stage__c") in ("mql", "MQL")


def _accept(crm: str, url: str, record_id: str) -> None:
    if crm == "hubspot":
        client = HubSpot(access_token=TOKEN, host=url)
        client.crm.contacts.basic_api.update(record_id, simple_public_object_input={
            "properties": {"hs_lead_status": ACCEPTED[crm]}})
    else:
        rep = sf_connector(url)
        rep._call("log in", lambda sf: sf.query("SELECT Id FROM Lead LIMIT 1"))
        assert rep.sf is not None
        rep.sf.Lead.update(record_id, {"Status": ACCEPTED[crm]})


def _state(app: Any, crm: str, record_id: str) -> tuple[str | None, str | None]:
    if crm == "hubspot":
        properties = app.portal.records["contacts"][record_id].properties
        return properties.get("crmsync_stage"), properties.get("hs_lead_status")
    lead = app.org.records["Lead"][record_id]
    return lead.get("CRMSync_Stage__c"), lead.get("Status")


BASIS = {"inputs": {"stage": "sql", "lead_status": "in_progress", "owner_id": "7001", "dq_reason": None,
                    "bant": {"need": None, "authority": None, "timeline": None, "budget": None}},
         "target_stage": "mql", "writes": {"stage": "mql", "lead_status": "new"}}
ROW = {"payload": {"properties": {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW"},
                   "previous": {"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "IN_PROGRESS"}}}


@pytest.mark.parametrize(("snapshot", "changes", "edited"), [
    ({"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "IN_PROGRESS"}, {}, False),  # as decided
    ({"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW"}, {"stage": "mql", "lead_status": "new"},
     False),  # already written (an answer lost)
    ({"lifecyclestage": "", "hs_lead_status": "IN_PROGRESS"}, {"stage": "sal"}, False),  # crmsync's own clear
    ({"lifecyclestage": "opportunity", "hs_lead_status": "IN_PROGRESS"}, {"stage": "opportunity"}, True),
    ({"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "CONNECTED"}, {"lead_status": "connected"}, True),
    ({"lifecyclestage": "", "hs_lead_status": "CONNECTED"}, {"stage": "sal", "lead_status": "connected"}, True),
    ({"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "IN_PROGRESS"}, {"owner_id": "7002"}, True),
    ({"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "IN_PROGRESS"},
     {"bant": {"need": "Routing loses demos", "authority": None, "timeline": None, "budget": None}}, True),
])
def test_what_counts_as_a_persons_edit(snapshot: dict[str, str], changes: dict[str, Any], edited: bool) -> None:
    from crmsync.model import Contact
    from crmsync.sync import outbox

    fields = {**BASIS["inputs"], **changes}
    current = Contact("1001", snapshot=snapshot, **fields)  # type: ignore[arg-type]
    assert outbox.edited(ROW, current, BASIS) is edited
