"""Activities kept locally: streams that cannot be read per record (HubSpot page views, forms)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from crmsync.model import Activity, ObjectType
from crmsync.store import schema as t
from crmsync.store.base import CONTACT, StoreBase, aware, chunks, of


class Activities(StoreBase):
    def add_activities(self, crm: str, items: Iterable[tuple[str, Activity]], *,
                       object_type: ObjectType = CONTACT) -> int:
        """Store streamed activities in chunks as they come (memory stays flat on big backfills)."""
        count = 0
        buffer: list[dict[str, Any]] = []
        for rid, a in items:
            if not isinstance(a.occurred_at, datetime):
                continue
            buffer.append({"crm": crm, "object_type": object_type, "record_id": rid, "activity_id": str(a.id)[:128],
                           "kind": str(a.kind), "occurred_at": a.occurred_at, "detail": str(a.detail or ""),
                           "by_owner": bool(a.by_owner)})
            if len(buffer) >= 1000:
                count += self._insert_activities(buffer)
                buffer = []
        return count + self._insert_activities(buffer)

    def _insert_activities(self, rows: list[dict[str, Any]]) -> int:
        if rows:
            with self.transaction() as c:
                c.execute(self.insert(t.activities).values(rows).on_conflict_do_nothing(
                    index_elements=["crm", "object_type", "record_id", "activity_id"]))
        return len(rows)

    def activities_for(self, crm: str, ids: list[str], *,
                       object_type: ObjectType = CONTACT) -> dict[str, list[Activity]]:
        found: dict[str, list[Activity]] = {}
        with self.engine.connect() as c:
            for chunk in chunks(ids, 500):
                rows = c.execute(select(t.activities).where(of(t.activities, crm, object_type),
                                                            t.activities.c.record_id.in_(chunk)))
                for row in rows:
                    found.setdefault(row.record_id, []).append(
                        Activity(row.activity_id, row.kind, aware(row.occurred_at), row.detail, row.by_owner))
        return found
