"""The store: cursors, runs, record snapshots, decisions (the audit trail), the outbox, quarantine, leases,
webhook event ids.

SQLite by default (a file, WAL), PostgreSQL in production. The schema is brought to the latest
Alembic revision when the store is opened. All state the sync keeps lives here, so a restart
after a crash carries on from what was committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError as AlembicError
from sqlalchemy import Connection, Engine, and_, case, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from crmsync.errors import ConfigError
from crmsync.model import Activity
from crmsync.redact import safe_url, scrub_text
from crmsync.store import schema as t
from crmsync.store.kinds import OutboxKind, OutboxStatus, RunKind, RunOutcome

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PERSONAL = (t.records, t.inputs, t.activities, t.decisions, t.outbox, t.quarantine)
"""Every table keyed by (crm, record_id): what erasure deletes (docs/privacy.md)."""


def fingerprint(value: Any) -> str:
    """A stable hash of JSON-able data (sorted keys), used for inputs, snapshots and idempotency keys."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; everything stored is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Store:
    def __init__(self, url: str) -> None:
        self.url = _driver_url(url)
        try:
            self.engine: Engine = create_engine(self.url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(safe_url(f"CRMSYNC_DATABASE_URL is not usable ({exc.__class__.__name__}: {exc})")
                              .splitlines()[0]) from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema to the latest revision."""
        store = cls(url)
        store.migrate()
        return store

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (SQLAlchemyError, AlembicError) as exc:
            # An unreachable or unusable database at start-up is configuration: one line, exit 2.
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise ConfigError(safe_url(f"cannot open the store at {self.url}: {reason}")[:500]) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def insert(self, table: Any) -> Any:
        """INSERT that understands ON CONFLICT on both SQLite and PostgreSQL."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # --- cursors --------------------------------------------------------------------------------

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

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, crm: str, kind: RunKind, mode: str, window: tuple[datetime, datetime] | None) -> int:
        with self.transaction() as c:
            result = c.execute(t.runs.insert().values(
                crm=crm, kind=kind, mode=mode, started_at=datetime.now(UTC), outcome=RunOutcome.RUNNING, counts={},
                window_start=window[0] if window else None, window_end=window[1] if window else None))
            return _new_id(result)

    def finish_run(self, run_id: int, outcome: RunOutcome, counts: dict[str, int], error: str | None = None) -> None:
        with self.transaction() as c:
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(
                ended_at=datetime.now(UTC), outcome=outcome, counts=counts,
                error=None if error is None else scrub_text(error)))

    def close_stale_runs(self, crm: str, kinds: list[RunKind], unless_leased: str | None = None) -> int:
        """Close as interrupted the runs of a CRM (of these kinds) still marked running: their process was
        killed. Called at the start of a pass that holds the CRM's lease (nobody else can be running one); a
        pass without a lease passes `unless_leased` and closes nothing while that lease is held."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            if unless_leased is not None and c.execute(select(t.leases.c.name).where(
                    t.leases.c.name == unless_leased, t.leases.c.expires_at >= now)).first() is not None:
                return 0
            closed = c.execute(update(t.runs).where(
                t.runs.c.crm == crm, t.runs.c.kind.in_(kinds), t.runs.c.outcome == RunOutcome.RUNNING,
            ).values(outcome=RunOutcome.INTERRUPTED, ended_at=now,
                     error="its process stopped; closed at the next start"))
            return int(closed.rowcount)

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)).mappings().all()
        return [dict(row) for row in rows]

    def last_success(self, crm: str | None = None) -> datetime | None:
        query = select(func.max(t.runs.c.ended_at)).where(t.runs.c.outcome == RunOutcome.OK)
        if crm:
            query = query.where(t.runs.c.crm == crm)
        with self.engine.connect() as c:
            return aware(c.execute(query).scalar())

    # --- records, inputs, decisions -------------------------------------------------------------

    def records(self, crm: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as c:
            for chunk in _chunks(ids, 500):
                rows = c.execute(select(t.records).where(t.records.c.crm == crm, t.records.c.record_id.in_(chunk)))
                found.update({row.record_id: dict(row._mapping) for row in rows})
        return found

    def save_records(self, c: Connection, rows: list[dict[str, Any]]) -> None:
        """Upsert record snapshots (one statement for the lot)."""
        if not rows:
            return
        statement = self.insert(t.records)
        keys = {k: statement.excluded[k] for k in rows[0] if k not in ("crm", "record_id")}
        c.execute(statement.on_conflict_do_update(index_elements=["crm", "record_id"], set_=keys), rows)

    def records_due(self, crm: str, now: datetime, limit: int = 5000) -> list[dict[str, Any]]:
        """Records whose SLA clocks change state by now (the sweep's work list)."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.records).where(t.records.c.crm == crm, t.records.c.sla_next_at <= now)
                             .order_by(t.records.c.sla_next_at).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def latest_decisions(self, since: datetime, until: datetime | None = None,
                         chunk: int = 1000) -> Iterator[dict[str, Any]]:
        """The latest decision of every record decided in [since, until], with its stored inputs,
        streamed in chunks (memory stays flat over 100,000 decisions)."""
        latest = select(func.max(t.decisions.c.id).label("id")).where(t.decisions.c.decided_at >= since)
        if until is not None:
            latest = latest.where(t.decisions.c.decided_at <= until)
        ids_query = latest.group_by(t.decisions.c.crm, t.decisions.c.record_id).order_by("id")
        with self.engine.connect() as c:
            ids = [int(row[0]) for row in c.execute(ids_query)]
        for part in _chunks(ids, chunk):
            query = (select(t.decisions, t.inputs.c.data.label("inputs"))
                     .join(t.inputs, t.inputs.c.hash == t.decisions.c.inputs_hash)
                     .where(t.decisions.c.id.in_(part)).order_by(t.decisions.c.id))
            with self.engine.connect() as c:
                rows = [dict(r) for r in c.execute(query).mappings()]
            yield from rows

    def outcomes(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """What records did later: their current stage and SQL time, by (crm, record id)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        by_crm: dict[str, list[str]] = {}
        for crm, rid in pairs:
            by_crm.setdefault(crm, []).append(rid)
        with self.engine.connect() as c:
            for crm, ids in by_crm.items():
                for part in _chunks(ids, 500):
                    query = select(t.records.c.record_id, t.records.c.stage, t.records.c.sql_at).where(
                        t.records.c.crm == crm, t.records.c.record_id.in_(part))
                    found.update({(crm, r.record_id): {"stage": r.stage, "sql_at": r.sql_at} for r in c.execute(query)})
        return found

    def record_backtest(self, **values: Any) -> None:
        with self.transaction() as c:
            c.execute(t.backtests.insert().values(**values))

    def backtested(self, candidate_hash: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(t.backtests).where(
                t.backtests.c.candidate_hash == candidate_hash)).scalar() != 0

    def definitions_version(self, version: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.definitions_versions).where(t.definitions_versions.c.version == version)).first()
        return dict(row._mapping) if row else None

    def activate_definitions(self, version: str, digest: str, path: str, next_review: datetime,
                             changelog: str) -> None:
        """Record a version as the active one; activating a version again (a rollback) makes it the
        latest again (the caller refuses a version number reused with other content)."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            c.execute(self.insert(t.definitions_versions).values(
                version=version, hash=digest, path=path, activated_at=now, next_review_date=next_review,
                changelog=changelog).on_conflict_do_update(index_elements=["version"],
                                                           set_={"activated_at": now, "path": path}))

    def active_definitions(self) -> dict[str, Any] | None:
        """The latest activated version (the daemon follows it at pass boundaries)."""
        with self.engine.connect() as c:
            row = c.execute(select(t.definitions_versions).order_by(t.definitions_versions.c.activated_at.desc())
                            .limit(1)).first()
        return dict(row._mapping) if row else None

    def contract(self, now: datetime, window_days: int = 90) -> dict[str, Any]:
        """The handoff contract's figures over MQLs of the last `window_days`: MQL -> SQL within 30
        days (among MQLs at least 30 days old), SAL acceptance, SLA compliance per clock, breaches,
        invalid reason codes; and, over all records, those in pipeline without documented qualification."""
        since = now - timedelta(days=window_days)
        with self.engine.connect() as c:
            rows = c.execute(select(t.records.c.mql_at, t.records.c.sal_at, t.records.c.sql_at, t.records.c.slas,
                                    t.records.c.sla_state, t.records.c.dq_invalid)
                             .where(t.records.c.mql_at >= since)).all()
            skipped = c.execute(select(func.count()).select_from(t.records).where(
                t.records.c.target_stage.in_(("opportunity", "customer")), t.records.c.skipped_gate != "")).scalar()
        matured = [r for r in rows if aware(r.mql_at) <= now - timedelta(days=30)]  # type: ignore[operator]
        converted = [r for r in matured if r.sql_at is not None
                     and aware(r.sql_at) <= aware(r.mql_at) + timedelta(days=30)]  # type: ignore[operator]
        accepted_pool = [r for r in rows if aware(r.mql_at) <= now - timedelta(days=1)]  # type: ignore[operator]
        compliance: dict[str, dict[str, int]] = {}
        for r in rows:
            for clock in r.slas or []:
                if clock["state"] in ("met", "met_late", "breached"):
                    tally = compliance.setdefault(clock["name"], {"met": 0, "closed": 0})
                    tally["closed"] += 1
                    tally["met"] += clock["state"] == "met"
        return {
            "mqls": len(rows),
            "mql_to_sql_30d": _rate(len(converted), len(matured)), "mql_to_sql_base": len(matured),
            "sal_acceptance": _rate(sum(r.sal_at is not None for r in accepted_pool), len(accepted_pool)),
            "sal_base": len(accepted_pool),
            "sla_compliance": {name: _rate(v["met"], v["closed"]) for name, v in sorted(compliance.items())},
            "sla_breached": sum(1 for r in rows if (r.sla_state or "").startswith("breached")),
            "sla_at_risk": sum(1 for r in rows if (r.sla_state or "").startswith("at_risk")),
            "invalid_reasons": sum(1 for r in rows if r.dq_invalid),
            "skipped_gates": int(skipped or 0),
        }

    def save_inputs(self, c: Connection, rows: list[dict[str, Any]]) -> None:
        """Inputs by hash ({hash, crm, record_id, data}); one already stored is kept."""
        if rows:
            c.execute(self.insert(t.inputs).on_conflict_do_nothing(index_elements=["hash"]), rows)

    def add_decisions(self, c: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert decisions; their ids, in the rows' order."""
        if not rows:
            return []
        result = c.execute(t.decisions.insert().returning(t.decisions.c.id, sort_by_parameter_order=True), rows)
        return [int(row[0]) for row in result]

    def decisions_for(self, crm: str, record_id: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.decisions).where(t.decisions.c.crm == crm, t.decisions.c.record_id == record_id)
                             .order_by(t.decisions.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def decision_basis(self, decision_ids: list[int]) -> dict[int, dict[str, Any]]:
        """What each decision was made on and decided: {id: {inputs (the contact's fields), target_stage,
        writes}}, in one query per 500 ids."""
        found: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as c:
            for part in _chunks(sorted(set(decision_ids)), 500):
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

    # --- personal data: retention and erasure (docs/privacy.md) ---------------------------------

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

    def forget(self, crm: str, record_id: str) -> dict[str, int]:
        """Erase everything kept about one record, in one transaction; rows deleted per table."""
        with self.transaction() as c:
            return {table.name: int(c.execute(table.delete().where(
                table.c.crm == crm, table.c.record_id == record_id)).rowcount or 0) for table in PERSONAL}

    def held(self, crm: str, ids: list[str]) -> list[str]:
        """Which of these records the store still keeps anything about (in any table `forget` erases)."""
        found: set[str] = set()
        with self.engine.connect() as c:
            for chunk in _chunks(list(dict.fromkeys(ids)), 500):
                for table in PERSONAL:
                    found.update(c.execute(select(table.c.record_id).distinct().where(
                        table.c.crm == crm, table.c.record_id.in_(chunk))).scalars())
        return sorted(found)

    # --- activities kept locally (streams that cannot be read per record) -----------------------

    def add_activities(self, crm: str, items: Iterable[tuple[str, Activity]]) -> int:
        """Store streamed activities in chunks as they come (memory stays flat on big backfills)."""
        count = 0
        buffer: list[dict[str, Any]] = []
        for rid, a in items:
            if not isinstance(a.occurred_at, datetime):
                continue
            buffer.append({"crm": crm, "record_id": rid, "activity_id": str(a.id)[:128], "kind": str(a.kind),
                           "occurred_at": a.occurred_at, "detail": str(a.detail or ""), "by_owner": bool(a.by_owner)})
            if len(buffer) >= 1000:
                count += self._insert_activities(buffer)
                buffer = []
        return count + self._insert_activities(buffer)

    def _insert_activities(self, rows: list[dict[str, Any]]) -> int:
        if rows:
            with self.transaction() as c:
                c.execute(self.insert(t.activities).values(rows).on_conflict_do_nothing(
                    index_elements=["crm", "record_id", "activity_id"]))
        return len(rows)

    def activities_for(self, crm: str, ids: list[str]) -> dict[str, list[Activity]]:
        found: dict[str, list[Activity]] = {}
        with self.engine.connect() as c:
            for chunk in _chunks(ids, 500):
                rows = c.execute(select(t.activities).where(t.activities.c.crm == crm,
                                                            t.activities.c.record_id.in_(chunk)))
                for row in rows:
                    found.setdefault(row.record_id, []).append(
                        Activity(row.activity_id, row.kind, aware(row.occurred_at), row.detail, row.by_owner))
        return found

    # --- outbox ---------------------------------------------------------------------------------

    def enqueue(self, c: Connection, crm: str, record_id: str, kind: OutboxKind, key: str, payload: dict[str, Any],
                status: OutboxStatus, decision_id: int | None) -> None:
        self.enqueue_many(c, crm, [{"record_id": record_id, "kind": kind, "key": key, "payload": payload,
                                    "status": status, "decision_id": decision_id}])

    def enqueue_many(self, c: Connection, crm: str, items: list[dict[str, Any]]) -> None:
        """Add pending writes and tasks ({record_id, kind, key, payload, status, decision_id}); the same
        key twice is one row (a row found stale is pending again when decided again the same). A newer
        write for a record supersedes its older pending ones (only the latest decision is written)."""
        if not items:
            return
        now = datetime.now(UTC)
        writes = [i for i in items if i["kind"] == OutboxKind.WRITE]
        for chunk in _chunks(writes, 500):
            c.execute(update(t.outbox).where(
                t.outbox.c.crm == crm, t.outbox.c.kind == OutboxKind.WRITE, t.outbox.c.status == OutboxStatus.PENDING,
                t.outbox.c.record_id.in_([i["record_id"] for i in chunk]),
                t.outbox.c.key.not_in([i["key"] for i in chunk]),
            ).values(status=OutboxStatus.SUPERSEDED, updated_at=now))
        rows = [{**i, "crm": crm, "attempts": 0, "created_at": now, "updated_at": now} for i in items]
        statement = self.insert(t.outbox)
        c.execute(statement.on_conflict_do_update(  # a write found stale, decided again as it was, is sent
            index_elements=["key"], set_={"status": statement.excluded.status, "created_at": now, "updated_at": now},
            where=t.outbox.c.status == OutboxStatus.STALE), rows)

    def pending(self, crm: str, kind: OutboxKind, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.outbox).where(t.outbox.c.crm == crm, t.outbox.c.kind == kind,
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

    def outbox_depth(self, crm: str | None = None, kind: OutboxKind | None = None) -> int:
        query = select(func.count()).select_from(t.outbox).where(t.outbox.c.status == OutboxStatus.PENDING)
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

    # --- quarantine -----------------------------------------------------------------------------

    def quarantine(self, c: Connection, crm: str, record_id: str, step: str, reason: str) -> None:
        now = datetime.now(UTC)
        reason = scrub_text(reason)
        statement = self.insert(t.quarantine).values(crm=crm, record_id=record_id, step=step, reason=reason[:2000],
                                                     first_seen=now, last_seen=now, count=1, resolved_at=None)
        c.execute(statement.on_conflict_do_update(index_elements=["crm", "record_id"], set_={
            "step": step, "reason": reason[:2000], "last_seen": now, "count": t.quarantine.c.count + 1,
            "resolved_at": None}))

    def release(self, c: Connection, crm: str, ids: list[str]) -> None:
        """Records that went through cleanly leave quarantine (kept, marked resolved)."""
        for chunk in _chunks(ids, 500):
            c.execute(update(t.quarantine).where(and_(
                t.quarantine.c.crm == crm, t.quarantine.c.record_id.in_(chunk), t.quarantine.c.resolved_at.is_(None),
            )).values(resolved_at=datetime.now(UTC)))

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

    # --- webhook events: ids remembered for a window of days, so a replay is refused after a restart too ---

    def remember_webhook_events(self, keys: list[str], now: datetime) -> list[str]:
        """Remember these event keys; return those not seen before (in order). Concurrent callers with the
        same key: exactly one gets it back (the insert decides, not a read before it)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        with self.transaction() as c:
            inserted = set(c.execute(
                self.insert(t.webhook_events).values([{"key": key, "received_at": now} for key in unique])
                .on_conflict_do_nothing(index_elements=["key"]).returning(t.webhook_events.c.key)).scalars())
        return [key for key in unique if key in inserted]

    def forget_webhook_events(self, before: datetime, keep_at_most: int) -> int:
        """Drop keys received before `before`, then the oldest beyond `keep_at_most`; the number dropped."""
        with self.transaction() as c:
            dropped = c.execute(t.webhook_events.delete().where(t.webhook_events.c.received_at < before)).rowcount
            newest = select(t.webhook_events.c.key).order_by(t.webhook_events.c.received_at.desc(),
                                                             t.webhook_events.c.key).offset(keep_at_most)
            dropped += c.execute(t.webhook_events.delete().where(t.webhook_events.c.key.in_(newest))).rowcount
        return int(dropped)

    # --- leases: one syncer per stream across replicas -------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> int | None:
        """Take or renew the lease until now + ttl. The fencing token when `holder` has it (it goes up
        each time the lease changes hands or is taken again after expiring), None when another has it."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            c.execute(self.insert(t.leases).values(name=name, holder=holder, expires_at=now - timedelta(seconds=1),
                                                   token=0).on_conflict_do_nothing(index_elements=["name"]))
            kept = (t.leases.c.holder == holder) & (t.leases.c.expires_at >= now)
            taken = c.execute(update(t.leases).where(
                t.leases.c.name == name, (t.leases.c.holder == holder) | (t.leases.c.expires_at < now),
            ).values(holder=holder, expires_at=now + ttl,
                     token=case((kept, t.leases.c.token), else_=t.leases.c.token + 1)).returning(t.leases.c.token))
            token = taken.scalar()
            return int(token) if token is not None else None

    def renew_lease(self, name: str, holder: str, token: int, ttl: timedelta) -> bool:
        """Extend a lease still held under this token (not expired, not taken since); False when lost."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            renewed = c.execute(update(t.leases).where(
                t.leases.c.name == name, t.leases.c.holder == holder, t.leases.c.token == token,
                t.leases.c.expires_at >= now).values(expires_at=now + ttl))
            return bool(renewed.rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as c:
            c.execute(t.leases.delete().where(t.leases.c.name == name, t.leases.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.leases).where(t.leases.c.name == name)).first()
        return (row.holder, aware(row.expires_at)) if row else None  # type: ignore[return-value]

    # --- pauses: a CRM that refused with its daily quota is left alone until the quota resets -----
    # Kept in the leases table (a named row that holds until a time): the lease `pause:<crm>`, whose
    # holder is why it is paused, until `expires_at`. No replica takes it; every replica reads it.

    def pause(self, crm: str, until: datetime, why: str, now: datetime) -> bool:
        """Pause a CRM until `until` (a later time extends a pause, an earlier one changes nothing). True
        when it was not paused at `now`: a new pause, which the caller reports once."""
        name = f"pause:{crm}"
        with self.transaction() as c:
            row = c.execute(select(t.leases.c.expires_at).where(t.leases.c.name == name)).first()
            before = aware(row.expires_at) if row else None
            active = before is not None and before > now
            if before is None or not active or until > before:
                why = scrub_text(why)[:128]
                statement = self.insert(t.leases).values(name=name, holder=why, expires_at=until, token=0)
                c.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                          set_={"holder": why, "expires_at": until}))
        return not active

    def paused(self, crm: str, now: datetime) -> tuple[datetime, str] | None:
        """(until, why) while the CRM is paused at `now`, else None."""
        found = self.lease_holder(f"pause:{crm}")
        return (found[1], found[0]) if found is not None and found[1] > now else None

    def resume(self, crm: str, now: datetime) -> None:
        """Forget a pause that is over (one set since, by another replica, stays)."""
        with self.transaction() as c:
            c.execute(t.leases.delete().where(t.leases.c.name == f"pause:{crm}", t.leases.c.expires_at <= now))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _driver_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
