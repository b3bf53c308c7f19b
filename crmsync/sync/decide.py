"""Decide a page of records and commit it: decisions, inputs, outbox rows and record snapshots in one
transaction, with the marks of the stream it belongs to. One bad record (a value no store keeps, a
decision that raises, a row the store refuses) is quarantined with the reason; the others go on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from crmsync.connectors.base import Connector
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import RecordError
from crmsync.model import BACKLOG, ActionKind, Activity, Contact, Decision, LeadStatus, OwnerTask, Stage
from crmsync.rules import decide
from crmsync.store import Store, aware, fingerprint
from crmsync.store.kinds import OutboxStatus
from crmsync.sync.decided import Decided
from crmsync.sync.inputs import contact_inputs, restore
from crmsync.sync.reads import ReadTimes
from crmsync.sync.report import PassReport
from crmsync.sync.sanitize import contact_problem, failure, storable
from crmsync.sync.window import ROLLOUT_NOTE, Mark

Rejected = list[tuple[str, RecordError]]
"""Records left out of a page, by the step that refused them (`read`, `decide`, `store`)."""
TASK_DUE = timedelta(days=1)
TASK_SUBJECTS = {"sql_blocked": "crmsync: SQL blocked, document BANT",
                 "dq_reason": "crmsync: fix the disqualification reason",
                 "sla": "crmsync: SLA needs attention",
                 "skipped_gate": "crmsync: pipeline without documented qualification"}
SWEEP_CHUNK = 200
FIRST_PASS, NO_BACKLOG = "first-pass", "none"
"""`sync.pipeline_backlog_before`'s words: the rollout is crmsync's first pass over the CRM (noted on the
cursor `ROLLOUT_NOTE`), or there is no backlog (every record judged as it is); else a date."""


class Decider:
    def __init__(self, store: Store, connector: Connector, definitions: LoadedDefinitions, *, mode: str,
                 dry_run: bool, clock: Callable[[], datetime], backlog_before: date | str = FIRST_PASS,
                 reads: ReadTimes | None = None) -> None:
        self.store = store
        self.reads = reads or ReadTimes()  # when each record was read: how old a pending write's basis is
        self.backlog_before = backlog_before
        self._rollout: datetime | None = None
        self.connector = connector
        self.definitions = definitions
        self.mode = mode
        self.dry_run = dry_run
        self.clock = clock
        self.crm = connector.name

    def page(self, contacts: list[Contact], rejected: Rejected, report: PassReport,
             unstored: dict[str, list[Activity]], *, skip_seen: bool = False, marks: Sequence[Mark] = (),
             read_at: float | None = None) -> set[str]:
        """Decide records and store the decisions; the ids decided. With `skip_seen` (incremental
        passes), a record already decided at this very modification time is left out: the overlap
        re-reads it, nothing about it changed, so it costs no activity reads and no decision. A dry run
        stores nothing: it adds the changes to the report's plan."""
        self.reads.note((c.id for c in contacts), at=read_at)  # when they were read (before their activities)
        previous = self.store.records(self.crm, [c.id for c in contacts])
        fresh = [c for c in contacts if not (skip_seen and _seen(previous.get(c.id), c))]
        report.counts["unchanged"] += len(contacts) - len(fresh)
        ids = [c.id for c in fresh]
        engaged = self.connector.activities(ids) if ids else {}
        stored = self.store.activities_for(self.crm, ids)
        for record_id in ids:
            stored.setdefault(record_id, []).extend(unstored.get(record_id, []))
        now = self.clock()
        decided: list[Decided] = []
        for contact in fresh:
            acts = engaged.get(contact.id, []) + stored.get(contact.id, [])
            poisoned = contact_problem(contact, acts)
            if poisoned:
                rejected.append(("read", RecordError(contact.id, poisoned)))
                continue
            try:
                decided.append(self.one(contact, acts, previous.get(contact.id), now, report))
            except Exception as exc:  # one record's decision must never stop the pass
                rejected.append(("decide", RecordError(contact.id, failure(exc))))
        if self.dry_run:
            report.counts["quarantined"] += len(rejected)
            report.plan += [{"record_id": d.contact.id, "from": d.decision.current_stage.value,
                             "to": d.decision.target_stage.value, "properties": d.change.properties,
                             "actions": [a.kind.value for a in d.decision.actions]}
                            for d in decided if d.change is not None]
            return set(ids)
        self.commit(decided, rejected, report, now, release=True, marks=marks)
        return set(ids)

    def due(self, report: PassReport) -> None:
        """The SLA sweep: re-decide, from their stored inputs, the records whose clocks change state by
        now (a stored decision is forced: time moved the clocks), a chunk per transaction."""
        now = self.clock()
        due = self.store.records_due(self.crm, now)
        for start in range(0, len(due), SWEEP_CHUNK):
            decided: list[Decided] = []
            rejected: Rejected = []
            for row in due[start:start + SWEEP_CHUNK]:
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
                    decided.append(self.one(contact, activities, prev, now, report, writes_only=SWEEP_WRITES))
                except Exception as exc:  # one record's decision must never stop the sweep
                    rejected.append(("decide", RecordError(contact.id, failure(exc))))
            self.commit(decided, rejected, report, now)

    def one(self, contact: Contact, acts: list[Activity], prev: dict[str, Any] | None,
            now: datetime, report: PassReport, *, writes_only: frozenset[str] | None = None) -> Decided:
        """One record's decision; `writes_only`: the only fields it may write (the SLA sweep's)."""
        _carry_lead_status(contact, prev)
        cutoff = None if _watched(prev) or self._changed_since_rollout(contact, now) else self.rollout(now)
        data = contact_inputs(contact, acts, backlog_before=cutoff)  # explain and backtest re-decide with it
        digest = fingerprint(data)
        decision = decide(contact, acts, self.definitions, now, backlog_before=cutoff)
        decision_id = prev["last_decision_id"] if prev else None
        unchanged = (prev is not None and decision_id is not None and prev["inputs_hash"] == digest
                     and prev["definitions_hash"] == self.definitions.content_hash)
        row = None if unchanged else {
            "run_id": report.run_id, "crm": self.crm, "record_id": contact.id, "decided_at": now,
            "inputs_hash": digest, "definitions_version": decision.definitions_version,
            "definitions_hash": decision.definitions_hash, "current_stage": decision.current_stage.value,
            "target_stage": decision.target_stage.value, "mql": decision.mql, "decision": decision.to_dict()}
        writes = decision.writes if writes_only is None else \
            {name: value for name, value in decision.writes.items() if name in writes_only}
        change = self.connector.changes(contact, writes)
        tasks = self._tasks(contact, decision, now)
        report.counts["decided"] += 1
        report.stages[decision.target_stage.value] = report.stages.get(decision.target_stage.value, 0) + 1
        if change is not None:
            report.counts["changed"] += 1
        return Decided(contact, decision, data, digest, row, decision_id, change, tasks)

    def commit(self, decided: list[Decided], rejected: Rejected, report: PassReport, now: datetime, *,
               release: bool = False, marks: Sequence[Mark] = ()) -> None:
        """A page in one transaction, with its stream's `marks` (a crash resumes after it). When it
        fails for something in the data, the page is stored record by record: the records the store
        refuses are quarantined, the rest committed."""
        try:
            self._store(decided, rejected, report, now, release=release, marks=marks)
            return
        except Exception as exc:
            if _store_down(exc) or len(decided) < 1:
                raise
            page_error = exc
        refused: Rejected = []
        for item in decided:
            try:
                self._store([item], [], report, now, release=release)
            except Exception as exc:
                if _store_down(exc):
                    raise
                refused.append(("store", RecordError(item.contact.id, failure(exc))))
        if len(refused) == len(decided) > 1:
            raise page_error  # every record refused: the store's problem, not the records'
        self._store([], rejected + refused, report, now, release=release, marks=marks)

    def _store(self, decided: list[Decided], rejected: Rejected, report: PassReport, now: datetime, *,
               release: bool, marks: Sequence[Mark] = ()) -> None:
        """Decisions, outbox rows and record snapshots in one transaction; the records that went through
        cleanly leave quarantine; the stream's `marks` move with them."""
        status = OutboxStatus.PENDING if self.mode == "enforce" else OutboxStatus.SHADOW
        with self.store.transaction() as c:
            for step, error in rejected:
                self.store.quarantine(c, self.crm, storable(error.record_id), step, storable(error.reason))
            fresh = [d for d in decided if d.row is not None]
            self.store.save_inputs(c, list({d.digest: {"hash": d.digest, "crm": self.crm, "record_id": d.contact.id,
                                                       "data": d.data} for d in fresh}.values()))
            ids_stored = self.store.add_decisions(c, [d.row for d in fresh if d.row is not None])
            for item, decision_id in zip(fresh, ids_stored, strict=True):
                item.decision_id = decision_id
            self.store.enqueue_many(c, self.crm, [row for d in decided for row in d.outbox_rows(self.crm, status)])
            self.store.save_records(c, [d.record_row(self.crm, self.definitions.content_hash, now) for d in decided])
            if release:
                self.store.release(c, self.crm, [d.contact.id for d in decided])
            for mark in marks:
                mark.apply(self.store, c, self.crm)
        report.counts["quarantined"] += len(rejected)
        report.counts["stored"] += len(fresh)

    def rollout(self, now: datetime) -> datetime | None:
        """The backlog cutoff: the configured date (its start, UTC), or when crmsync first decided a record
        of this CRM (noted the first time, unless in a dry run: then this pass's `now`); None: no backlog."""
        if self._rollout is not None or self.backlog_before == NO_BACKLOG:
            return self._rollout
        if isinstance(self.backlog_before, date):
            self._rollout = datetime(self.backlog_before.year, self.backlog_before.month, self.backlog_before.day,
                                     tzinfo=UTC)
            return self._rollout
        noted = self.store.cursor(self.crm, ROLLOUT_NOTE)
        if noted is None and not self.dry_run:
            with self.store.transaction() as c:
                self.store.set_cursor(c, self.crm, ROLLOUT_NOTE, now)
        self._rollout = noted or now
        return self._rollout

    def _changed_since_rollout(self, contact: Contact, now: datetime) -> bool:
        """With the rollout at crmsync's first pass: a record first seen with a change after it was not
        in that pass as it stood (it changed while or after the pass ran: e.g. a rep moved it into
        pipeline then), so it is judged as it is, never as the backlog. A configured date is taken as
        the admin's word and not checked against changes."""
        if self.backlog_before != FIRST_PASS or not isinstance(contact.updated_at, datetime):
            return False
        cutoff, changed = self.rollout(now), aware(contact.updated_at)
        return cutoff is not None and changed is not None and changed >= cutoff

    def _tasks(self, contact: Contact, decision: Decision, now: datetime) -> list[OwnerTask]:
        """Owner tasks, keyed so a situation gets one task however often it is seen: a revert by the
        change that caused it, a flagged reason by the reason text, an SLA by clock, state and due time,
        a skipped gate once per record (whichever stage or route the verdict names: a verdict whose
        stamp never landed, e.g. superseded by a person's edit, is judged again without a second task)."""
        tasks = []
        for action in decision.actions:
            if action.kind is not ActionKind.OPEN_TASK:
                continue
            episode = {"sql_blocked": str(contact.updated_at),
                       "dq_reason": decision.reason.value if decision.reason else ""}.get(action.topic, "")
            situation = action.topic if action.topic == "skipped_gate" else action.detail
            key = fingerprint([self.crm, contact.id, "task", situation, episode])
            tasks.append(OwnerTask(contact.id, str(contact.owner_id) if contact.owner_id else None,
                                   TASK_SUBJECTS.get(action.topic, "crmsync: follow up"), action.detail, key,
                                   due_at=now + TASK_DUE))
        return tasks


_IN_PIPELINE = frozenset({Stage.OPPORTUNITY.value, Stage.CUSTOMER.value})
SWEEP_WRITES = frozenset({"sla_state"})
"""What an SLA sweep writes: the clocks' state, which time alone changes. It decides from the inputs of
the last pull, which may predate a person's edit (and crmsync's own write), so a stage or lead status
it decided would be stale: those are left to the next pull, which reads what the record holds now."""


def _watched(prev: dict[str, Any] | None) -> bool:
    """crmsync saw the record get into pipeline: it stored it outside pipeline, or already gave a verdict
    that was not the backlog (e.g. a pass that died before its stamp landed). Never the backlog then,
    whatever the CRM's dates say."""
    if prev is None:
        return False
    verdict = prev["skipped_gate"]
    return prev["stage"] not in _IN_PIPELINE or (verdict is not None and f"{BACKLOG}:" not in verdict)


def _carry_lead_status(contact: Contact, prev: dict[str, Any] | None) -> None:
    """The status before the latest change, so a reverted SQL can put it back."""
    if prev is None:
        return
    if prev["lead_status"] != contact.lead_status and prev["lead_status"] != LeadStatus.QUALIFIED.value:
        contact.previous_lead_status = prev["lead_status"]
    else:
        contact.previous_lead_status = prev["previous_lead_status"]


def _seen(previous: dict[str, Any] | None, contact: Contact) -> bool:
    if previous is None or previous["modified_at"] is None or not isinstance(contact.updated_at, datetime):
        return False
    return aware(previous["modified_at"]) == aware(contact.updated_at)


def _store_down(exc: Exception) -> bool:
    """The store itself is unreachable or busy: no record is to blame, the pass fails and retries."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout)
