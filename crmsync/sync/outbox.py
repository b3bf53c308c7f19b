"""Sending the outbox: pending writes, then pending tasks, in CRM-sized batches, each sent only while
this replica holds the stream's lease and acknowledged record by record. A person's later edit wins:
writes decided by an earlier pass, writes whose record was read `recheck_after` or longer before their
batch's first send, and every write before it is sent again, are checked against the record as the CRM
has it now; an overtaken write is dropped (`stale`) and its record re-decided."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.connectors.base import Connector
from crmsync.errors import RecordError
from crmsync.model import Contact, OwnerTask, WriteBack
from crmsync.store import Store, aware
from crmsync.store.kinds import OutboxKind, OutboxStatus
from crmsync.sync.decide import Decider
from crmsync.sync.inputs import contact_inputs
from crmsync.sync.lease import Lease
from crmsync.sync.report import PassReport

log = logging.getLogger("crmsync.sync")
WRITE_BATCH = 100
FLUSH_AT = 1000
MAX_ATTEMPTS = 8
PENDING_LIMIT = 100_000
RECHECK_AFTER = 5.0
"""Seconds: a write whose record was read this long ago or longer is re-read before its first send (the
default of `sync.recheck_after_seconds`)."""
DEPENDS_ON = ("stage", "lead_status", "owner_id", "dq_reason", "bant")
"""What a decision depends on that people change in the CRM (besides the fields crmsync writes)."""


class Outbox:
    def __init__(self, store: Store, connector: Connector, decider: Decider, *, started: datetime,
                 lease: Lease | None, recheck_after: float = RECHECK_AFTER) -> None:
        self.store = store
        self.connector = connector
        self.decider = decider
        self.started = started  # outbox rows older than this were decided by an earlier pass
        self.lease = lease
        self.recheck_after = recheck_after
        self.crm = connector.name

    def flush(self, report: PassReport, *, only_full: bool = False) -> None:
        """Send pending writes, then pending tasks. With `only_full` (during a pass) only when there is
        enough for full CRM batches: fewer, fuller calls."""
        self._writes(report, only_full=only_full)
        self._tasks(report, only_full=only_full)

    def _writes(self, report: PassReport, *, only_full: bool) -> None:
        if only_full and self.store.outbox_depth(self.crm, OutboxKind.WRITE) < FLUSH_AT:
            return  # counted, not loaded: this check runs after every page
        rows = self.store.pending(self.crm, OutboxKind.WRITE, PENDING_LIMIT)
        if self._drop_stale([r for r in rows if (aware(r["created_at"]) or self.started) < self.started], report):
            rows = self.store.pending(self.crm, OutboxKind.WRITE, PENDING_LIMIT)
        if self._send(rows, report):  # writes overtaken before their send: the records' new writes go now too
            sent = {r["id"] for r in rows}
            self._send([r for r in self.store.pending(self.crm, OutboxKind.WRITE, PENDING_LIMIT)
                        if r["id"] not in sent], report)

    def _send(self, rows: list[dict[str, Any]], report: PassReport) -> bool:
        """Pending writes in CRM batches; True when a person had overtaken any (dropped, re-decided)."""
        superseded = False
        size = self.connector.write_batch
        for start in range(0, len(rows), size):  # a batch; the connector calls `_hold` before each of its calls
            chunk = rows[start:start + size]
            writes = [WriteBack(r["record_id"], r["payload"]["properties"], r["payload"]["previous"]) for r in chunk]
            by_id = {r["record_id"]: r for r in chunk}
            found = Edited()

            def recheck(pending: list[WriteBack], by_id: dict[str, Any] = by_id, found: Edited = found
                        ) -> list[WriteBack]:
                """Before a batch is sent again (the attempt before may have landed, its answer lost), and
                before the first send of writes whose records were read `recheck_after` or longer ago: a
                person's edit made since the decision wins, as over a stale write."""
                self._hold()
                edited = self._person_edited([by_id[w.record_id] for w in pending])
                found.extend(edited)
                gone = {row["record_id"] for row in edited.rows}
                return [w for w in pending if w.record_id not in gone]

            aged = {w.record_id for w in writes if self.decider.reads.older_than(w.record_id, self.recheck_after)}
            if aged:  # read too long ago for a first send as decided: checked as before a retry
                kept = {w.record_id for w in recheck([w for w in writes if w.record_id in aged])}
                writes = [w for w in writes if w.record_id not in aged or w.record_id in kept]
            results = ({r.record_id: r for r in self.connector.write(writes, recheck=recheck, fence=self._hold)}
                       if writes else {})
            gone = {row["record_id"] for row in found.rows}
            self._acknowledge([r for r in chunk if r["record_id"] not in gone], results, report, "written", "write")
            superseded = self._supersede(found, report) or superseded
        return superseded

    def _drop_stale(self, stale: list[dict[str, Any]], report: PassReport) -> bool:
        """Writes decided by an earlier pass are compared with the records as the CRM has them now (one
        batch read): where a field crmsync meant to write, or one the decision depended on, was changed
        since, the write is dropped and the record re-decided from its current values (the same decide /
        store / outbox path). True when any was dropped."""
        if not stale:
            return False
        return self._supersede(self._person_edited(stale), report)

    def _person_edited(self, rows: list[dict[str, Any]]) -> Edited:
        """The pending writes a person has overtaken: the records read now (one batch read) against the
        decision behind each write (see `edited`); a record now unmappable counts too (never overwrite
        what a person set)."""
        self.decider.reads.note(r["record_id"] for r in rows)
        current = self.connector.read([r["record_id"] for r in rows])
        now_by_id = {c.id: c for c in current.contacts}
        unreadable = {e.record_id: e for e in current.errors}
        basis = self.store.decision_basis([r["decision_id"] for r in rows if r["decision_id"] is not None])
        found = Edited()
        for row in rows:
            record_id = row["record_id"]
            if record_id in unreadable:
                found.rows.append(row)
                found.rejected.append(("read", unreadable[record_id]))
            elif record_id in now_by_id and edited(row, now_by_id[record_id], basis.get(row["decision_id"])):
                found.rows.append(row)
                found.redecide.append(now_by_id[record_id])
        return found

    def _supersede(self, found: Edited, report: PassReport) -> bool:
        """Drop the overtaken writes and re-decide their records from what the CRM has now."""
        if not found.rows:
            return False
        self.store.acknowledge([(row["id"], OutboxStatus.STALE, "the record changed in the CRM since the decision")
                                for row in found.rows])
        report.counts["stale_writes"] += len(found.rows)
        log.info("stale writes dropped, records re-decided", extra={"crm": self.crm, "count": len(found.rows)})
        self.decider.page(found.redecide, found.rejected, report, {})
        return True

    def _hold(self) -> None:
        """The fence: renew the lease right before a CRM write call (and before a recheck's read), or raise
        LeaseLost, and nothing more is sent."""
        if self.lease is not None:
            self.lease.hold()

    def _tasks(self, report: PassReport, *, only_full: bool) -> None:
        if only_full and self.store.outbox_depth(self.crm, OutboxKind.TASK) < WRITE_BATCH:
            return
        rows = self.store.pending(self.crm, OutboxKind.TASK, PENDING_LIMIT)
        for start in range(0, len(rows), WRITE_BATCH):
            chunk = rows[start:start + WRITE_BATCH]
            tasks = [OwnerTask(r["record_id"], r["payload"]["owner_id"], r["payload"]["subject"], r["payload"]["body"],
                               r["key"], _parse(r["payload"].get("due_at"))) for r in chunk]
            outcomes = self.connector.create_tasks(tasks, fence=self._hold)
            self._acknowledge(chunk, {f"{r['id']}": o for r, o in zip(chunk, outcomes, strict=True)}, report,
                              "tasks", "task", by_row=True)

    def _acknowledge(self, rows: list[dict[str, Any]], results: dict[str, Any], report: PassReport,
                     counter: str, step: str, *, by_row: bool = False) -> None:
        acks: list[tuple[int, OutboxStatus, str | None]] = []
        failed: list[tuple[str, str]] = []
        for row in rows:
            result = results.get(str(row["id"]) if by_row else row["record_id"])
            if result is None:
                acks.append((row["id"], OutboxStatus.PENDING, "the CRM gave no answer for this record"))
            elif result.ok:
                acks.append((row["id"], OutboxStatus.DONE, None))
                report.counts[counter] += 1
            elif result.retriable and row["attempts"] + 1 < MAX_ATTEMPTS:
                acks.append((row["id"], OutboxStatus.PENDING, result.error))
            else:
                acks.append((row["id"], OutboxStatus.FAILED, result.error))
                failed.append((row["record_id"], result.error))
                report.counts["write_failed"] += 1
        self.store.acknowledge(acks)
        if failed:
            with self.store.transaction() as c:
                for record_id, error in failed:
                    self.store.quarantine(c, self.crm, record_id, step, error)


@dataclass
class Edited:
    """Pending writes a person has overtaken: their outbox rows, the records to re-decide, and the
    records that no longer map (quarantined)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    redecide: list[Contact] = field(default_factory=list)
    rejected: list[tuple[str, RecordError]] = field(default_factory=list)

    def extend(self, other: Edited) -> None:
        self.rows += other.rows
        self.redecide += other.redecide
        self.rejected += other.rejected


def edited(row: dict[str, Any], current: Contact, basis: dict[str, Any] | None) -> bool:
    """Whether a person changed the record since the decision behind this pending write: a field it
    writes holds neither the value decided from nor the value to write, or a field the decision
    depended on holds neither the value decided from nor the value decided on. A written field found
    empty is crmsync's own half-done move (HubSpot's lifecycle stage is cleared before it is moved
    back): the stage is then judged by the other fields, and the write is sent to finish the move."""
    payload = row["payload"]
    cleared = False
    for name, value in payload["properties"].items():
        now_value, before = current.snapshot.get(name, ""), payload["previous"].get(name, "")
        if now_value == "" and before != "" and value != "":
            cleared = True
        elif now_value not in (before, value):
            return True
    if basis is None:
        return False
    now = contact_inputs(current, [])["contact"]
    decided_on = {"stage": basis["target_stage"], "lead_status": basis["writes"].get("lead_status")}
    return any(now.get(name) not in (basis["inputs"].get(name), decided_on.get(name))
               for name in DEPENDS_ON if not (cleared and name == "stage"))


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
