"""Records already in pipeline before crmsync's rollout (the backlog): flagged and counted, no owner task;
those that reach pipeline since are tasked as before. Engine first (pure), then end to end: reps act
through the official SDKs (hubspot-api-client, simple-salesforce) on the sandboxes, crmsync syncs
through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactCreate

from crmsync.errors import ConfigError
from crmsync.model import ActionKind, Contact
from crmsync.rules import decide
from crmsync.settings import load_settings
from crmsync.store import Store
from crmsync.sync.pipeline import SyncPass
from crmsync.sync.window import ROLLOUT_NOTE
from tests.builders import FULL_BANT, NOW, fit_contact
from tests.hubspot_fixtures import DEFS, connector, hubspot
from tests.salesforce_fixtures import salesforce
from tests.test_cli import run
from tests.test_pipeline_gate import GATE_TASK, create_deal, gate_tasks, rep
from tests.test_sync_e2e import IDEAL_DEMO
from tests.test_sync_e2e import env as hubspot_env
from tests.test_sync_e2e_salesforce import env as salesforce_env

ROLLOUT = NOW - timedelta(days=30)


def customer(**overrides: Any) -> Contact:
    """At customer by a person's hand, no BANT, never stamped by crmsync."""
    return fit_contact(**{"stage": "customer", "pipeline_route": "manual stage",
                          "created_at": "2024-03-01T09:00:00Z", **overrides})


def tasks(contact: Contact, backlog_before: datetime | None) -> list[str]:
    decision = decide(contact, [], DEFS, NOW, backlog_before=backlog_before)
    return [a.topic for a in decision.actions if a.kind is ActionKind.OPEN_TASK]


def verdict(contact: Contact, backlog_before: datetime | None) -> str | None:
    return decide(contact, [], DEFS, NOW, backlog_before=backlog_before).writes.get("skipped_gate")


def test_in_pipeline_before_the_rollout_is_flagged_as_backlog_without_a_task() -> None:
    old = customer()
    assert verdict(old, ROLLOUT) == "manual stage before rollout: missing need, authority, timeline, budget"
    assert tasks(old, ROLLOUT) == []
    flagged = decide(old, [], DEFS, NOW, backlog_before=ROLLOUT)
    assert [a.kind for a in flagged.actions] == [ActionKind.HOLD, ActionKind.FLAG_SKIPPED_GATE]
    assert flagged.writes["opportunity_at"] == flagged.writes["customer_at"]  # stamped like any verdict
    # without a cutoff (sync.pipeline_backlog_before = none) it is a skipped gate with its task, as before
    assert verdict(old, None) == "manual stage: missing need, authority, timeline, budget"
    assert tasks(old, None) == ["skipped_gate"]


def test_what_the_crm_says_decides_before_or_after_the_rollout() -> None:
    # created after the rollout: it cannot have been in pipeline before
    assert tasks(customer(created_at=(ROLLOUT + timedelta(hours=1)).isoformat()), ROLLOUT) == ["skipped_gate"]
    # Salesforce's ConvertedDate (a day) is the evidence when the CRM keeps one: converted since -> task
    since = customer(stage="opportunity", pipeline_route="conversion", pipeline_entered_at="2026-11-20")
    assert tasks(since, ROLLOUT) == ["skipped_gate"] and verdict(since, ROLLOUT) == (
        "conversion: missing need, authority, timeline, budget")
    before = customer(stage="opportunity", pipeline_route="conversion", pipeline_entered_at="2026-10-01")
    assert tasks(before, ROLLOUT) == [] and verdict(before, ROLLOUT) == (
        "conversion before rollout: missing need, authority, timeline, budget")
    # the day of the rollout is not before it; a conversion date before the record existed is not believed
    assert tasks(customer(pipeline_entered_at=ROLLOUT.date().isoformat()), datetime(
        ROLLOUT.year, ROLLOUT.month, ROLLOUT.day, tzinfo=UTC)) == ["skipped_gate"]
    assert tasks(customer(pipeline_entered_at="2020-01-01", created_at=NOW.isoformat()), ROLLOUT) == ["skipped_gate"]
    # no readable date at all: not known to be before, so judged as it is
    assert tasks(customer(created_at="garbage"), ROLLOUT) == ["skipped_gate"]


def test_the_backlog_changes_nothing_for_documented_or_already_judged_records() -> None:
    assert verdict(customer(bant=FULL_BANT), ROLLOUT) == ""
    judged = customer(opportunity_at="2026-01-01T00:00:00Z", skipped_gate="manual stage: missing budget")
    assert verdict(judged, ROLLOUT) is None and tasks(judged, ROLLOUT) == []
    assert tasks(fit_contact(stage="sql", created_at="2024-03-01T09:00:00Z"), ROLLOUT) == ["sql_blocked"]


def test_the_setting_takes_a_date_first_pass_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMSYNC_CONFIG", raising=False)
    assert load_settings().sync.pipeline_backlog_before == "first-pass"
    for value, read in (("2026-09-01", date(2026, 9, 1)), ("none", "none"), ("first-pass", "first-pass")):
        monkeypatch.setenv("CRMSYNC_SYNC__PIPELINE_BACKLOG_BEFORE", value)
        assert load_settings().sync.pipeline_backlog_before == read
    monkeypatch.setenv("CRMSYNC_SYNC__PIPELINE_BACKLOG_BEFORE", "last tuesday")
    with pytest.raises(ConfigError, match="CRMSYNC_SYNC__PIPELINE_BACKLOG_BEFORE"):
        load_settings()


def test_the_rollout_is_noted_once_by_the_first_pass_and_not_by_a_dry_run(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    first, later = NOW, NOW + timedelta(days=2)
    with hubspot(5) as (_app, url):
        SyncPass(store, connector(url), DEFS, clock=lambda: first, dry_run=True).run()
        assert store.cursor("hubspot", ROLLOUT_NOTE) is None
        SyncPass(store, connector(url), DEFS, clock=lambda: first).run()
        SyncPass(store, connector(url), DEFS, clock=lambda: later).run()
    assert store.cursor("hubspot", ROLLOUT_NOTE) == first


def test_hubspot_first_pass_flags_the_backlog_without_tasks_and_later_doors_are_tasked(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with hubspot(30, real_clock=True) as (app, url):
        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        contacts = app.portal.records["contacts"]
        backlog = [c for c in contacts.values() if "before rollout: missing" in c.properties.get(
            "crmsync_skipped_gate", "")]
        assert backlog, "the seed has records in pipeline without BANT"
        assert all(c.properties["crmsync_opportunity_at"] for c in backlog)
        assert not any(gate_tasks(app, c.id) for c in contacts.values())
        status = json.loads(run("status", "--json", env=hubspot_env(url, db)).stdout)["contract"]
        assert status["skipped_gates"] == status["skipped_gates_backlog"] == len(backlog)

        # since the rollout: a deal for an MQL crmsync saw outside pipeline, and a contact created
        # straight at customer (an import by hand): both skipped the gate, one task each
        client = rep(url)
        mql = list(contacts)[IDEAL_DEMO]
        create_deal(client, mql, "Northwind expansion")
        created = client.crm.contacts.basic_api.create(ContactCreate(properties={
            "email": "new.customer@contoso.io", "lifecyclestage": "customer"}))
        assert run("sync", "--once", env=hubspot_env(url, db)).returncode == 0
        assert contacts[mql].properties["crmsync_skipped_gate"].startswith("deal: missing ")
        assert contacts[str(created.id)].properties["crmsync_skipped_gate"].startswith("manual stage: missing ")
        assert len(gate_tasks(app, mql)) == 1 and len(gate_tasks(app, str(created.id))) == 1
        status = json.loads(run("status", "--json", env=hubspot_env(url, db)).stdout)["contract"]
        assert (status["skipped_gates"], status["skipped_gates_backlog"]) == (len(backlog) + 2, len(backlog))
        text = run("status", env=hubspot_env(url, db)).stdout
        assert f"{len(backlog) + 2} records ({len(backlog)} before rollout)" in text


@pytest.mark.parametrize("cutoff", ["after the last conversion", "on the first conversion", "none"])
def test_salesforce_conversion_date_against_a_configured_cutoff(tmp_path: Path, cutoff: str) -> None:
    """The seed's opportunity and customer leads were converted on days of their own (ConvertedDate):
    a cutoff the day after the last one makes them all the backlog; on the day of the first one (not
    before it), or without a backlog, every undocumented one is tasked."""
    db = tmp_path / "s.db"
    with salesforce(40) as (app, url):
        days = sorted(date.fromisoformat(lead["ConvertedDate"]) for lead in app.org.records["Lead"].values()
                      if lead.get("IsConverted"))
        assert days, "the seed converts its opportunity and customer leads"
        setting = {"after the last conversion": (days[-1] + timedelta(days=1)).isoformat(),
                   "on the first conversion": days[0].isoformat(), "none": "none"}[cutoff]
        env = {**salesforce_env(url, db), "CRMSYNC_SYNC__PIPELINE_BACKLOG_BEFORE": setting}
        assert run("sync", "--once", "--crm", "salesforce", env=env).returncode == 0
        figures = Store.open(f"sqlite:///{db}").contract(datetime.now(UTC))
        gate = [t for t in app.org.records["Task"].values() if t.get("Subject") == GATE_TASK]
        assert figures["skipped_gates"] > 0
        backlog = cutoff == "after the last conversion"
        assert figures["skipped_gates_backlog"] == (figures["skipped_gates"] if backlog else 0)
        assert len(gate) == (0 if backlog else figures["skipped_gates"])
