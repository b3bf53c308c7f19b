"""Values no store can keep, caught once where records enter the sync (both CRMs, every path).

A lone UTF-16 surrogate (JSON allows "\\ud800", UTF-8 does not), a NUL character (PostgreSQL text
refuses it), a number JSON cannot carry (1e309 reads as inf; nan; PostgreSQL's JSON refuses both)
and a date whose UTC time falls outside years 1-9999 (9999-12-31T23:59:59-01:00,
0001-01-01T00:00:00+01:00) make the record poisoned: it is quarantined with a reason naming the
field, and the pass goes on with the others. Reasons never quote a string's content (personal data).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from crmsync.model import Activity, Contact

_CONTACT_FIELDS = [name for name in Contact.__dataclass_fields__ if name != "id"]


def contact_problem(contact: Contact, activities: list[Activity]) -> str | None:
    """The first unstorable value of a record (its fields, then its activities), naming the field."""
    for name in _CONTACT_FIELDS:
        found = problem(name, getattr(contact, name))
        if found:
            return found
    for activity in activities:
        found = activity_problem(activity)
        if found:
            return found
    return None


def activity_problem(activity: Activity) -> str | None:
    for name in ("id", "kind", "occurred_at", "detail"):
        found = problem(f"activity {storable(str(activity.id))[:64]} {name}", getattr(activity, name))
        if found:
            return found
    return None


def problem(name: str, value: Any) -> str | None:
    """Why `value` (found at `name`) cannot be stored, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{name}: contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name}: contains a lone UTF-16 surrogate (not valid Unicode text)"
        if 10 <= len(value) <= 40 and value[:1].isdigit() and _out_of_range(value):
            return f"{name}: date {value!r} is outside the years 1-9999 in UTC"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"{name}: number {value!r} cannot be stored (not finite)"
    elif isinstance(value, datetime):
        if _utc_overflows(value):
            return f"{name}: date {value.isoformat()!r} is outside the years 1-9999 in UTC"
    elif isinstance(value, dict):
        for key, item in value.items():
            label = f"{name}.{storable(str(key))[:64]}"
            found = problem(label, key) or problem(label, item)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = problem(f"{name}[{index}]", item)
            if found:
                return found
    return None


def storable(text: str) -> str:
    """Text safe for any store and any log: surrogates and NUL escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _out_of_range(text: str) -> bool:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return _utc_overflows(parsed)


def _utc_overflows(moment: datetime) -> bool:
    if moment.tzinfo is None:
        return False
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return True
    return False


def failure(exc: BaseException, limit: int = 2000) -> str:
    """An exception as stored or logged text: its class and message, storable, bounded."""
    return storable(f"{exc.__class__.__name__}: {exc}")[:limit]
