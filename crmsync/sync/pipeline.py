"""One sync pass for one CRM: pull -> decide -> diff -> outbox -> write -> audit -> cursor.

The upper bound of the window is fixed at the start; the pull starts at the cursor minus an
overlap (late index updates are caught, records seen twice are harmless); each page's decisions,
snapshots and outbox rows are committed in one transaction; the outbox is then flushed in
CRM-sized batches, acknowledged record by record; the cursor moves only when the whole window is
committed. crmsync's own writes come back on the next pull and settle: the decision on written
values changes nothing, so nothing more is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from crmsync.connectors.base import ActivityStreams, Connector, PulledPage
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import LeaseLost, RecordError
from crmsync.model import ActionKind, Activity, Contact, Decision, LeadStatus, OwnerTask, WriteBack
from crmsync.rules import decide
from crmsync.rules.sla import next_change
from crmsync.rules.values import count, moment
from crmsync.store import Store, aware, fingerprint
from crmsync.sync import erasure
from crmsync.sync.inputs import contact_inputs, restore
from crmsync.sync.lease import Lease
from crmsync.sync.sanitize import activity_problem, contact_problem, failure, storable

log = logging.getLogger("crmsync.sync")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
WRITE_BATCH = 100
FLUSH_AT = 1000
MAX_ATTEMPTS = 8
TASK_DUE = timedelta(days=1)
TASK_SUBJECTS = {"sql_blocked": "crmsync: SQL blocked, document BANT",
                 "dq_reason": "crmsync: fix the disqualification reason",
                 "sla": "crmsync: SLA needs attention",
                 "skipped_gate": "crmsync: pipeline without documented qualification"}


@dataclass
class PassReport:
    crm: str
    kind: str
    mode: str
    window: tuple[datetime, datetime]
    dry_run: bool = False
    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("pulled", "unchanged", "decided", "stored", "changed", "written", "write_failed", "tasks", "quarantined",
         "events", "stale_writes", "erased"), 0))
    plan: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    outcome: str = "running"


class SyncPass:
    def __init__(self, store: Store, connector: Connector, definitions: LoadedDefinitions, *,
                 mode: str = "enforce", overlap: timedelta = timedelta(minutes=5), dry_run: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 progress: Callable[[PassReport], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False, lease: Lease | None = None) -> None:
        self.store = store
        self.connector = connector
        self.definitions = definitions
        self.mode = mode
        self.overlap = overlap
        self.dry_run = dry_run
        self.clock = clock
        self.progress = progress
        self.should_stop = should_stop
        self.lease = lease
        self.crm = connector.name
        self.started = datetime.now(UTC)  # outbox rows older than this were decided by an earlier pass

    # --- the pass -------------------------------------------------------------------------------

    def run(self, *, kind: str = "sync", since: datetime | None = None, until: datetime | None = None,
            stream: str = "contacts") -> PassReport:
        """`sync`: from the stream's cursor (minus the overlap) to now. `backfill`: exactly [since, until)
        on a cursor of its own (`backfill_stream`), so the live cursor does not move; without `until`,
        the upper bound is frozen the first time and an unfinished backfill resumes after its last
        committed page. The run row always closes: ok, failed (any exception), or interrupted
        (stopped, lease lost, KeyboardInterrupt, SystemExit)."""
        frozen, resume = self.store.unfinished(self.crm, stream) if kind == "backfill" else (None, None)
        upper = until or frozen or self.clock()
        cursor = self.store.cursor(self.crm, stream)
        lower = since if since is not None else (cursor - self.overlap if cursor else EPOCH)
        report = PassReport(self.crm, kind, self.mode, (lower, upper), self.dry_run)
        if not self.dry_run:
            if self.lease is not None:  # with the lease no other sync or webhook batch of this CRM runs
                self.store.close_stale_runs(self.crm, [kind, "webhook"] if kind == "sync" else [kind])
            else:
                self.store.close_stale_runs(self.crm, [kind], unless_leased=f"sync:{self.crm}")
            report.run_id = self.store.start_run(self.crm, kind, self.mode, (lower, upper))
        try:
            if kind == "backfill" and frozen is None and not self.dry_run:
                with self.store.transaction() as c:  # the window is fixed before its first page
                    self.store.set_cursor(c, self.crm, stream, lower, upper_bound=upper)
            self._run(report, stream, lower, upper, resume)
        except BaseException as exc:
            failed = isinstance(exc, Exception) and not isinstance(exc, LeaseLost)
            report.outcome = "failed" if failed else "interrupted"
            self._close(report, failure(exc))
            raise
        self._close(report)
        log.info("sync pass done", extra={"crm": self.crm, "kind": kind, "outcome": report.outcome,
                                          "counts": report.counts})
        return report

    def _run(self, report: PassReport, stream: str, lower: datetime, upper: datetime, resume: str | None) -> None:
        kind = report.kind
        checkpoint = stream if kind == "backfill" else None
        if self._writes_enabled:
            # Finish what an interrupted pass left in the outbox first (re-read: a person's later edit
            # wins); a revert cut between its "clear" and its "set" is completed, not re-decided.
            self.flush(report)
        unstored = {} if resume else self._events(report, stream, lower, upper)
        decided: set[str] = set()
        for page in self.connector.pull_changed(lower, upper, after_key=resume, backfill=kind == "backfill"):
            decided |= self._page(page, report, unstored, skip_seen=kind == "sync" and not unstored,
                                  checkpoint=checkpoint)
            if self._writes_enabled:
                self.flush(report, only_full=True)
            if self.progress:
                self.progress(report)
            if self.should_stop():
                report.outcome = "interrupted"
                break
        streams = [] if report.outcome == "interrupted" else self._activity_changes(report, stream, lower, upper,
                                                                                    decided)
        if self._writes_enabled:
            self.flush(report)
        if report.outcome == "interrupted":  # stopped between pages: the window is read again next time
            return
        if kind == "sync" and not self.dry_run and erasure.sweep_due(self.store, self.crm, upper):
            report.counts["erased"] += erasure.sweep_deleted(self.store, self.connector, upper)
        if not self.dry_run:
            with self.store.transaction() as c:
                for name in [stream, *streams]:
                    self.store.set_cursor(c, self.crm, name, upper)
        report.outcome = "ok"

    def _activity_changes(self, report: PassReport, stream: str, lower: datetime, upper: datetime,
                          decided: set[str]) -> list[str]:
        """Where activities change without their record (Salesforce), each activity stream is read on
        a cursor of its own (`<stream>:<name>`, from its cursor minus the overlap to the pass's upper
        bound) every `activity_interval`, and the records it names that this pass did not decide are read
        and sent through the same decide / store / outbox path. The streams read, whose cursors move
        with the pass's; none on a pass that is not due, or for a first pass (it read every record with
        its activities)."""
        connector = self.connector
        if report.kind != "sync" or not isinstance(connector, ActivityStreams):
            return []
        names = {f"{stream}:{name}": name for name in connector.activity_streams}
        cursors = {full: self.store.cursor(self.crm, full) for full in names}
        known = [c for c in cursors.values() if c is not None]
        if known and upper - min(known) < connector.activity_interval:
            return []
        since = {names[full]: cursor - self.overlap if cursor is not None else lower
                 for full, cursor in cursors.items()}
        touched = connector.touched({name: start for name, start in since.items() if start > EPOCH}, upper)
        fresh = sorted(touched - decided)
        if fresh:
            self._page(self.connector.read(fresh), report, {})
        return list(names)

    def _close(self, report: PassReport, error: str | None = None) -> None:
        if report.run_id is None:
            return
        if error is None:
            self.store.finish_run(report.run_id, report.outcome, report.counts)
            return
        try:
            self.store.finish_run(report.run_id, report.outcome, report.counts, error)
        except Exception as exc:  # the store itself failed: the row is closed at the next start
            log.warning("could not close the run", extra={"crm": self.crm, "run_id": report.run_id,
                                                         "error": exc.__class__.__name__})

    @property
    def _writes_enabled(self) -> bool:
        return self.mode == "enforce" and not self.dry_run

    def _events(self, report: PassReport, stream: str, lower: datetime,
                upper: datetime) -> dict[str, list[Activity]]:
        """Activities the CRM only offers as a stream (HubSpot page views, forms) are kept locally.
        A dry run stores nothing: it returns them, by record, for its decisions."""
        events = events_stream(stream)
        cursor = self.store.cursor(self.crm, events)
        since = lower if report.kind != "sync" or cursor is None else min(lower, cursor - self.overlap)
        found = self.connector.events(since, upper)
        if self.dry_run:
            unstored: dict[str, list[Activity]] = {}
            for record_id, activity in found:
                unstored.setdefault(record_id, []).append(activity)
                report.counts["events"] += 1
            return unstored
        report.counts["events"] += self.store.add_activities(self.crm, self._storable(found))
        with self.store.transaction() as c:
            self.store.set_cursor(c, self.crm, events, upper)
        return {}

    def _storable(self, found: Iterator[tuple[str, Activity]]) -> Iterator[tuple[str, Activity]]:
        """Streamed activities the store can keep; one it cannot is left out and logged, by id only."""
        for record_id, activity in found:
            poisoned = activity_problem(activity)
            if poisoned:
                log.warning("activity left out: it cannot be stored", extra={"crm": self.crm, "reason": poisoned})
                continue
            yield record_id, activity

    def _page(self, page: PulledPage, report: PassReport, unstored: dict[str, list[Activity]],
              skip_seen: bool = False, checkpoint: str | None = None) -> set[str]:
        """Decide a page; the ids decided. With `skip_seen` (incremental passes), a record already decided at this very
        modification time is left out: the overlap re-reads it, nothing about it changed (dedupe by id
        and modification time), so it costs no activity reads and no decision. With `checkpoint` (a
        stream), the page's resume key is stored with the page: a crash resumes after it."""
        report.counts["pulled"] += len(page.contacts)
        resume = (checkpoint, page.resume_key) if checkpoint and page.resume_key else None
        decided = self._decide_page(page.contacts, [("read", e) for e in page.errors], report, unstored, skip_seen,
                                    resume)
        if page.deleted and not self.dry_run:
            report.counts["erased"] += erasure.erase(self.store, self.crm, page.deleted, "pull")
        return decided

    def _decide_page(self, contacts: list[Contact], rejected: list[tuple[str, RecordError]], report: PassReport,
                     unstored: dict[str, list[Activity]], skip_seen: bool = False,
                     resume: tuple[str, str] | None = None) -> set[str]:
        """Decide records and store the decisions; the ids decided. One bad record (a value no store
        keeps, a decision that raises) is quarantined with the reason, and the others go on."""
        previous = self.store.records(self.crm, [c.id for c in contacts])
        fresh = [c for c in contacts if not (skip_seen and _seen(previous.get(c.id), c))]
        report.counts["unchanged"] += len(contacts) - len(fresh)
        ids = [c.id for c in fresh]
        engaged = self.connector.activities(ids) if ids else {}
        stored = self.store.activities_for(self.crm, ids)
        for record_id in ids:
            stored.setdefault(record_id, []).extend(unstored.get(record_id, []))
        now = self.clock()
        decided: list[_Decided] = []
        for contact in fresh:
            acts = engaged.get(contact.id, []) + stored.get(contact.id, [])
            poisoned = contact_problem(contact, acts)
            if poisoned:
                rejected.append(("read", RecordError(contact.id, poisoned)))
                continue
            try:
                decided.append(self._decide_one(contact, acts, previous.get(contact.id), now, report))
            except Exception as exc:  # one record's decision must never stop the pass
                rejected.append(("decide", RecordError(contact.id, failure(exc))))
        if self.dry_run:
            report.counts["quarantined"] += len(rejected)
            report.plan += [{"record_id": d.contact.id, "from": d.decision.current_stage.value,
                             "to": d.decision.target_stage.value, "properties": d.change.properties,
                             "actions": [a.kind.value for a in d.decision.actions]}
                            for d in decided if d.change is not None]
            return set(ids)
        self._store_page(decided, rejected, report, now, release=True, resume=resume)
        return set(ids)

    def _store_page(self, decided: list[_Decided], rejected: list[tuple[str, RecordError]], report: PassReport,
                    now: datetime, release: bool = False, resume: tuple[str, str] | None = None) -> None:
        """A page in one transaction (with the stream's checkpoint `resume`, when given: a crash resumes
        after it). When it fails for something in the data, the page is stored record by record: the
        records the store refuses are quarantined, the rest committed."""
        try:
            self._store_records(decided, rejected, report, now, release, resume)
            return
        except Exception as exc:
            if _store_down(exc) or len(decided) < 1:
                raise
            page_error = exc
        refused: list[tuple[str, RecordError]] = []
        for item in decided:
            try:
                self._store_records([item], [], report, now, release)
            except Exception as exc:
                if _store_down(exc):
                    raise
                refused.append(("store", RecordError(item.contact.id, failure(exc))))
        if len(refused) == len(decided) > 1:
            raise page_error  # every record refused: the store's problem, not the records'
        self._store_records([], rejected + refused, report, now, release, resume)

    def _store_records(self, decided: list[_Decided], rejected: list[tuple[str, RecordError]], report: PassReport,
                       now: datetime, release: bool, resume: tuple[str, str] | None = None) -> None:
        """Decisions, outbox rows and record snapshots in one transaction; the records that went through
        cleanly leave quarantine; `resume` (stream, key) checkpoints the stream there."""
        status = "pending" if self.mode == "enforce" else "shadow"
        with self.store.transaction() as c:
            for step, error in rejected:
                self.store.quarantine(c, self.crm, storable(error.record_id), step, storable(error.reason))
            fresh = [(d, d.row) for d in decided if d.row is not None]
            self.store.save_inputs(c, list({d.digest: {"hash": d.digest, "crm": self.crm, "record_id": d.contact.id,
                                                       "data": d.data} for d, _ in fresh}.values()))
            ids_stored = self.store.add_decisions(c, [row for _, row in fresh])
            for (item, _), decision_id in zip(fresh, ids_stored, strict=True):
                item.decision_id = decision_id
            outbox: list[dict[str, Any]] = []
            for d in decided:
                if d.change is not None:
                    key = fingerprint([self.crm, d.contact.id, "write", d.change.properties, d.change.previous])
                    outbox.append({"record_id": d.contact.id, "kind": "write", "key": key, "status": status,
                                   "decision_id": d.decision_id, "payload": {"properties": d.change.properties,
                                                                             "previous": d.change.previous}})
                outbox += [{"record_id": d.contact.id, "kind": "task", "key": task.key, "status": status,
                            "decision_id": d.decision_id, "payload": {
                                "owner_id": task.owner_id, "subject": task.subject, "body": task.body,
                                "due_at": task.due_at.isoformat() if task.due_at else None}} for task in d.tasks]
            self.store.enqueue_many(c, self.crm, outbox)
            self.store.save_records(c, [d.record_row(self.crm, self.definitions.content_hash, now) for d in decided])
            if release:
                self.store.release(c, self.crm, [d.contact.id for d in decided])
            if resume:
                self.store.set_checkpoint(c, self.crm, *resume)
        report.counts["quarantined"] += len(rejected)
        report.counts["stored"] += len(fresh)

    def _decide_one(self, contact: Contact, acts: list[Activity], prev: dict[str, Any] | None,
                    now: datetime, report: PassReport) -> _Decided:
        self._carry_lead_status(contact, prev)
        data = contact_inputs(contact, acts)
        digest = fingerprint(data)
        decision = decide(contact, acts, self.definitions, now)
        decision_id = prev["last_decision_id"] if prev else None
        unchanged = (prev is not None and decision_id is not None and prev["inputs_hash"] == digest
                     and prev["definitions_hash"] == self.definitions.content_hash)
        row = None if unchanged else {
            "run_id": report.run_id, "crm": self.crm, "record_id": contact.id, "decided_at": now,
            "inputs_hash": digest, "definitions_version": decision.definitions_version,
            "definitions_hash": decision.definitions_hash, "current_stage": decision.current_stage.value,
            "target_stage": decision.target_stage.value, "mql": decision.mql, "decision": decision.to_dict()}
        change = self.connector.changes(contact, decision.writes)
        tasks = self._tasks(contact, decision, now)
        report.counts["decided"] += 1
        report.stages[decision.target_stage.value] = report.stages.get(decision.target_stage.value, 0) + 1
        if change is not None:
            report.counts["changed"] += 1
        return _Decided(contact, decision, data, digest, row, decision_id, change, tasks)

    @staticmethod
    def _carry_lead_status(contact: Contact, prev: dict[str, Any] | None) -> None:
        """The status before the latest change, so a reverted SQL can put it back."""
        if prev is None:
            return
        if prev["lead_status"] != contact.lead_status and prev["lead_status"] != LeadStatus.QUALIFIED.value:
            contact.previous_lead_status = prev["lead_status"]
        else:
            contact.previous_lead_status = prev["previous_lead_status"]

    def _tasks(self, contact: Contact, decision: Decision, now: datetime) -> list[OwnerTask]:
        """Owner tasks, keyed so a situation gets one task however often it is seen: a revert by the
        change that caused it, a flagged reason by the reason text, an SLA by clock, state and due time."""
        tasks = []
        for action in decision.actions:
            if action.kind is not ActionKind.OPEN_TASK:
                continue
            episode = {"sql_blocked": str(contact.updated_at),
                       "dq_reason": decision.reason.value if decision.reason else ""}.get(action.topic, "")
            key = fingerprint([self.crm, contact.id, "task", action.detail, episode])
            tasks.append(OwnerTask(contact.id, str(contact.owner_id) if contact.owner_id else None,
                                   TASK_SUBJECTS.get(action.topic, "crmsync: follow up"), action.detail, key,
                                   due_at=now + TASK_DUE))
        return tasks

    # --- webhooks ---------------------------------------------------------------------------------

    def react(self, record_ids: list[str]) -> PassReport:
        """Records the CRM just told us about (a webhook): read them in one batch and send them
        through the same decide / store / outbox path as a pull."""
        now = self.clock()
        report = PassReport(self.crm, "webhook", self.mode, (now, now), self.dry_run)
        self._page(self.connector.read(record_ids), report, {})
        if self._writes_enabled:
            self.flush(report)
        report.outcome = "ok"
        return report

    # --- the SLA sweep ----------------------------------------------------------------------------

    def sweep(self) -> PassReport:
        """Move SLA clocks without waiting for records to change: re-decide, from their stored inputs,
        the records whose clocks change state by now, and write what changed (state, owner tasks)."""
        now = self.clock()
        report = PassReport(self.crm, "sla_sweep", self.mode, (now, now), self.dry_run)
        due = self.store.records_due(self.crm, now)
        for start in range(0, len(due), 200):
            decided, rejected = [], []
            for row in due[start:start + 200]:
                data = self.store.inputs_for(row["inputs_hash"])
                if data is None:
                    continue
                contact, activities = restore(data)
                contact.snapshot = dict(row["snapshot"] or {})
                for stamp in ("mql_at", "sal_at", "sql_at"):  # what crmsync wrote since that pull
                    if not getattr(contact, stamp) and row[stamp] is not None:
                        setattr(contact, stamp, aware(row[stamp]))
                prev = {**row, "inputs_hash": ""}  # force a stored decision: time moved the clocks
                try:
                    decided.append(self._decide_one(contact, activities, prev, now, report))
                except Exception as exc:  # one record's decision must never stop the sweep
                    rejected.append(("decide", RecordError(contact.id, failure(exc))))
            self._store_page(decided, rejected, report, now)
        if self._writes_enabled:
            self.flush(report)
        report.outcome = "ok"
        return report

    # --- the outbox -----------------------------------------------------------------------------

    def flush(self, report: PassReport | None = None, only_full: bool = False) -> None:
        """Send pending writes, then pending tasks; each record acknowledged on its own. During a pass
        (`only_full`) only when there is enough for full CRM batches: fewer, fuller calls. Writes left
        by an earlier pass are checked against the CRM first; each batch is sent only while this
        replica holds the stream's lease."""
        report = report or PassReport(self.crm, "flush", self.mode, (self.started, self.started), self.dry_run)
        self._flush_writes(report, only_full)
        self._flush_tasks(report, only_full)

    def _flush_writes(self, report: PassReport, only_full: bool) -> None:
        if only_full and self.store.outbox_depth(self.crm, "write") < FLUSH_AT:
            return  # counted, not loaded: this check runs after every page
        rows = self.store.pending(self.crm, "write", 100_000)
        if self._drop_stale([r for r in rows if (aware(r["created_at"]) or self.started) < self.started], report):
            rows = self.store.pending(self.crm, "write", 100_000)
        size = self.connector.write_batch
        for start in range(0, len(rows), size):  # one CRM call per batch, each under the lease
            chunk = rows[start:start + size]
            self._hold()
            writes = [WriteBack(r["record_id"], r["payload"]["properties"], r["payload"]["previous"]) for r in chunk]
            by_id = {r["record_id"]: r for r in chunk}
            found = _Edited()

            def recheck(pending: list[WriteBack], by_id: dict[str, Any] = by_id, found: _Edited = found
                        ) -> list[WriteBack]:
                """Before a batch is sent again (the attempt before may have landed, its answer lost): a
                person's edit made since the decision wins over the retry, as over a stale write."""
                self._hold()
                edited = self._person_edited([by_id[w.record_id] for w in pending])
                found.extend(edited)
                gone = {row["record_id"] for row in edited.rows}
                return [w for w in pending if w.record_id not in gone]

            results = {r.record_id: r for r in self.connector.write(writes, recheck=recheck)}
            gone = {row["record_id"] for row in found.rows}
            self._acknowledge([r for r in chunk if r["record_id"] not in gone], results, report, "written", "write")
            self._supersede(found, report)

    def _drop_stale(self, stale: list[dict[str, Any]], report: PassReport) -> bool:
        """A person's later edit wins. Writes decided by an earlier pass are compared with the records
        as the CRM has them now (one batch read): where a field crmsync meant to write, or one the
        decision depended on, was changed since, the write is dropped and the record re-decided from
        its current values (the same decide / store / outbox path). True when any was dropped."""
        if not stale:
            return False
        return self._supersede(self._person_edited(stale), report)

    def _person_edited(self, rows: list[dict[str, Any]]) -> _Edited:
        """The pending writes a person has overtaken: the records read now (one batch read) against the
        decision behind each write (see `_edited`); a record now unmappable counts too (never overwrite
        what a person set)."""
        current = self.connector.read([r["record_id"] for r in rows])
        now_by_id = {c.id: c for c in current.contacts}
        unreadable = {e.record_id: e for e in current.errors}
        basis = self.store.decision_basis([r["decision_id"] for r in rows if r["decision_id"] is not None])
        edited = _Edited()
        for row in rows:
            record_id = row["record_id"]
            if record_id in unreadable:
                edited.rows.append(row)
                edited.rejected.append(("read", unreadable[record_id]))
            elif record_id in now_by_id and _edited(row, now_by_id[record_id], basis.get(row["decision_id"])):
                edited.rows.append(row)
                edited.redecide.append(now_by_id[record_id])
        return edited

    def _supersede(self, edited: _Edited, report: PassReport) -> bool:
        """Drop the overtaken writes and re-decide their records from what the CRM has now."""
        if not edited.rows:
            return False
        self.store.acknowledge([(row["id"], "stale", "the record changed in the CRM since the decision")
                                for row in edited.rows])
        report.counts["stale_writes"] += len(edited.rows)
        log.info("stale writes dropped, records re-decided", extra={"crm": self.crm, "count": len(edited.rows)})
        self._decide_page(edited.redecide, edited.rejected, report, {})
        return True

    def _hold(self) -> None:
        if self.lease is not None:
            self.lease.hold()

    def _flush_tasks(self, report: PassReport, only_full: bool) -> None:
        if only_full and self.store.outbox_depth(self.crm, "task") < WRITE_BATCH:
            return
        rows = self.store.pending(self.crm, "task", 100_000)
        for start in range(0, len(rows), WRITE_BATCH):
            chunk = rows[start:start + WRITE_BATCH]
            self._hold()
            tasks = [OwnerTask(r["record_id"], r["payload"]["owner_id"], r["payload"]["subject"], r["payload"]["body"],
                               r["key"], _parse(r["payload"].get("due_at"))) for r in chunk]
            outcomes = self.connector.create_tasks(tasks)
            self._acknowledge(chunk, {f"{r['id']}": o for r, o in zip(chunk, outcomes, strict=True)}, report,
                              "tasks", "task", by_row=True)

    def _acknowledge(self, rows: list[dict[str, Any]], results: dict[str, Any], report: PassReport,
                     counter: str, step: str, by_row: bool = False) -> None:
        acks: list[tuple[int, str, str | None]] = []
        failed: list[tuple[str, str]] = []
        for row in rows:
            result = results.get(str(row["id"]) if by_row else row["record_id"])
            if result is None:
                acks.append((row["id"], "pending", "the CRM gave no answer for this record"))
            elif result.ok:
                acks.append((row["id"], "done", None))
                report.counts[counter] += 1
            elif result.retriable and row["attempts"] + 1 < MAX_ATTEMPTS:
                acks.append((row["id"], "pending", result.error))
            else:
                acks.append((row["id"], "failed", result.error))
                failed.append((row["record_id"], result.error))
                report.counts["write_failed"] += 1
        self.store.acknowledge(acks)
        if failed:
            with self.store.transaction() as c:
                for record_id, error in failed:
                    self.store.quarantine(c, self.crm, record_id, step, error)


DEPENDS_ON = ("stage", "lead_status", "owner_id", "dq_reason", "bant")
"""What a decision depends on that people change in the CRM (besides the fields crmsync writes)."""


@dataclass
class _Edited:
    """Pending writes a person has overtaken: their outbox rows, the records to re-decide, and the
    records that no longer map (quarantined)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    redecide: list[Contact] = field(default_factory=list)
    rejected: list[tuple[str, RecordError]] = field(default_factory=list)

    def extend(self, other: _Edited) -> None:
        self.rows += other.rows
        self.redecide += other.redecide
        self.rejected += other.rejected


def _edited(row: dict[str, Any], current: Contact, basis: dict[str, Any] | None) -> bool:
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


def _store_down(exc: Exception) -> bool:
    """The store itself is unreachable or busy: no record is to blame, the pass fails and retries."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout)


def backfill_stream(crm: str, since: datetime, until: datetime | None) -> str:
    """A backfill's own cursor: short (it fits `cursors.stream` with the `:events` suffix) and the same
    for the same request, so a re-run finds and resumes it; an open window (no `until`) is one name
    whatever the time, its upper bound being frozen in the cursor row."""
    end = until.astimezone(UTC).isoformat() if until else "open"
    return "backfill:" + fingerprint([crm, since.astimezone(UTC).isoformat(), end])[:16]


def events_stream(stream: str) -> str:
    """The cursor of the activities the CRM only offers as a stream, beside a record stream's."""
    return f"{stream}:events"


def _seen(previous: dict[str, Any] | None, contact: Contact) -> bool:
    if previous is None or previous["modified_at"] is None or not isinstance(contact.updated_at, datetime):
        return False
    return aware(previous["modified_at"]) == aware(contact.updated_at)


@dataclass
class _Decided:
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


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
