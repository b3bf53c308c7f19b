"""A stream's window and state: the bounds a pass reads, a backfill's own cursor, and the marks
(checkpoint, or the cursor's new position) committed in the transaction of the page they belong to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection

from crmsync.store import Store, fingerprint
from crmsync.store.kinds import RunKind

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BACKFILL = "backfill:"
"""The prefix of a backfill's own cursors (`backfill_stream`)."""
DELETED_STREAM = "contacts:deleted"
"""Not a window's end: when the CRM's list of deleted records was last swept (crmsync.sync.erasure)."""
ROLLOUT_NOTE = "contacts:rollout"
"""Not a window's end: when crmsync first decided a record of the CRM, the default backlog cutoff
(`sync.pipeline_backlog_before`; noted once, never moved)."""
Page = TypeVar("Page")


@dataclass(frozen=True)
class Window:
    """[lower, upper) of one stream. `upper` is fixed when the pass starts; a backfill's is frozen in
    its cursor rows (`frozen`) the first time, and an unfinished one resumes after `resume`, or, when
    only its object streams were left to read (`records_done`), with them."""

    stream: str
    kind: RunKind
    lower: datetime
    upper: datetime
    resume: str | None = None
    frozen: bool = field(default=False, kw_only=True)
    records_done: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Mark:
    """A stream's state, committed with the page it belongs to: the checkpoint an unfinished window
    resumes after, or (`position`) the cursor of a window read to its end."""

    stream: str
    position: datetime | None = None
    checkpoint: str | None = None

    def apply(self, store: Store, c: Connection, crm: str) -> None:
        if self.position is not None:
            store.set_cursor(c, crm, self.stream, self.position)
        elif self.checkpoint:
            store.set_checkpoint(c, crm, self.stream, self.checkpoint)


def page_marks(stream: str, upper: datetime, resume_key: str | None, *, last: bool, backfill: bool) -> list[Mark]:
    """What a stream's page carries into its transaction: the cursor at the window's end on the last
    page; on the others, a backfill's checkpoint (a sync window is read again whole if cut short)."""
    if last:
        return [Mark(stream, position=upper)]
    return [Mark(stream, checkpoint=resume_key)] if backfill and resume_key else []


def with_last(pages: Iterable[Page]) -> Iterator[tuple[Page, bool]]:
    """Each page with whether it is the stream's last: one page is read ahead, so that the last one
    carries the stream's cursor into its transaction."""
    ahead = iter(pages)
    current = next(ahead, None)
    while current is not None:
        following = next(ahead, None)
        yield current, following is None
        current = following


def backfill_stream(crm: str, since: datetime, until: datetime | None) -> str:
    """A backfill's own cursor: short (it fits `cursors.stream` with the `:events` suffix or an object
    stream's, `:deals`) and the same
    for the same request, so a re-run finds and resumes it; an open window (no `until`) is one name
    whatever the time, its upper bound being frozen in the cursor row."""
    end = until.astimezone(UTC).isoformat() if until else "open"
    return BACKFILL + fingerprint([crm, since.astimezone(UTC).isoformat(), end])[:16]


def events_stream(stream: str) -> str:
    """The cursor of the activities the CRM only offers as a stream, beside a record stream's."""
    return f"{stream}:events"


def object_stream(stream: str, name: str) -> str:
    """An object stream's cursor beside a record stream's (`ObjectStream.name`): `deals` beside the live
    `contacts`, and `<backfill cursor>:deals` beside a backfill's, so a backfill never moves a live
    object cursor."""
    return name if stream == "contacts" else f"{stream}:{name}"


def live(stream: str) -> bool:
    """Whether a cursor ends the window of a stream the daemon keeps reading (records, events, activity
    streams, object streams), so that its distance from now is that stream's lag: not a backfill's (its window
    is fixed) nor the daily sweep's note (`DELETED_STREAM`) nor the rollout's (`ROLLOUT_NOTE`)."""
    return not stream.startswith(BACKFILL) and stream not in (DELETED_STREAM, ROLLOUT_NOTE)
