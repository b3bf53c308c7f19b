"""An SLA sweep decides from the inputs of the last pull (before crmsync's own write and a rep's later edit):
it writes only the clocks' state, never a stage or lead status over the rep's edit."""
from __future__ import annotations

from crmsync.store import Store, aware
from crmsync.sync import SyncPass
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.test_later_edits_win import ACCEPTED, _accept, _state


def test_a_sweep_after_a_reps_edit_keeps_the_reps_lead_status(database_url: str) -> None:
    store = Store.open(database_url)
    with hubspot(80) as (app, url):
        first = SyncPass(store, connector(url), DEFS).run()
        mqls = [p for p in store.records("hubspot", list(app.portal.records["contacts"])).values()
                if p["target_stage"] == "mql" and p["sla_next_at"] is not None
                and not (p["snapshot"] or {}).get("hs_lead_status")
                and _state(app, "hubspot", p["record_id"])[1] == "NEW"]
        assert mqls, first.counts
        row = mqls[0]
        rid = row["record_id"]
        _accept("hubspot", url, rid)  # the rep accepts the MQL; no pull runs before the sweep
        assert _state(app, "hubspot", rid)[1] == ACCEPTED["hubspot"]
        due = aware(row["sla_next_at"])
        report = SyncPass(store, connector(url), DEFS, clock=lambda: due).sweep()
        assert report.outcome == "ok"
        assert _state(app, "hubspot", rid)[1] == ACCEPTED["hubspot"], "the sweep wrote over the rep's status"
