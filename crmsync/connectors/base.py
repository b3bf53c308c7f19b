"""What the sync needs from a CRM connector; each CRM module implements it on its client library.

`Connector` is what every CRM has. What only some CRMs have is a capability of its own, a
runtime-checkable protocol the pass checks with `isinstance` (a CRM without one implements nothing
for it): `EventStream` (activities offered only as a stream), `DeletedList` (a list of deleted
records, by object type), `ActivityStreams` (activities that change without their record) and
`ObjectStreams` (objects read beside the contacts and linked to them: deals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from crmsync.errors import RecordError
from crmsync.model import Activity, Check, Contact, LinkedObject, ObjectType, OwnerTask, WriteBack, WriteResult


@dataclass
class PulledPage:
    """One page of a pull: the contacts that mapped, and the ones that did not (to quarantine)."""

    contacts: list[Contact] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    resume_key: str | None = None
    """Where a pull of the same window can resume after this page (opaque to all but the connector)."""
    deleted: list[str] = field(default_factory=list)
    """Records the pull found deleted in the CRM (Salesforce's queryAll window): to erase."""


Recheck = Callable[[list[WriteBack]], list[WriteBack]]
"""Called before a write batch is sent AGAIN (the earlier attempt may have landed with its answer lost):
the writes still to send, without those a person has changed since the decision. The writes it
leaves out get a failed, retriable result marked `SUPERSEDED`; the pipeline re-decides them."""
SUPERSEDED = "superseded: a person changed the record after the decision"
Fence = Callable[[], None]
"""Called before every write call a connector makes (each batch's first send, each retry, the second
call of a two-step write such as HubSpot's clear-then-set, each half of a batch split after a refusal):
raises (LeaseLost) when this replica may no longer write, and nothing more is sent."""


class Resend:
    """One write batch across its attempts: each is fenced first (this replica must still hold the
    lease); the first sends every write; each retry first asks `recheck` which are still to send, since
    the attempt before may have landed with its answer lost and a person may have edited a record since
    (their edit wins)."""

    def __init__(self, writes: list[WriteBack], recheck: Recheck | None, fence: Fence | None = None) -> None:
        self.writes = writes
        self.sending = writes
        self.recheck = recheck
        self.fence = fence
        self.tries = 0

    def next(self) -> list[WriteBack]:
        if self.fence is not None and self.sending:
            self.fence()
        if self.tries and self.recheck is not None and self.sending:
            self.sending = self.recheck(self.sending)
        self.tries += 1
        return self.sending

    def superseded(self) -> list[WriteResult]:
        kept = {w.record_id for w in self.sending}
        return [WriteResult(w.record_id, False, SUPERSEDED, retriable=True)
                for w in self.writes if w.record_id not in kept]


class Connector(Protocol):
    name: str
    calls: int
    write_batch: int
    """Records per write call: the pipeline's `fence` checks its lease before each one."""

    def pull_changed(self, since: datetime, until: datetime, after_key: str | None = None, *,
                     backfill: bool = False) -> Iterator[PulledPage]: ...

    def read(self, contact_ids: list[str]) -> PulledPage: ...

    def activities(self, contact_ids: list[str]) -> dict[str, list[Activity]]: ...

    def changes(self, contact: Contact, writes: dict[str, str]) -> WriteBack | None: ...

    def write(self, writes: list[WriteBack], *, recheck: Recheck | None = None,
              fence: Fence | None = None) -> list[WriteResult]: ...

    def create_tasks(self, tasks: list[OwnerTask], *, fence: Fence | None = None) -> list[WriteResult]: ...

    def setup(self) -> list[str]: ...

    def doctor(self) -> list[Check]: ...


@runtime_checkable
class EventStream(Protocol):
    """A CRM that offers some activities only as a stream for all records, not per record (HubSpot's
    events API: page views, form submissions): the pass keeps them in the store, on the cursor
    `<stream>:events`. Without it, every activity comes with `activities`."""

    def events(self, since: datetime, until: datetime) -> Iterator[tuple[str, Activity]]:
        """(record id, activity) for the activities that occurred in (since, until]."""
        ...


@runtime_checkable
class DeletedList(Protocol):
    """A CRM that lists its deleted records apart from any window (HubSpot: archived contacts, and the
    archived objects of each object stream that has a `deleted` list, which its search never returns): once
    a day the pass erases the contacts the store holds and drops the objects it keeps (crmsync.sync.erasure).
    A CRM whose pulls find their deleted records themselves (Salesforce's queryAll windows,
    `PulledPage.deleted`, `ObjectPage.deleted`) does not have it."""

    def deleted(self) -> Iterator[tuple[ObjectType, list[str]]]:
        """Pages of ids the CRM lists as deleted, each with the object type it lists."""
        ...


@runtime_checkable
class ActivityStreams(Protocol):
    """A CRM whose activity records change without their record changing (Salesforce): each stream is
    read by its own cursor, and the records it names are re-decided."""

    activity_streams: tuple[str, ...]
    activity_interval: timedelta
    """How often the streams are read (zero: every pass)."""

    def touched(self, since: dict[str, datetime], until: datetime) -> set[str]:
        """The records named by rows of the streams in `since` (each from its own moment) changed
        before `until`."""
        ...


@dataclass
class ObjectPage:
    """One page of an object stream: the objects that mapped, the ones that did not (to quarantine under
    the stream's object type), where to resume, and objects the pull found deleted."""

    objects: list[LinkedObject] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    resume_key: str | None = None
    deleted: list[str] = field(default_factory=list)


PullObjects = Callable[[datetime, datetime, str | None], Iterator[ObjectPage]]
"""(since, until, after_key): the objects created or changed in [since, until), in pages (any order: the
cursor moves a whole window at a time); `after_key` resumes after a page's `resume_key`. Raises
`StreamRefused` when the CRM refuses the object (a scope, a permission): the stream is turned off."""

ListDeleted = Callable[[], Iterator[list[str]]]
"""Pages of the ids of every object of a type the CRM lists as deleted, whatever their date (HubSpot: its
archived list), for the daily sweep (`DeletedList`)."""


@dataclass(frozen=True)
class ObjectStream:
    """One object type a CRM reads beside its contacts: stored under `object_type` on the cursor `name`
    (beside the live `contacts`; `<backfill cursor>:<name>` beside a backfill's), linked to the contacts
    its objects name, which are re-decided when `redecide`; read every `every` (zero: every pass). Where
    the CRM lists deleted objects apart from its pulls, `deleted` lists them for the daily sweep. A pull the
    CRM refuses (`StreamRefused`) turns the stream off for the life of the connector, said once with what
    to grant and what is judged `meanwhile`."""

    object_type: ObjectType
    name: str
    pull: PullObjects
    redecide: bool = True
    every: timedelta = timedelta(0)
    deleted: ListDeleted | None = None
    meanwhile: str = ""
    """What the rules judge from while the stream is off ("pipeline is judged from contacts meanwhile")."""


@runtime_checkable
class ObjectStreams(Protocol):
    """A CRM that reads objects beside its contacts (HubSpot deals, Salesforce Opportunities), each
    stream on its own cursor (crmsync.sync.pull `Pull.objects`). `refused`: the names of the streams the
    CRM refused, off until the connector is made again (a restart tries them again: the grant may have
    come); kept by the connector core."""

    refused: set[str]

    @property
    def object_streams(self) -> tuple[ObjectStream, ...]: ...
