"""What both connectors do the same way; each CRM module keeps only its own wire details.

- `ConnectorCore`: the state every call goes through (the retry policy, the API budget governor, the
  call count and the metrics hook; the object streams the CRM refused) and the two ends of one attempt:
  `_answered` (a well-formed answer: counted, its rate-limit figures given to the governor) and `_failed`
  (anything else: counted, then the error table's verdict, calls.py). Each CRM's `_attempt` makes the call
  and describes its answer.
- `ConnectorCore._deleted_objects`: the object streams' lists of deleted objects, but the refused streams'.
- `chunks`: lists cut to a call's size (batch inputs, IN lists).
- `follow`: a paged read, each page naming the next.
- `mapped`: pulled records converted, the ones that cannot be as RecordErrors (to quarantine).
- `write_back`: what a decision changes on a contact, with the values it replaces.
- `ConnectorCore._send_batch`: one write batch retried as a unit through `Resend` (a retry rechecks first).
- `ConnectorCore._create_tasks`: idempotent task creation: per chunk, look up the keys that exist, create
  the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from crmsync.connectors import calls
from crmsync.connectors.base import Fence, ObjectStream, Recheck, Resend
from crmsync.connectors.governor import Governor
from crmsync.connectors.retry import RetryPolicy
from crmsync.errors import CrmsyncError, RecordError
from crmsync.model import Contact, ObjectType, OwnerTask, WriteBack, WriteResult

T = TypeVar("T")
P = TypeVar("P")


class ConnectorCore:
    """The call-side state both connectors share. The daemon replaces `retry`, sets `on_call` (metrics)
    and `governor.sleep`; tests read `calls` and `governor.waited`."""

    def __init__(self, retry: RetryPolicy | None, api_share: float) -> None:
        self.retry = retry or RetryPolicy()
        self.calls = 0
        self.on_call: Callable[[str, int | str], None] | None = None
        self.governor = Governor(api_share, sleep=self.retry.sleep)
        self.refused: set[str] = set()
        """The object streams the CRM refused (`StreamRefused`), by name: off for the life of this connector."""

    def _deleted_objects(self, streams: tuple[ObjectStream, ...]) -> Iterator[tuple[ObjectType, list[str]]]:
        """The deleted-object lists of these object streams (`ObjectStream.deleted`), page by page with their
        object type, leaving out the streams without one and those the CRM refused."""
        for stream in streams:
            if stream.deleted is not None and stream.name not in self.refused:
                for ids in stream.deleted():
                    yield stream.object_type, ids

    def _observe(self, what: str, status: int | str) -> None:
        if self.on_call is not None:
            self.on_call(what, status)

    def _answered(self, what: str, status: int, limit: int | None = None, remaining: int | None = None,
                  window_seconds: float | None = None) -> None:
        """A well-formed answer: counted, and the CRM's budget figures (when it gave any) to the governor."""
        self._observe(what, status)
        self.governor.observe(limit, remaining, window_seconds)

    def _failed(self, answer: calls.Answer, failure: Exception | None) -> CrmsyncError:
        """Any other answer: counted, then the error the table gives (to raise). An exception that is
        neither a CRM answer nor a network fault is a bug: it is raised itself, with its traceback."""
        self._observe(answer.what, answer.status or "error")
        if failure is not None and not calls.is_known(answer):
            raise failure
        return calls.classify(answer)

    def _send_batch(self, writes: list[WriteBack], recheck: Recheck | None, send: Callable[[list[WriteBack]], Any],
                    results: Callable[[list[str], Any], list[WriteResult]],
                    fence: Fence | None = None) -> list[WriteResult]:
        """One write batch, retried as a unit: each try is fenced, then `send`s (one attempt) what
        `Resend` still has to send, a retry asking `recheck` first. `results` reads the answer for the
        ids sent; the writes the recheck left out are superseded."""
        batch = Resend(writes, recheck, fence)

        def attempt() -> Any:
            todo = batch.next()
            return send(todo) if todo else None

        answer = self.retry.run(attempt)
        sent = [w.record_id for w in batch.sending]
        return batch.superseded() + (results(sent, answer) if sent else [])

    def _create_tasks(self, tasks: list[OwnerTask], size: int, existing: Callable[[list[str]], set[str]],
                      create: Callable[[list[OwnerTask]], list[WriteResult]],
                      fence: Fence | None = None) -> list[WriteResult]:
        """Owner tasks created once each, `size` a chunk; one result per task, in order; `fence` is
        called before each create call.

        The retried unit is a chunk: `existing` (one attempt) says which of its keys the CRM has now, and
        `create` (one attempt) creates the others, a result per task. A retry after a lost answer (reset,
        timeout, empty or cut-short body) finds the tasks that answer was about and does not create them
        again; a task created just before a crash is not created again when the outbox is replayed."""
        results: list[WriteResult] = []
        for chunk in chunks(tasks, size):
            outcome = self.retry.run(lambda chunk=chunk: _create_missing(chunk, existing, create, fence))  # type: ignore[misc]
            results += [outcome[t.key] for t in chunk]
        return results


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def follow(first: P, more: Callable[[str], P], cursor: Callable[[P], str | None]) -> Iterator[P]:
    """A paged read: `first`, then each page the one before names (`cursor`: its next-page cursor, or None
    at the end), read with `more`."""
    page = first
    while True:
        yield page
        after = cursor(page)
        if not after:
            return
        page = more(after)


def mapped(records: list[Any], convert: Callable[[Any], T]) -> tuple[list[T], list[RecordError]]:
    """Records converted; the ones that cannot be are RecordErrors (quarantined), the others go on."""
    done: list[T] = []
    errors: list[RecordError] = []
    for record in records:
        try:
            done.append(convert(record))
        except RecordError as exc:
            errors.append(exc)
    return done, errors


def write_back(contact: Contact, changed: dict[str, str]) -> WriteBack | None:
    """The write of `changed` (CRM names and values, from the mapping's `changes`) to this contact, with
    the values it replaces; None when nothing changes."""
    if not changed:
        return None
    return WriteBack(contact.id, changed, {k: contact.snapshot.get(k, "") for k in changed})


def _create_missing(chunk: list[OwnerTask], existing: Callable[[list[str]], set[str]],
                    create: Callable[[list[OwnerTask]], list[WriteResult]],
                    fence: Fence | None = None) -> dict[str, WriteResult]:
    found = existing([t.key for t in chunk])
    outcome = {t.key: WriteResult(t.record_id, True) for t in chunk if t.key in found}
    todo = [t for t in chunk if t.key not in found]
    if todo:
        if fence is not None:
            fence()
        outcome.update(zip([t.key for t in todo], create(todo), strict=True))
    return outcome
