"""Runs: one row per pass (kind, window, outcome, counts), closed whatever happens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from crmsync.redact import scrub_text
from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware, new_id
from crmsync.store.kinds import RunKind, RunOutcome


class Runs(StoreBase):
    def start_run(self, crm: str, kind: RunKind, mode: str, window: tuple[datetime, datetime] | None) -> int:
        with self.transaction() as c:
            result = c.execute(t.runs.insert().values(
                crm=crm, kind=kind, mode=mode, started_at=datetime.now(UTC), outcome=RunOutcome.RUNNING, counts={},
                window_start=window[0] if window else None, window_end=window[1] if window else None))
            return new_id(result)

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

    def runs(self, limit: int = 10, *, kinds: list[RunKind] | None = None) -> list[dict[str, Any]]:
        """The latest runs, newest first; only those of `kinds` when given."""
        query = select(t.runs)
        if kinds is not None:
            query = query.where(t.runs.c.kind.in_(kinds))
        with self.engine.connect() as c:
            rows = c.execute(query.order_by(t.runs.c.id.desc()).limit(limit)).mappings().all()
        return [dict(row) for row in rows]

    def drop_runs_before(self, cutoff: datetime, *, sweeps_before: datetime) -> int:
        """Retention of the run log: closed runs that started before `cutoff`, and closed SLA sweeps (one
        a minute per CRM) that started before `sweeps_before`. Running rows stay. How many were dropped."""
        closed = t.runs.c.outcome != RunOutcome.RUNNING
        with self.transaction() as c:
            result = c.execute(t.runs.delete().where(closed, or_(
                t.runs.c.started_at < cutoff,
                and_(t.runs.c.kind == RunKind.SLA_SWEEP, t.runs.c.started_at < sweeps_before))))
        return int(result.rowcount or 0)

    def last_success(self, crm: str | None = None) -> datetime | None:
        query = select(func.max(t.runs.c.ended_at)).where(t.runs.c.outcome == RunOutcome.OK)
        if crm:
            query = query.where(t.runs.c.crm == crm)
        with self.engine.connect() as c:
            return aware(c.execute(query).scalar())
