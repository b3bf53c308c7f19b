"""Record snapshots, the inputs they were decided on, and the decisions (the audit trail)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from crmsync.model import ObjectType
from crmsync.store import schema as t
from crmsync.store.base import CONTACT, StoreBase, aware, chunks, of, typed

KEY = ["crm", "object_type", "record_id"]
REPORTED = ("record_id", "crm", "stage", "target_stage", "mql_at", "sal_at", "sql_at", "created_at", "updated_at",
            "dq_reason", "dq_invalid", "slas", "source", "segment", "owner_id", "definitions_version", "skipped_gate")
"""The columns `reported` gives `crmsync report`."""
_MOMENTS = ("mql_at", "sal_at", "sql_at", "created_at", "updated_at")


class Records(StoreBase):
    def records(self, crm: str, ids: list[str], *, object_type: ObjectType = CONTACT) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as c:
            for chunk in chunks(ids, 500):
                rows = c.execute(select(t.records).where(of(t.records, crm, object_type),
                                                          t.records.c.record_id.in_(chunk)))
                found.update({row.record_id: dict(row._mapping) for row in rows})
        return found

    def save_records(self, c: Connection, rows: list[dict[str, Any]], *, object_type: ObjectType = CONTACT) -> None:
        """Upsert record snapshots (one statement for the lot), all of `object_type`."""
        if not rows:
            return
        statement = self.insert(t.records)
        keys = {k: statement.excluded[k] for k in rows[0] if k not in KEY}
        c.execute(statement.on_conflict_do_update(index_elements=KEY, set_=keys), typed(rows, object_type))

    def records_due(self, crm: str, now: datetime, limit: int = 5000, *,
                    object_type: ObjectType = CONTACT) -> list[dict[str, Any]]:
        """Records whose SLA clocks change state by now (the sweep's work list)."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.records).where(of(t.records, crm, object_type), t.records.c.sla_next_at <= now)
                             .order_by(t.records.c.sla_next_at).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def reported(self, since: datetime, until: datetime, *,
                 object_type: ObjectType = CONTACT) -> list[dict[str, Any]]:
        """`crmsync report`'s population: the records of `object_type` (of every CRM) first seen (created,
        else first stored) or made MQL in [since, until], with the `REPORTED` columns, times in UTC."""
        r = t.records.c
        first_seen = func.coalesce(r.created_at, r.updated_at)
        query = select(*(r[name] for name in REPORTED)).where(
            r.object_type == object_type, or_(first_seen.between(since, until), r.mql_at.between(since, until)))
        with self.engine.connect() as c:
            rows = [dict(row) for row in c.execute(query).mappings()]
        for row in rows:
            for key in _MOMENTS:
                row[key] = aware(row[key])
        return rows

    def latest_decisions(self, since: datetime, until: datetime | None = None,
                         chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """The latest decision of every record decided in [since, until], with its stored inputs,
        streamed in chunks (memory stays flat over 100,000 decisions)."""
        latest = select(func.max(t.decisions.c.id).label("id")).where(t.decisions.c.decided_at >= since)
        if until is not None:
            latest = latest.where(t.decisions.c.decided_at <= until)
        d = t.decisions.c
        ids_query = latest.group_by(d.crm, d.object_type, d.record_id).order_by("id")
        with self.engine.connect() as c:
            ids = [int(row[0]) for row in c.execute(ids_query)]
        for part in chunks(ids, chunk):
            query = (select(t.decisions, t.inputs.c.data.label("inputs"))
                     .join(t.inputs, t.inputs.c.hash == t.decisions.c.inputs_hash)
                     .where(t.decisions.c.id.in_(part)).order_by(t.decisions.c.id))
            with self.engine.connect() as c:
                rows = [dict(r) for r in c.execute(query).mappings()]
            yield from rows

    def outcomes(self, pairs: list[tuple[str, str]], *,
                 object_type: ObjectType = CONTACT) -> dict[tuple[str, str], dict[str, Any]]:
        """What records did later: their current stage and SQL time, by (crm, record id)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        by_crm: dict[str, list[str]] = {}
        for crm, rid in pairs:
            by_crm.setdefault(crm, []).append(rid)
        with self.engine.connect() as c:
            for crm, ids in by_crm.items():
                for part in chunks(ids, 500):
                    query = select(t.records.c.record_id, t.records.c.stage, t.records.c.sql_at).where(
                        of(t.records, crm, object_type), t.records.c.record_id.in_(part))
                    found.update({(crm, r.record_id): {"stage": r.stage, "sql_at": r.sql_at} for r in c.execute(query)})
        return found

    def save_inputs(self, c: Connection, rows: list[dict[str, Any]], *, object_type: ObjectType = CONTACT) -> None:
        """Inputs by hash ({hash, crm, record_id, data}); one already stored is kept."""
        if rows:
            c.execute(self.insert(t.inputs).on_conflict_do_nothing(index_elements=["hash"]), typed(rows, object_type))

    def add_decisions(self, c: Connection, rows: list[dict[str, Any]], *,
                      object_type: ObjectType = CONTACT) -> list[int]:
        """Insert decisions; their ids, in the rows' order."""
        if not rows:
            return []
        result = c.execute(t.decisions.insert().returning(t.decisions.c.id, sort_by_parameter_order=True),
                           typed(rows, object_type))
        return [int(row[0]) for row in result]

    def decisions_for(self, crm: str, record_id: str, limit: int = 20, *,
                      object_type: ObjectType = CONTACT) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.decisions).where(of(t.decisions, crm, object_type),
                                                       t.decisions.c.record_id == record_id)
                             .order_by(t.decisions.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def decision_basis(self, decision_ids: list[int]) -> dict[int, dict[str, Any]]:
        """What each decision was made on and decided: {id: {inputs (the contact's fields), target_stage,
        writes}}, in one query per 500 ids."""
        found: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as c:
            for part in chunks(sorted(set(decision_ids)), 500):
                query = (select(t.decisions.c.id, t.decisions.c.target_stage, t.decisions.c.decision,
                                t.inputs.c.data).join(t.inputs, t.inputs.c.hash == t.decisions.c.inputs_hash)
                         .where(t.decisions.c.id.in_(part)))
                for row in c.execute(query):
                    found[int(row.id)] = {"inputs": (row.data or {}).get("contact", {}),
                                          "target_stage": row.target_stage,
                                          "writes": (row.decision or {}).get("writes", {})}
        return found

    def inputs_for(self, digest: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            value = c.execute(select(t.inputs.c.data).where(t.inputs.c.hash == digest)).scalar()
        return value if isinstance(value, dict) else None
