"""What both connectors do the same way; each CRM module keeps only its own wire details.

- `ConnectorCore`: the state every call goes through (the retry policy, the API budget governor, the
  call count and the metrics hook) and the two ends of one attempt: `_answered` (a well-formed answer:
  counted, its rate-limit figures given to the governor) and `_failed` (anything else: counted, then
  the error table's verdict, calls.py). Each CRM's `_attempt` makes the call and describes its answer.
- `chunks`: lists cut to a call's size (batch inputs, IN lists).
- `mapped`: pulled records converted, the ones that cannot be as RecordErrors (to quarantine).
- `write_back`: what a decision changes on a contact, with the values it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from crmsync.connectors import calls
from crmsync.connectors.governor import Governor
from crmsync.connectors.retry import RetryPolicy
from crmsync.errors import CrmsyncError, RecordError
from crmsync.model import Contact, WriteBack

T = TypeVar("T")


class ConnectorCore:
    """The call-side state both connectors share. The daemon replaces `retry`, sets `on_call` (metrics)
    and `governor.sleep`; tests read `calls` and `governor.waited`."""

    def __init__(self, retry: RetryPolicy | None, api_share: float) -> None:
        self.retry = retry or RetryPolicy()
        self.calls = 0
        self.on_call: Callable[[str, int | str], None] | None = None
        self.governor = Governor(api_share, sleep=self.retry.sleep)

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


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
