"""Reading a CRM's streams into the decide step, each on its own cursor.

The contacts stream (or a backfill's own cursor) is read from its cursor minus an overlap (late index
updates are caught, records seen twice are harmless) to the bound fixed when the pass starts; the
activities a CRM offers only as a stream (`EventStream`) are stored first, on `<stream>:events`; where activities
change without their record (`ActivityStreams`), each activity stream is read on its own cursor; where
the CRM reads objects beside its contacts (`ObjectStreams`: deals), each object stream is read on its own
cursor, stored, and the contacts its objects name re-decided. Every page is committed with its stream's
state: a backfill's checkpoint with each page, the cursor with the stream's last page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from crmsync.connectors.base import (
    ActivityStreams,
    Connector,
    EventStream,
    ObjectPage,
    ObjectStream,
    ObjectStreams,
    PulledPage,
)
from crmsync.errors import StreamRefused
from crmsync.model import Activity
from crmsync.store import Store
from crmsync.store.kinds import RunKind
from crmsync.store.objects import storable_id
from crmsync.sync import erasure
from crmsync.sync.decide import Decider
from crmsync.sync.report import PassReport
from crmsync.sync.sanitize import activity_problem, storable
from crmsync.sync.window import EPOCH, Mark, Window, events_stream, object_stream, page_marks, with_last

log = logging.getLogger("crmsync.sync")


class Pull:
    def __init__(self, store: Store, connector: Connector, decider: Decider, *, overlap: timedelta,
                 dry_run: bool, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.connector = connector
        self.decider = decider
        self.overlap = overlap
        self.dry_run = dry_run
        self.clock = clock
        self.crm = connector.name

    def window(self, kind: RunKind, stream: str, since: datetime | None, until: datetime | None) -> Window:
        """`sync`: from the stream's cursor (minus the overlap) to now. `backfill`: exactly [since, until)
        on a cursor of its own (`backfill_stream`), so the live cursor does not move; without `until`,
        the upper bound is frozen the first time and an unfinished backfill resumes after its last
        committed page. A backfill is unfinished until its object streams are read too (`freeze`): one
        whose records were read to their end resumes on the frozen upper bound of the object streams
        left, its records done."""
        frozen, resume, records_done = None, None, False
        if kind == RunKind.BACKFILL:
            frozen, resume = self.store.unfinished(self.crm, stream)
            for beside in self._object_cursors(stream) if frozen is None else []:
                frozen, _ = self.store.unfinished(self.crm, beside)
                if frozen is not None:
                    records_done = True
                    break
        upper = until or frozen or self.clock()
        cursor = self.store.cursor(self.crm, stream)
        lower = since if since is not None else (cursor - self.overlap if cursor else EPOCH)
        return Window(stream, kind, lower, upper, resume, frozen=frozen is not None, records_done=records_done)

    def freeze(self, window: Window) -> None:
        """A backfill's window is fixed before its first page, in the cursor row of each of its streams
        not frozen yet: the records' and each object stream's sub-cursor (`object_stream`). Each stays
        frozen until that stream is read to its end, so the backfill resumes with the same end until its
        objects are read too (one resuming its object streams freezes no finished one again)."""
        if window.kind != RunKind.BACKFILL or self.dry_run:
            return
        streams = [] if window.frozen else [window.stream]
        if not window.records_done:
            streams += [cursor for cursor in self._object_cursors(window.stream)
                        if self.store.unfinished(self.crm, cursor)[0] is None]
        if streams:
            with self.store.transaction() as c:
                for stream in streams:
                    self.store.set_cursor(c, self.crm, stream, window.lower, upper_bound=window.upper)

    def _object_cursors(self, stream: str) -> list[str]:
        """The cursors of the connector's object streams beside a record stream (none without any)."""
        if not isinstance(self.connector, ObjectStreams):
            return []
        return [object_stream(stream, spec.name) for spec in self.connector.object_streams]

    def contacts(self, report: PassReport, window: Window, *, between: Callable[[], bool]) -> set[str] | None:
        """The record stream, page by page; the ids decided, or None when `between` (called after each
        page) said to stop. The cursor moves with the last page: a window stopped before it is read
        again next time (a backfill's after its checkpoint). A backfill whose records were read to their
        end before (`records_done`) reads none."""
        if window.records_done:
            return set()
        unstored = {} if window.resume else self.events(report, window)
        backfill = window.kind == RunKind.BACKFILL
        decided: set[str] = set()
        pages = self.connector.pull_changed(window.lower, window.upper, after_key=window.resume, backfill=backfill)
        read = False
        for (page, asked), last in with_last(self.decider.reads.timed(pages)):
            read = True
            marks = page_marks(window.stream, window.upper, page.resume_key, last=last, backfill=backfill)
            decided |= self.page(page, report, unstored, skip_seen=window.kind == RunKind.SYNC and not unstored,
                                 marks=marks, read_at=asked)
            if between():
                return None
        if not read:  # an empty window: no page to carry the cursor
            self._mark([Mark(window.stream, position=window.upper)])
        return decided

    def read(self, record_ids: list[str], report: PassReport, *, marks: list[Mark] | None = None) -> set[str]:
        """Read these records in one batch and decide them as a page (their read time: before the call)."""
        asked = self.decider.reads.timer()
        return self.page(self.connector.read(record_ids), report, {}, marks=marks, read_at=asked)

    def page(self, page: PulledPage, report: PassReport, unstored: dict[str, list[Activity]], *,
             skip_seen: bool = False, marks: list[Mark] | None = None, read_at: float | None = None) -> set[str]:
        """Decide a pulled page (its unmappable records quarantined) with its stream's `marks`; erase the
        records it found deleted; the ids decided."""
        report.counts["pulled"] += len(page.contacts)
        decided = self.decider.page(page.contacts, [("read", e) for e in page.errors], report, unstored,
                                    skip_seen=skip_seen, marks=marks or [], read_at=read_at)
        if page.deleted and not self.dry_run:
            report.counts["erased"] += erasure.erase(self.store, self.crm, page.deleted, "pull")
        return decided

    def events(self, report: PassReport, window: Window) -> dict[str, list[Activity]]:
        """Activities the CRM only offers as a stream (`EventStream`: HubSpot page views, forms) are kept
        locally, on the cursor `<stream>:events` (moved once they are stored). A dry run stores nothing:
        it returns them, by record, for its decisions. A CRM without the capability has no such cursor."""
        connector = self.connector
        if not isinstance(connector, EventStream):
            return {}
        events = events_stream(window.stream)
        cursor = self.store.cursor(self.crm, events)
        since = window.lower
        if window.kind == RunKind.SYNC and cursor is not None:
            since = min(since, cursor - self.overlap)
        found = connector.events(since, window.upper)
        if self.dry_run:
            unstored: dict[str, list[Activity]] = {}
            for record_id, activity in found:
                unstored.setdefault(record_id, []).append(activity)
                report.counts["events"] += 1
            return unstored
        report.counts["events"] += self.store.add_activities(self.crm, self._storable(found))
        self._mark([Mark(events, position=window.upper)])
        return {}

    def activity_changes(self, report: PassReport, window: Window, decided: set[str]) -> None:
        """Where activities change without their record (Salesforce), each activity stream is read on
        a cursor of its own (`<stream>:<name>`, from its cursor minus the overlap to the pass's upper
        bound) every `activity_interval`, and the records it names that this pass did not decide are read
        and sent through the same decide / store / outbox path (added to `decided`), the streams' cursors
        moving with that page. None on a pass that is not due; a first pass reads no stream (it read every record with
        its activities) but starts their cursors."""
        connector = self.connector
        if window.kind != RunKind.SYNC or not isinstance(connector, ActivityStreams):
            return
        names = {f"{window.stream}:{name}": name for name in connector.activity_streams}
        cursors = {full: self.store.cursor(self.crm, full) for full in names}
        known = [c for c in cursors.values() if c is not None]
        if known and window.upper - min(known) < connector.activity_interval:
            return
        since = {names[full]: cursor - self.overlap if cursor is not None else window.lower
                 for full, cursor in cursors.items()}
        touched = connector.touched({name: start for name, start in since.items() if start > EPOCH}, window.upper)
        fresh = sorted(touched - decided)
        marks = [Mark(full, position=window.upper) for full in names] if not self.dry_run else []
        if fresh:
            decided |= self.read(fresh, report, marks=marks)
        else:
            self._mark(marks)

    def objects(self, report: PassReport, window: Window, decided: set[str], *, between: Callable[[], bool]) -> bool:
        """The connector's object streams (`ObjectStreams`), one after the other, but those the CRM refused
        (`refused`); False when `between` (called after each page) said to stop."""
        connector = self.connector
        if not isinstance(connector, ObjectStreams):
            return True
        return all(self._objects(spec, report, window, decided, between=between)
                   for spec in connector.object_streams if spec.name not in connector.refused)

    def _objects(self, spec: ObjectStream, report: PassReport, window: Window, decided: set[str], *,
                 between: Callable[[], bool]) -> bool:
        """One object stream, page by page, on its own cursor (`object_stream`: from its cursor minus the
        overlap to the pass's upper bound, when due: every `spec.every`; a backfill reads exactly its
        window on a cursor of its own, resuming after its checkpoint, and skips a stream it finished
        before). For each page, the contacts its objects name that this pass did not decide yet are read
        and sent through the same decide / store / outbox path (`spec.redecide`: a deal created for an
        undocumented MQL gets its skipped gate flagged), then the objects are stored in one transaction
        with the page's unmappable or refused objects quarantined under `spec.object_type` and, with the
        last page, the stream's cursor. False when `between` (called after each page) said to stop."""
        stream = object_stream(window.stream, spec.name)
        backfill = window.kind == RunKind.BACKFILL
        lower, upper, resume = window.lower, window.upper, None
        if backfill:  # to the end frozen in its cursor row (`freeze`), after its checkpoint
            frozen, resume = self.store.unfinished(self.crm, stream)
            if frozen is None and window.records_done:  # read to its end before the backfill stopped
                return True
            upper = frozen or window.upper
        else:
            cursor = self.store.cursor(self.crm, stream)
            if cursor is not None and window.upper - cursor < spec.every:
                return True
            lower = cursor - self.overlap if cursor else EPOCH
        read = False
        try:
            for page, last in with_last(spec.pull(lower, upper, resume)):
                read = True
                self._object_page(spec, page, report, decided,
                                  page_marks(stream, upper, page.resume_key, last=last, backfill=backfill))
                if between():
                    return False
        except StreamRefused as refused:
            self._refuse(spec, refused, report)
            return True
        if not read:  # an empty window: no page to carry the cursor
            self._mark([Mark(stream, position=upper)])
        return True

    def _refuse(self, spec: ObjectStream, refused: StreamRefused, report: PassReport) -> None:
        """A stream the CRM refuses (the token lacks its scope, the user Read on its object) is off for the
        life of the connector (`refused`: no call for it in later passes, nor in the daily sweep; a restart
        tries again, as an admin who just granted it expects), said once with the object and the fix, and
        counted (`refused`). Its cursor stays where it was, so once granted the stream reads what it missed
        (a backfill's stays unfinished, and a run of the same backfill reads it)."""
        assert isinstance(self.connector, ObjectStreams)
        self.connector.refused.add(spec.name)
        report.counts["refused"] = report.counts.get("refused", 0) + 1
        meanwhile = f"; {spec.meanwhile}" if spec.meanwhile else ""
        log.warning(f"{refused.crm} {spec.object_type} stream off: {refused.missing} ({refused.fix}{meanwhile})",
                    extra={"crm": self.crm, "stream": spec.name, "object_type": spec.object_type,
                           "object": refused.crm_object, "error": str(refused)[:300]})

    def _object_page(self, spec: ObjectStream, page: ObjectPage, report: PassReport, decided: set[str],
                     marks: list[Mark]) -> None:
        """The contacts a page's objects name that this pass did not decide, re-decided; then the objects
        stored (a dry run stores nothing), with the quarantine and the stream's marks."""
        report.counts[spec.name] = report.counts.get(spec.name, 0) + len(page.objects)
        named = sorted({i for found in page.objects for i in found.contact_ids or () if i and i not in decided})
        if named and spec.redecide:
            decided |= self.read(named, report)
        if self.dry_run:
            report.counts["quarantined"] += len(page.errors)
            return
        kind = spec.object_type
        if page.deleted:  # before the page's marks: a crash in between reads the page again
            self.store.forget_objects(self.crm, page.deleted, object_type=kind)
        with self.store.transaction() as c:
            refused = self.store.save_objects(c, self.crm, page.objects, self.clock(), object_type=kind)
            rejected = [("read", e.record_id, e.reason) for e in page.errors]
            rejected += [("store", object_id, f"the {kind} id is empty or longer than 64 characters")
                         for object_id in refused]
            for step, object_id, reason in rejected:
                self.store.quarantine(c, self.crm, storable(object_id), step, storable(reason), object_type=kind)
            kept = [str(found.id) for found in page.objects if storable_id(found.id)]
            self.store.release(c, self.crm, kept, object_type=kind)
            for mark in marks:
                mark.apply(self.store, c, self.crm)
        report.counts["quarantined"] += len(rejected)

    def _mark(self, marks: list[Mark]) -> None:
        """Marks with no page to carry them (an empty window, a stream with nothing to re-decide)."""
        if not marks or self.dry_run:
            return
        with self.store.transaction() as c:
            for mark in marks:
                mark.apply(self.store, c, self.crm)

    def _storable(self, found: Iterator[tuple[str, Activity]]) -> Iterator[tuple[str, Activity]]:
        """Streamed activities the store can keep; one it cannot is left out and logged, by id only."""
        for record_id, activity in found:
            poisoned = activity_problem(activity)
            if poisoned:
                log.warning("activity left out: it cannot be stored", extra={"crm": self.crm, "reason": poisoned})
                continue
            yield record_id, activity
