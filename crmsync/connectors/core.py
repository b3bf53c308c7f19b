"""What both connectors do the same way; each CRM module keeps only its own wire details.

- `chunks`: lists cut to a call's size (batch inputs, IN lists).
- `mapped`: pulled records converted, the ones that cannot be as RecordErrors (to quarantine).
- `write_back`: what a decision changes on a contact, with the values it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from crmsync.errors import RecordError
from crmsync.model import Contact, WriteBack

T = TypeVar("T")


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
