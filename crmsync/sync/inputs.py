"""A decision's inputs as stored data, and back: what explain and backtest re-decide from."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any

from crmsync.model import Activity, Contact

_CONTACT_FIELDS = [f.name for f in fields(Contact) if f.name != "snapshot"]


def contact_inputs(contact: Contact, activities: list[Activity], *,
                   backlog_before: datetime | None = None) -> dict[str, Any]:
    """JSON-able inputs of `decide`, in a stable order (activities by date then id); the backlog cutoff
    the decision was given, when there was one (`backlog_cutoff` reads it back)."""
    ordered = sorted(activities, key=lambda a: (str(_plain(a.occurred_at)), str(a.id)))
    data: dict[str, Any] = {
        "contact": {name: _plain(getattr(contact, name)) for name in _CONTACT_FIELDS},
        "activities": [{"id": _plain(a.id), "kind": _plain(a.kind), "occurred_at": _plain(a.occurred_at),
                        "detail": _plain(a.detail), "by_owner": bool(a.by_owner)} for a in ordered],
    }
    if backlog_before is not None:
        data["backlog_before"] = backlog_before.isoformat()
    return data


def backlog_cutoff(data: dict[str, Any]) -> datetime | None:
    """The backlog cutoff stored with a decision's inputs (None: the decision had none)."""
    value = data.get("backlog_before")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def restore(data: dict[str, Any]) -> tuple[Contact, list[Activity]]:
    contact = Contact(**{k: v for k, v in data["contact"].items() if k in _CONTACT_FIELDS})
    activities = [Activity(a["id"], a["kind"], a["occurred_at"], a["detail"], a["by_owner"])
                  for a in data["activities"]]
    return contact, activities


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
