"""Erasure (`crmsync forget`) and retention (`crmsync prune`) of the personal data in the store,
after real syncs of both CRMs' sandboxes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from crmsync.errors import RecordError
from crmsync.reporting.explain import explain
from crmsync.store import Store
from crmsync.store import schema as t
from crmsync.sync import SyncPass
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run


def everything(store: Store) -> list[tuple[str, dict[str, Any]]]:
    with store.engine.connect() as c:
        return [(table.name, dict(row)) for table in t.metadata.sorted_tables
                for row in c.execute(select(table)).mappings()]


def mentions(store: Store, crm: str, record_id: str, values: list[str]) -> list[str]:
    """Where the store still holds the record: rows keyed by it, or any of its values anywhere."""
    found = [name for name, row in everything(store) if row.get("crm") == crm and row.get("record_id") == record_id]
    dump = json.dumps(everything(store), default=str)
    return found + [value for value in values if value in dump]


def test_forget_erases_a_hubspot_record_from_every_table(database_url: str) -> None:
    with hubspot(30) as (app, url):
        store = Store.open(database_url)
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run()
    decided = [row["record_id"] for row in store.latest_decisions(SEED_NOW - timedelta(days=3650))]
    record_id = decided[0]
    props = app.portal.records["contacts"][record_id].properties
    personal = [props[k] for k in ("email", "firstname", "lastname") if props.get(k)]
    assert mentions(store, "hubspot", record_id, personal)  # the store held it
    result = run("forget", "--crm", "hubspot", record_id, env={"CRMSYNC_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "erased 1 records" in result.stdout
    assert mentions(store, "hubspot", record_id, personal) == []
    assert mentions(store, "hubspot", decided[1], [])  # the others stay
    with pytest.raises(RecordError, match="no decision stored"):
        explain(store, "hubspot", record_id, DEFS)


def test_forget_erases_a_salesforce_lead_from_every_table(database_url: str) -> None:
    with salesforce(20) as (app, url):
        store = Store.open(database_url)
        SyncPass(store, sf_connector(url), DEFS, clock=lambda: SEED_NOW).run()
        lead_id = next(iter(store.latest_decisions(SEED_NOW - timedelta(days=3650))))["record_id"]
        lead = app.org.records["Lead"][lead_id]
    personal = [lead[k] for k in ("Email", "LastName") if lead.get(k)]
    assert mentions(store, "salesforce", lead_id, personal)
    erased = store.forget("salesforce", lead_id)
    assert erased["records"] == 1 and erased["decisions"] >= 1 and erased["inputs"] >= 1
    assert mentions(store, "salesforce", lead_id, personal) == []


def test_prune_drops_old_inputs_and_keeps_decisions_and_current_inputs(database_url: str) -> None:
    with hubspot(20) as (_app, url):
        store = Store.open(database_url)
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run()
    record_id = next(iter(store.latest_decisions(SEED_NOW - timedelta(days=3650))))["record_id"]
    old = store.decisions_for("hubspot", record_id)[0]
    with store.transaction() as c:  # the record's decision is 400 days old and its inputs are history
        c.execute(update(t.decisions).where(t.decisions.c.id == old["id"])
                  .values(decided_at=SEED_NOW - timedelta(days=400)))
        c.execute(update(t.records).where(t.records.c.crm == "hubspot", t.records.c.record_id == record_id)
                  .values(inputs_hash="a-newer-pull"))
    before = len([1 for name, _ in everything(store) if name == "inputs"])
    env = {"CRMSYNC_DATABASE_URL": database_url, "CRMSYNC_INPUTS_RETENTION_DAYS": "365"}
    result = run("prune", env=env)
    assert result.returncode == 0, result.stderr
    assert "dropped 1 stored input set(s)" in result.stdout
    assert store.inputs_for(old["inputs_hash"]) is None
    assert len([1 for name, _ in everything(store) if name == "inputs"]) == before - 1
    assert store.decisions_for("hubspot", record_id)[0]["decision"] == old["decision"]  # the summary stays
    with pytest.raises(RecordError, match="inputs are missing"):
        explain(store, "hubspot", record_id, DEFS)
    assert "dropped 0" in run("prune", env=env).stdout  # recent and current inputs are kept
