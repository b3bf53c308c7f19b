"""Quarantine: records a step refused, with why; released when they go through cleanly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from crmsync.model import ObjectType
from crmsync.redact import scrub_text
from crmsync.store import schema as t
from crmsync.store.base import CONTACT, StoreBase, chunks, of


class Quarantine(StoreBase):
    def quarantine(self, c: Connection, crm: str, record_id: str, step: str, reason: str, *,
                   object_type: ObjectType = CONTACT) -> None:
        now = datetime.now(UTC)
        reason = scrub_text(reason)
        statement = self.insert(t.quarantine).values(
            crm=crm, object_type=object_type, record_id=record_id, step=step, reason=reason[:2000], first_seen=now,
            last_seen=now, count=1, resolved_at=None)
        c.execute(statement.on_conflict_do_update(index_elements=["crm", "object_type", "record_id"], set_={
            "step": step, "reason": reason[:2000], "last_seen": now, "count": t.quarantine.c.count + 1,
            "resolved_at": None}))

    def release(self, c: Connection, crm: str, ids: list[str], *, object_type: ObjectType = CONTACT) -> None:
        """Records that went through cleanly leave quarantine (kept, marked resolved)."""
        for chunk in chunks(ids, 500):
            c.execute(update(t.quarantine).where(
                of(t.quarantine, crm, object_type), t.quarantine.c.record_id.in_(chunk),
                t.quarantine.c.resolved_at.is_(None),
            ).values(resolved_at=datetime.now(UTC)))

    def quarantine_count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(t.quarantine)
                                 .where(t.quarantine.c.resolved_at.is_(None))).scalar() or 0)

    def quarantined(self, crm: str | None = None) -> list[dict[str, Any]]:
        query = select(t.quarantine).where(t.quarantine.c.resolved_at.is_(None)).order_by(t.quarantine.c.last_seen)
        if crm:
            query = query.where(t.quarantine.c.crm == crm)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings().all()]
