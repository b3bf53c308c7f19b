"""SLA clocks over the business calendar, the sweep, reason codes and recycling, end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crmsync.definitions import LoadedDefinitions
from crmsync.metrics import Metrics
from crmsync.model import Stage
from crmsync.reporting.contract import contract_alerts
from crmsync.rules import decide
from crmsync.rules.calendar import BusinessCalendar
from crmsync.store import Store
from crmsync.sync import SyncPass
from crmsync.sync.inputs import contact_inputs, restore
from tests.builders import ManualClock, activity, demo_request, fit_contact, whitepaper
from tests.hubspot_fixtures import DEFS, connector, hubspot

ET = ZoneInfo("America/New_York")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ET)  # type: ignore[misc]


def clocks(decision) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.name: c.state for c in decision.slas}


def test_friday_evening_mql_is_not_breached_on_saturday(definitions: LoadedDefinitions) -> None:
    mql = fit_contact(stage="mql", governed_stage="mql", mql_at=at(2026, 11, 20, 17, 30).isoformat())
    for hour in (9, 12, 17):
        decision = decide(mql, [whitepaper(3)], definitions, at(2026, 11, 21, hour))
        assert "breached" not in clocks(decision).values(), (hour, decision.slas)
    accept = next(c for c in decision.slas if c.name == "accept")
    assert accept.due_at == "2026-11-23T18:00:00Z"  # Monday 13:00 in New York: 09:00 + 4 business hours


def test_four_business_hours_are_counted_across_a_holiday(definitions: LoadedDefinitions) -> None:
    calendar = BusinessCalendar(definitions.definitions.calendar)
    start = at(2026, 11, 25, 15, 0)  # Wednesday before Thanksgiving
    assert calendar.add_business_hours(start, 4) == at(2026, 11, 27, 11, 0)  # Thu is a holiday
    assert calendar.business_seconds(start, at(2026, 11, 27, 11, 0)) == 4 * 3600
    assert calendar.business_seconds(at(2026, 11, 26, 10), at(2026, 11, 26, 16)) == 0  # the holiday itself
    decision = decide(fit_contact(stage="mql", governed_stage="mql", mql_at=start.isoformat()), [whitepaper(1)],
                      definitions, at(2026, 11, 27, 10, 0))
    assert clocks(decision)["accept"] == "at_risk"  # 3 of 4 business hours used: Wed 2 h + Fri 1 h


def test_a_restart_in_the_middle_of_a_clock_changes_nothing(definitions: LoadedDefinitions) -> None:
    contact = fit_contact(stage="mql", governed_stage="mql", mql_at=at(2026, 11, 24, 10).isoformat())
    activities = [demo_request(1), activity("call", 0.5, "Left a voicemail", by_owner=True)]
    now = at(2026, 11, 24, 12, 30)
    before = decide(contact, activities, definitions, now)
    reloaded_contact, reloaded_activities = restore(contact_inputs(contact, activities))
    after = decide(reloaded_contact, reloaded_activities, definitions, now)
    assert after.slas == before.slas and after.writes["sla_state"] == before.writes["sla_state"]


def test_direct_inquiry_gets_the_four_hour_first_contact_clock(definitions: LoadedDefinitions) -> None:
    mql_at = at(2026, 11, 24, 10)
    demo = decide(fit_contact(stage="mql", governed_stage="mql", mql_at=mql_at.isoformat()),
                  [demo_request(1)], definitions, mql_at + timedelta(hours=5))
    pricing = decide(fit_contact(stage="mql", governed_stage="mql", mql_at=mql_at.isoformat()),
                     [activity("page_view", 1, "/pricing", id=f"p{n}") for n in range(3)], definitions,
                     mql_at + timedelta(hours=5))
    assert clocks(demo)["first_contact"] == "breached"
    assert clocks(pricing)["first_contact"] == "on_track"


def test_opportunity_and_disqualified_records_have_no_clocks(definitions: LoadedDefinitions) -> None:
    for stage in ("opportunity", "disqualified", "recycled"):
        decision = decide(fit_contact(stage=stage, governed_stage=stage, mql_at="2026-11-01T10:00:00Z"), [],
                          definitions, at(2026, 11, 25, 12))
        assert decision.slas == () and "sla_state" not in decision.writes


def test_never_accepted_lead_goes_at_risk_then_breached_with_one_task_each(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))  # Tuesday 07:00 in New York
    with hubspot(1) as (app, url):
        app.portal.clock = clock
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        syncer = SyncPass(store, connector(url), DEFS, clock=clock)
        syncer.run()
        contact = next(iter(app.portal.records["contacts"].values())).properties
        assert contact["crmsync_stage"] == "mql" and contact["crmsync_sla_state"] == "on_track"

        def sweep_at(hours: float) -> str:
            clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC) + timedelta(hours=hours)
            syncer.sweep()
            syncer.sweep()  # a second sweep at the same time changes nothing
            return str(next(iter(app.portal.records["contacts"].values())).properties["crmsync_sla_state"])

        assert sweep_at(3.5) == "at_risk: first_contact"  # demo request: 4 h to a first contact
        assert sweep_at(5) == "breached: first_contact"  # 12:00 NY: accept is at risk too (3 of 4 business h)
        assert sweep_at(6.5) == "breached: accept, first_contact"
        tasks = app.portal.records["tasks"].values()
        subjects = sorted(t.properties["hs_task_body"].split(" was due")[0] for t in tasks)
        assert subjects == ["SLA at_risk: accept", "SLA at_risk: first_contact", "SLA breached: accept",
                            "SLA breached: first_contact"]


def test_accepted_lead_with_discovery_in_time_stays_on_track(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # Tuesday 10:00 in New York
    with hubspot(1) as (app, url):
        app.portal.clock = clock
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        syncer = SyncPass(store, connector(url), DEFS, clock=clock)
        syncer.run()
        cid = next(iter(app.portal.records["contacts"]))
        clock.now += timedelta(hours=1)
        app.portal.update("contacts", cid, {"hs_lead_status": "IN_PROGRESS"})  # the owner accepts
        call = app.portal.create("calls", {"hs_call_title": "Discovery call", "hs_call_direction": "OUTBOUND",
                                           "hs_timestamp": clock.now.isoformat()}, at=clock.now)
        app.portal.associate("calls", cid, call.id)
        app.portal.touch(cid, clock.now)
        clock.now += timedelta(minutes=1)
        syncer.run()
        record = app.portal.records["contacts"][cid].properties
        assert record["crmsync_stage"] == "sal" and record["crmsync_sla_state"] == "met"
        clock.now += timedelta(hours=72)
        syncer.sweep()
        assert app.portal.records["contacts"][cid].properties["crmsync_sla_state"] == "met"
        assert not app.portal.records["tasks"]


def test_reason_codes_and_recycling_after_the_cool_down(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    with hubspot(1) as (app, url):
        app.portal.clock = clock
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        syncer = SyncPass(store, connector(url), DEFS, clock=clock)
        syncer.run()
        cid = next(iter(app.portal.records["contacts"]))

        def rep_sets(properties: dict[str, str]) -> dict[str, str]:
            clock.now += timedelta(minutes=10)
            app.portal.update("contacts", cid, properties)
            clock.now += timedelta(minutes=1)
            syncer.run()
            return app.portal.records["contacts"][cid].properties

        flagged = rep_sets({"hs_lead_status": "UNQUALIFIED", "crmsync_dq_reason": "not interested"})
        assert flagged["crmsync_stage"] == "mql" and "not an accepted reason" in flagged["crmsync_dq_reason_status"]
        recycled = rep_sets({"crmsync_dq_reason": "timeline_12_months"})
        assert recycled["crmsync_stage"] == "recycled" and recycled["crmsync_dq_reason_status"] == "valid"
        assert recycled["crmsync_recycled_at"]
        clock.now += timedelta(days=30)
        app.portal.touch(cid, clock.now)  # fresh activity inside the cool-down
        clock.now += timedelta(minutes=1)
        syncer.run()
        assert app.portal.records["contacts"][cid].properties["crmsync_stage"] == "recycled"
        clock.now += timedelta(days=61)
        app.portal.form_submission(cid, clock.now, "Demo request")
        clock.now += timedelta(minutes=1)
        syncer.run()
        again = app.portal.records["contacts"][cid].properties
        assert again["crmsync_stage"] == "mql" and again.get("crmsync_dq_reason") is None


def test_contract_figures_alerts_and_metrics(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    rows = []
    for i in range(10):  # ten MQLs 40 days ago: 1 became SQL within 30 days, 1 after 35 days
        mql = now - timedelta(days=40)
        rows.append({"crm": "hubspot", "record_id": str(i), "snapshot_hash": "", "inputs_hash": "",
                     "definitions_hash": "",
                     "mql_at": mql, "sal_at": mql + timedelta(hours=2) if i < 7 else None,
                     "sql_at": mql + timedelta(days=3 if i == 0 else 35) if i < 2 else None,
                     "sla_state": "breached: accept" if i == 9 else "met", "dq_invalid": i == 8,
                     "slas": [{"name": "accept", "state": "met" if i < 7 else "breached"}],
                     "updated_at": now})
    with store.transaction() as c:
        store.save_records(c, rows)
    figures = store.contract(now)
    assert figures["mql_to_sql_30d"] == 0.1 and figures["sal_acceptance"] == 0.7
    assert figures["sla_compliance"] == {"accept": 0.7} and figures["sla_breached"] == 1
    assert figures["invalid_reasons"] == 1
    alerts = contract_alerts(figures, DEFS.definitions.sla)
    assert alerts == {"mql_to_sql_30d": True, "sal_acceptance": True}
    metrics = Metrics()
    metrics.record_contract(figures, alerts)
    text = metrics.exposition().decode()
    assert 'crmsync_sla_compliance_rate{sla="accept"} 0.7' in text
    assert 'crmsync_contract_alert{figure="mql_to_sql_30d"} 1.0' in text
    assert "crmsync_invalid_reason_codes 1.0" in text and "crmsync_sla_breached 1.0" in text
    assert Stage.SQL.value == "sql"
