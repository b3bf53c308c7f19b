"""One record's decision on its way into the store: the record row (snapshot, stage, SLA clocks,
report dimensions) and the outbox rows (the write-back, the owner tasks) a page commits together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmsync.model import Contact, Decision, OwnerTask, WriteBack
from crmsync.rules.sla import next_change
from crmsync.rules.values import count, moment
from crmsync.store import aware, fingerprint
from crmsync.store.kinds import OutboxKind, OutboxStatus


@dataclass
class Decided:
    """One record's decision on its way into the store (a page is stored in one transaction)."""

    contact: Contact
    decision: Decision
    data: dict[str, Any]
    digest: str
    row: dict[str, Any] | None  # the decision to store; None when inputs and definitions are unchanged
    decision_id: int | None
    change: WriteBack | None
    tasks: list[OwnerTask]

    def record_row(self, crm: str, definitions_hash: str, now: datetime) -> dict[str, Any]:
        contact, decision = self.contact, self.decision
        writes = decision.writes
        return {
            "crm": crm, "record_id": contact.id,
            "modified_at": aware(contact.updated_at) if isinstance(contact.updated_at, datetime) else None,
            "snapshot_hash": fingerprint(contact.snapshot), "inputs_hash": self.digest,
            "definitions_hash": definitions_hash, "lead_status": contact.lead_status,
            "previous_lead_status": contact.previous_lead_status, "stage": self.decision.current_stage.value,
            "target_stage": self.decision.target_stage.value, "last_decision_id": self.decision_id,
            "snapshot": contact.snapshot, "mql_at": moment(writes.get("mql_at") or contact.mql_at),
            "sal_at": moment(writes.get("sal_at") or contact.sal_at),
            "sql_at": moment(writes.get("sql_at") or contact.sql_at), "sla_state": writes.get("sla_state"),
            "slas": [vars_of(clock) for clock in decision.slas], "sla_next_at": next_change(decision.slas, now),
            "dq_invalid": decision.reason is not None and not decision.reason.valid,
            "dq_reason": decision.reason.code if decision.reason is not None and decision.reason.valid else None,
            "skipped_gate": skipped_gate(contact, decision),
            "source": _short(contact.source), "segment": segment(contact.employees),
            "owner_id": _short(contact.owner_id), "definitions_version": decision.definitions_version,
            "created_at": moment(contact.created_at),
            "updated_at": now,
        }

    def outbox_rows(self, crm: str, status: OutboxStatus) -> list[dict[str, Any]]:
        """The write-back (keyed by what it writes over what) and the owner tasks, as outbox rows."""
        rows: list[dict[str, Any]] = []
        record_id, change = self.contact.id, self.change
        if change is not None:
            key = fingerprint([crm, record_id, "write", change.properties, change.previous])
            rows.append({"record_id": record_id, "kind": OutboxKind.WRITE, "key": key, "status": status,
                         "decision_id": self.decision_id, "payload": {"properties": change.properties,
                                                                      "previous": change.previous}})
        rows += [{"record_id": record_id, "kind": OutboxKind.TASK, "key": task.key, "status": status,
                  "decision_id": self.decision_id, "payload": {
                      "owner_id": task.owner_id, "subject": task.subject, "body": task.body,
                      "due_at": task.due_at.isoformat() if task.due_at else None}} for task in self.tasks]
        return rows


def skipped_gate(contact: Contact, decision: Decision) -> str | None:
    """The pipeline verdict as it stands: given by this decision, or read back from the record."""
    if not decision.target_stage.is_sales_owned:
        return None
    verdict = decision.writes.get("skipped_gate", contact.skipped_gate)
    return str(verdict)[:1000] if verdict is not None else None


def segment(employees: Any) -> str | None:
    """Company-size segment for reports: smb (< 50), mid-market (50-500), enterprise (> 500)."""
    number, _ = count(employees)
    if number is None:
        return None
    return "smb" if number < 50 else "mid_market" if number <= 500 else "enterprise"


def _short(value: Any) -> str | None:
    return str(value)[:64] if value not in (None, "") else None


def vars_of(clock: Any) -> dict[str, Any]:
    return {name: getattr(clock, name) for name in clock.__dataclass_fields__}
