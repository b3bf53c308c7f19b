"""Personal data: retention of inputs and erasure of one record (docs/privacy.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, union

from crmsync.model import ObjectType
from crmsync.store import schema as t
from crmsync.store.base import CONTACT, StoreBase, chunks, of
from crmsync.store.objects import unlink_contact

PERSONAL = (t.records, t.inputs, t.activities, t.decisions, t.outbox, t.quarantine)
"""Every table keyed by (crm, object_type, record_id): what erasure deletes (docs/privacy.md)."""


class Privacy(StoreBase):
    def drop_inputs_before(self, cutoff: datetime) -> int:
        """Drop the inputs (contact fields, activities) behind decisions older than `cutoff`; the
        decisions stay. Inputs a record currently uses (the SLA sweep re-decides from them) or a
        decision since `cutoff` used are kept. Returns how many were dropped."""
        recent = select(t.decisions.c.inputs_hash).where(t.decisions.c.decided_at >= cutoff)
        current = select(t.records.c.inputs_hash)
        with self.transaction() as c:
            result = c.execute(t.inputs.delete().where(t.inputs.c.hash.not_in(recent),
                                                       t.inputs.c.hash.not_in(current)))
        return int(result.rowcount or 0)

    def forget(self, crm: str, record_id: str, *, object_type: ObjectType = CONTACT) -> dict[str, int]:
        """Erase everything kept about one record, in one transaction; rows deleted per table. A contact
        also leaves the objects of every type it belonged to (`object_links`, `objects.contact_ids`; the
        objects stay)."""
        with self.transaction() as c:
            erased = {table.name: int(c.execute(table.delete().where(
                of(table, crm, object_type), table.c.record_id == record_id)).rowcount or 0) for table in PERSONAL}
            if object_type is ObjectType.CONTACT:
                erased[t.object_links.name] = unlink_contact(c, crm, record_id)
            return erased

    def held(self, crm: str, ids: list[str], *, object_type: ObjectType = CONTACT) -> list[str]:
        """Which of these records the store still keeps anything about (in any table `forget` erases)."""
        found: set[str] = set()
        with self.engine.connect() as c:
            for chunk in chunks(list(dict.fromkeys(ids)), 500):  # one query a chunk: a UNION over the tables
                kept = [select(table.c.record_id).where(of(table, crm, object_type), table.c.record_id.in_(chunk))
                        for table in PERSONAL]
                if object_type is ObjectType.CONTACT:
                    link = t.object_links.c
                    kept.append(select(link.contact_id).where(link.crm == crm, link.contact_id.in_(chunk)))
                found.update(c.execute(union(*kept)).scalars())
        return sorted(found)
