"""Governance: definitions versions, backtests of candidates, and the handoff contract's figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from crmsync.model import BACKLOG, ObjectType, SlaState, Stage
from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware
from crmsync.store.objects import skipped_gate_deals

CLOSED_SLA = frozenset({SlaState.MET, SlaState.MET_LATE, SlaState.BREACHED})
"""The states of a clock that compliance counts: met in time, met late, breached."""
IN_PIPELINE = (Stage.OPPORTUNITY, Stage.CUSTOMER)


def closed_clocks(slas: list[dict[str, Any]] | None) -> Iterator[tuple[dict[str, Any], bool]]:
    """A record's stored SLA clocks (`records.slas`) that compliance counts, each with whether it was
    met in time."""
    for clock in slas or []:
        if clock["state"] in CLOSED_SLA:
            yield clock, clock["state"] == SlaState.MET


class Governance(StoreBase):
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
        invalid reason codes; and, over all contact records, those in pipeline without documented
        qualification (`skipped_gates`; `skipped_gates_backlog` of them were there before crmsync's
        rollout: flagged, no owner task), and the open or won deals of such records: how many, their
        amounts per currency (`skipped_gate_amounts`, see `skipped_gate_deals`) and those added up
        (`skipped_gate_amount`, a plain total only when there is one currency)."""
        since = now - timedelta(days=window_days)
        with self.engine.connect() as c:
            rows = c.execute(select(t.records.c.mql_at, t.records.c.sal_at, t.records.c.sql_at, t.records.c.slas,
                                    t.records.c.sla_state, t.records.c.dq_invalid)
                             .where(t.records.c.object_type == ObjectType.CONTACT, t.records.c.mql_at >= since)).all()
            skipped, backlog = c.execute(select(
                func.count(), func.count().filter(t.records.c.skipped_gate.contains(f"{BACKLOG}:"))).where(
                t.records.c.object_type == ObjectType.CONTACT,
                t.records.c.target_stage.in_(IN_PIPELINE), t.records.c.skipped_gate != "")).one()
            deals, amounts = skipped_gate_deals(c)
        matured = [r for r in rows if aware(r.mql_at) <= now - timedelta(days=30)]  # type: ignore[operator]
        converted = [r for r in matured if r.sql_at is not None
                     and aware(r.sql_at) <= aware(r.mql_at) + timedelta(days=30)]  # type: ignore[operator]
        accepted_pool = [r for r in rows if aware(r.mql_at) <= now - timedelta(days=1)]  # type: ignore[operator]
        compliance: dict[str, dict[str, int]] = {}
        for r in rows:
            for clock, met in closed_clocks(r.slas):
                tally = compliance.setdefault(clock["name"], {"met": 0, "closed": 0})
                tally["closed"] += 1
                tally["met"] += met
        return {
            "mqls": len(rows),
            "mql_to_sql_30d": _rate(len(converted), len(matured)), "mql_to_sql_base": len(matured),
            "sal_acceptance": _rate(sum(r.sal_at is not None for r in accepted_pool), len(accepted_pool)),
            "sal_base": len(accepted_pool),
            "sla_compliance": {name: _rate(v["met"], v["closed"]) for name, v in sorted(compliance.items())},
            "sla_breached": sum(1 for r in rows if (r.sla_state or "").startswith(SlaState.BREACHED)),
            "sla_at_risk": sum(1 for r in rows if (r.sla_state or "").startswith(SlaState.AT_RISK)),
            "invalid_reasons": sum(1 for r in rows if r.dq_invalid),
            "skipped_gates": int(skipped or 0), "skipped_gates_backlog": int(backlog or 0),
            "skipped_gate_deals": deals, "skipped_gate_amount": round(sum(amounts.values()), 2),
            "skipped_gate_amounts": amounts,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
