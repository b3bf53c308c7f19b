"""`crmsync report` reads through the store (`Store.reported`, `Store.contract`) and counts leads only:
record rows of another object type under the same ids (a HubSpot deal may share a contact's id) change
no figure. Real store, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crmsync.model import ObjectType
from crmsync.reporting.report import build_report
from crmsync.store import Store
from crmsync.store import schema as t
from tests.hubspot_fixtures import DEFS
from tests.test_report import NOW, history


def record_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(t.records.select()).mappings()]


def test_records_of_another_object_type_change_no_figure(database_url: str) -> None:
    store = Store.open(database_url)
    history(store)
    since = NOW - timedelta(days=90)
    before = build_report(store, DEFS, since, NOW, by="source")
    assert len(store.reported(since, NOW)) == 20

    same_ids = [{k: v for k, v in row.items() if k != "object_type"} for row in record_rows(store)]
    with store.transaction() as c:
        store.save_records(c, same_ids, object_type=ObjectType.DEAL)
    assert len(record_rows(store)) == 40  # both kinds are stored, under the same ids

    after = build_report(store, DEFS, since, NOW, by="source")
    assert after == before
    assert {row["record_id"] for row in store.reported(since, NOW)} == {str(i) for i in range(20)}
    assert len(store.reported(since, NOW, object_type=ObjectType.DEAL)) == 20


def test_open_clocks_are_not_counted_in_compliance(database_url: str) -> None:
    """Only met, met late and breached clocks are closed; an on-track or at-risk one is in no rate."""
    store = Store.open(database_url)
    history(store)
    rows = record_rows(store)
    open_clocks = [{**row, "record_id": f"open-{row['record_id']}",
                    "slas": [{"name": "accept", "state": state, "started_at": "2026-09-26T12:00:00Z"}]}
                   for row, state in zip(rows[:4], ("on_track", "at_risk", "met_late", "breached"), strict=True)]
    with store.transaction() as c:
        store.save_records(c, [{k: v for k, v in row.items() if k != "object_type"} for row in open_clocks])
    report = build_report(store, DEFS, NOW - timedelta(days=90), NOW)
    assert report["sla_trend"] == [{"week": "2026-09-21", "sla": "accept", "met": 8, "closed": 12,
                                    "compliance": round(8 / 12, 4)}]
    assert report["contract"]["sla_compliance"] == {"accept": round(8 / 12, 4)}
