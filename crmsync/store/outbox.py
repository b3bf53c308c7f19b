"""The outbox: writes and owner tasks decided and not yet answered for by the CRM."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from crmsync.model import ObjectType
from crmsync.redact import scrub_text
from crmsync.store import schema as t
from crmsync.store.base import CONTACT, StoreBase, chunks, of
from crmsync.store.kinds import OutboxKind, OutboxStatus


class Outbox(StoreBase):
    def enqueue(self, c: Connection, crm: str, record_id: str, kind: OutboxKind, key: str, payload: dict[str, Any],
                status: OutboxStatus, decision_id: int | None, *, object_type: ObjectType = CONTACT) -> None:
        self.enqueue_many(c, crm, [{"record_id": record_id, "kind": kind, "key": key, "payload": payload,
                                    "status": status, "decision_id": decision_id}], object_type=object_type)

    def enqueue_many(self, c: Connection, crm: str, items: list[dict[str, Any]], *,
                     object_type: ObjectType = CONTACT) -> None:
        """Add pending writes and tasks ({record_id, kind, key, payload, status, decision_id}) for records
        of `object_type`; the same
        key twice is one row (a row found stale is pending again when decided again the same). A newer
        write for a record supersedes its older pending ones (only the latest decision is written)."""
        if not items:
            return
        now = datetime.now(UTC)
        writes = [i for i in items if i["kind"] == OutboxKind.WRITE]
        for chunk in chunks(writes, 500):
            c.execute(update(t.outbox).where(
                of(t.outbox, crm, object_type), t.outbox.c.kind == OutboxKind.WRITE,
                t.outbox.c.status == OutboxStatus.PENDING,
                t.outbox.c.record_id.in_([i["record_id"] for i in chunk]),
                t.outbox.c.key.not_in([i["key"] for i in chunk]),
            ).values(status=OutboxStatus.SUPERSEDED, updated_at=now))
        rows = [{**i, "crm": crm, "object_type": object_type, "attempts": 0, "created_at": now, "updated_at": now}
                for i in items]
        statement = self.insert(t.outbox)
        c.execute(statement.on_conflict_do_update(  # a write found stale, decided again as it was, is sent
            index_elements=["key"], set_={"status": statement.excluded.status, "created_at": now, "updated_at": now},
            where=t.outbox.c.status == OutboxStatus.STALE), rows)

    def pending(self, crm: str, kind: OutboxKind, limit: int, *,
                object_type: ObjectType = CONTACT) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.outbox).where(of(t.outbox, crm, object_type), t.outbox.c.kind == kind,
                                                    t.outbox.c.status == OutboxStatus.PENDING)
                             .order_by(t.outbox.c.id).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def acknowledge(self, outcomes: list[tuple[int, OutboxStatus, str | None]]) -> None:
        """(outbox id, new status, error) for each row the CRM answered for."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            for row_id, status, error in outcomes:
                c.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(
                    status=status, last_error=None if error is None else scrub_text(error),
                    attempts=t.outbox.c.attempts + 1, updated_at=now))

    def outbox_depth(self, crm: str | None = None, kind: OutboxKind | None = None, *,
                     object_type: ObjectType | None = None) -> int:
        """Pending rows (of a CRM, a kind, an object type; all when not given)."""
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.status == OutboxStatus.PENDING)
        if object_type:
            query = query.where(t.outbox.c.object_type == object_type)
        if crm:
            query = query.where(t.outbox.c.crm == crm)
        if kind:
            query = query.where(t.outbox.c.kind == kind)
        with self.engine.connect() as c:
            return int(c.execute(query).scalar() or 0)

    def outbox_rows(self, crm: str, status: OutboxStatus | None = None) -> list[dict[str, Any]]:
        query = select(t.outbox).where(t.outbox.c.crm == crm).order_by(t.outbox.c.id)
        if status:
            query = query.where(t.outbox.c.status == status)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings().all()]
