"""Cursors: how far each stream of each CRM was read, and the frozen window of an unfinished one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware


class Cursors(StoreBase):
    def cursor(self, crm: str, stream: str) -> datetime | None:
        with self.engine.connect() as c:
            value = c.execute(select(t.cursors.c.position).where(
                t.cursors.c.crm == crm, t.cursors.c.stream == stream)).scalar()
        return aware(value)

    def set_cursor(self, c: Connection, crm: str, stream: str, position: datetime,
                   upper_bound: datetime | None = None) -> None:
        """Move a stream's cursor. With `upper_bound`, a window [position, upper_bound) starts and is
        frozen until it completes (a re-run resumes it); without, the stream is complete up to `position`."""
        now = datetime.now(UTC)
        values = {"position": position, "checkpoint": None, "upper_bound": upper_bound, "updated_at": now}
        statement = self.insert(t.cursors).values(crm=crm, stream=stream, **values)
        c.execute(statement.on_conflict_do_update(index_elements=["crm", "stream"], set_=values))

    def set_checkpoint(self, c: Connection, crm: str, stream: str, checkpoint: str) -> None:
        """How far an unfinished window got (an opaque connector key), in the transaction of the page
        it belongs to."""
        c.execute(t.cursors.update().where(t.cursors.c.crm == crm, t.cursors.c.stream == stream)
                  .values(checkpoint=checkpoint, updated_at=datetime.now(UTC)))

    def unfinished(self, crm: str, stream: str) -> tuple[datetime | None, str | None]:
        """The frozen upper bound and the checkpoint of a stream's unfinished window; (None, None) when
        there is none."""
        with self.engine.connect() as c:
            row = c.execute(select(t.cursors.c.upper_bound, t.cursors.c.checkpoint).where(
                t.cursors.c.crm == crm, t.cursors.c.stream == stream)).first()
        if row is None or row.upper_bound is None:
            return None, None
        return aware(row.upper_bound), str(row.checkpoint) if row.checkpoint else None

    def cursors(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.cursors).order_by(t.cursors.c.crm, t.cursors.c.stream)).mappings().all()
        return [{**row, "position": aware(row["position"]), "updated_at": aware(row["updated_at"])} for row in rows]
