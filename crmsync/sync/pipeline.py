"""One pass for one CRM: pull -> decide -> diff -> outbox -> write -> audit -> cursor.

`SyncPass` orchestrates the steps: `pull.py` reads the connector's streams (window, cursors, events,
activity streams, deals), `decide.py` decides each page and commits it in one transaction
(decisions, snapshots, outbox rows and the stream's state), `outbox.py` sends the outbox in CRM-sized
batches, acknowledged record by record. crmsync's own writes come back on the next pull and settle:
the decision on written values changes nothing, so nothing more is written.

Every pass (sync, backfill, webhook, SLA sweep) opens a run row and closes it here: ok, failed (any
exception), or interrupted (stopped, lease lost, KeyboardInterrupt, SystemExit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from crmsync.connectors.base import Connector
from crmsync.definitions import LoadedDefinitions
from crmsync.errors import LeaseLost
from crmsync.store import Store
from crmsync.store.kinds import RunKind, RunOutcome
from crmsync.sync import erasure
from crmsync.sync.decide import FIRST_PASS, Decider
from crmsync.sync.lease import Lease
from crmsync.sync.outbox import RECHECK_AFTER, Outbox
from crmsync.sync.pull import Pull
from crmsync.sync.reads import ReadTimes
from crmsync.sync.report import PassReport
from crmsync.sync.sanitize import failure
from crmsync.sync.window import backfill_stream, events_stream

__all__ = ["PassReport", "SyncPass", "backfill_stream", "events_stream"]
log = logging.getLogger("crmsync.sync")
LEASED_KINDS = [RunKind.SYNC, RunKind.WEBHOOK, RunKind.SLA_SWEEP]
"""The passes the daemon runs only while it holds the CRM's lease (one at a time: the CRM's lock)."""


class SyncPass:
    def __init__(self, store: Store, connector: Connector, definitions: LoadedDefinitions, *,
                 mode: str = "enforce", overlap: timedelta = timedelta(minutes=5), dry_run: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 progress: Callable[[PassReport], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False, lease: Lease | None = None,
                 backlog_before: date | str = FIRST_PASS,
                 recheck_after: timedelta = timedelta(seconds=RECHECK_AFTER),
                 timer: Callable[[], float] = time.monotonic) -> None:
        """`clock` is the decisions' time (SLA clocks, windows); `timer` measures how long ago a record was
        read: a write whose record was read `recheck_after` or longer before its first send is re-read."""
        self.store = store
        self.connector = connector
        self.mode = mode
        self.dry_run = dry_run
        self.clock = clock
        self.progress = progress
        self.should_stop = should_stop
        self.lease = lease
        self.crm = connector.name
        self.started = datetime.now(UTC)  # outbox rows older than this were decided by an earlier pass
        self.decider = Decider(store, connector, definitions, mode=mode, dry_run=dry_run, clock=clock,
                               backlog_before=backlog_before, reads=ReadTimes(timer))
        self.pull = Pull(store, connector, self.decider, overlap=overlap, dry_run=dry_run, clock=clock)
        self.outbox = Outbox(store, connector, self.decider, started=self.started, lease=lease,
                             recheck_after=recheck_after.total_seconds())

    # --- the passes -----------------------------------------------------------------------------

    def run(self, *, kind: RunKind = RunKind.SYNC, since: datetime | None = None, until: datetime | None = None,
            stream: str = "contacts") -> PassReport:
        """`sync`: the connector's streams from their cursors (minus the overlap) to now. `backfill`:
        exactly [since, until) of the record stream on a cursor of its own (`backfill_stream`), the
        live cursor untouched; an unfinished one resumes (`Pull.window`). A stream's cursor moves in
        the transaction of its last page."""
        window = self.pull.window(kind, stream, since, until)
        report = PassReport(self.crm, kind, self.mode, (window.lower, window.upper), dry_run=self.dry_run)
        with self._recorded(report):
            if kind == RunKind.SYNC:  # a first sync notes the rollout at its window's end: what changes later is new
                self.decider.rollout(window.upper)
            self.pull.freeze(window)
            if self._writes_enabled:
                # Finish what an interrupted pass left in the outbox first (re-read: a person's later edit
                # wins); a revert cut between its "clear" and its "set" is completed, not re-decided.
                self.flush(report)
            # The connector's streams, each on its own cursor, moved with its last page: the records
            # (with the activities only offered as a stream), then, where the CRM has them, its activity
            # streams and its object streams (the contacts their objects name that this pass did not decide re-decided).
            decided = self.pull.contacts(report, window, between=lambda: self._between(report))
            if decided is not None:
                self.pull.activity_changes(report, window, decided)
                if not self.pull.objects(report, window, decided, between=lambda: self._between(report)):
                    decided = None
            if self._writes_enabled:
                self.flush(report)
            if decided is None:  # stopped between pages: the rest of the window is read again next time
                report.outcome = RunOutcome.INTERRUPTED
                return report
            if kind == RunKind.SYNC and not self.dry_run:
                report.counts["erased"] += erasure.sweep(self.store, self.connector, window.upper)
            report.outcome = RunOutcome.OK
        return report

    def react(self, record_ids: list[str]) -> PassReport:
        """Records the CRM just told us about (a webhook): read them in one batch and send them
        through the same decide / store / outbox path as a pull."""
        now = self.clock()
        report = PassReport(self.crm, RunKind.WEBHOOK, self.mode, (now, now), dry_run=self.dry_run)
        with self._recorded(report):
            self.pull.read(record_ids, report)
            if self._writes_enabled:
                self.flush(report)
            report.outcome = RunOutcome.OK
        return report

    def sweep(self) -> PassReport:
        """Move SLA clocks without waiting for records to change: re-decide, from their stored inputs,
        the records whose clocks change state by now, and write what changed (state, owner tasks)."""
        now = self.clock()
        report = PassReport(self.crm, RunKind.SLA_SWEEP, self.mode, (now, now), dry_run=self.dry_run)
        with self._recorded(report):
            self.decider.due(report)
            if self._writes_enabled:
                self.flush(report)
            report.outcome = RunOutcome.OK
        return report

    def flush(self, report: PassReport | None = None, *, only_full: bool = False) -> None:
        """Send pending writes, then pending tasks; each record acknowledged on its own. During a pass
        (`only_full`) only when there is enough for full CRM batches: fewer, fuller calls. Writes left
        by an earlier pass are checked against the CRM first; each batch is sent only while this
        replica holds the stream's lease; so are, before their first send, writes whose record was read
        `recheck_after` or longer ago."""
        report = report or PassReport(self.crm, RunKind.FLUSH, self.mode, (self.started, self.started),
                                      dry_run=self.dry_run)
        self.outbox.flush(report, only_full=only_full)

    # --- the run row ----------------------------------------------------------------------------

    @contextmanager
    def _recorded(self, report: PassReport) -> Iterator[None]:
        """The pass's run row (none for a dry run): opened, after closing the rows a killed process left
        running, and always closed with the counts so far: `report.outcome`, or failed / interrupted
        with the error when the pass raises."""
        if not self.dry_run:
            if self.lease is not None:  # with the lease no other leased pass of this CRM runs
                self.store.close_stale_runs(self.crm, LEASED_KINDS if report.kind == RunKind.SYNC else [report.kind])
            else:
                self.store.close_stale_runs(self.crm, [report.kind], unless_leased=f"sync:{self.crm}")
            report.run_id = self.store.start_run(self.crm, report.kind, self.mode, report.window)
        try:
            yield
        except BaseException as exc:
            failed = isinstance(exc, Exception) and not isinstance(exc, LeaseLost)
            report.outcome = RunOutcome.FAILED if failed else RunOutcome.INTERRUPTED
            self._close(report, failure(exc))
            raise
        self._close(report)
        log.info("pass done", extra={"crm": self.crm, "kind": report.kind, "outcome": report.outcome,
                                     "counts": report.counts})

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

    # --- between pages --------------------------------------------------------------------------

    def _between(self, report: PassReport) -> bool:
        """After each page: flush what fills CRM batches, report progress; whether to stop."""
        if self._writes_enabled:
            self.flush(report, only_full=True)
        if self.progress:
            self.progress(report)
        return self.should_stop()

    @property
    def _writes_enabled(self) -> bool:
        return self.mode == "enforce" and not self.dry_run
