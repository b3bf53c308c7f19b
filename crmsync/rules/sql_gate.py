"""The SQL gate: need, authority, timeline and budget must be documented, or SQL is refused."""

from __future__ import annotations

from datetime import date, timedelta

from crmsync.model import BANT_ITEMS, BantItem, Contact, SqlGate
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.timeline import decision_date
from crmsync.rules.values import preview, text


def judge_sql_gate(contact: Contact, reference: date, c: Compiled, *, requested: bool) -> SqlGate:
    bant = contact.bant if isinstance(contact.bant, dict) else {}
    items = tuple(_item(name, bant.get(name), reference, c) for name in BANT_ITEMS)
    return SqlGate(requested, all(i.documented for i in items), items)


def _item(name: str, value: object, reference: date, c: Compiled) -> BantItem:
    raw = text(value)
    shown = preview(value)
    if raw is None:
        return BantItem(name, False, shown, "empty")
    normal = norm(raw[:200])
    # `raw` is stripped and not empty; its first character settles most values without a scan
    if normal in c.placeholders or not (raw[0].isalnum() or any(ch.isalnum() for ch in raw[1:200])):
        return BantItem(name, False, shown, f"placeholder {preview(raw)!r} is not documentation")
    rules = c.loaded.definitions.sql_requirements
    if name == "timeline":
        return _timeline(shown, raw, reference, rules.timeline.max_days)
    minimum = getattr(rules, name).min_length
    if len(raw) < minimum:
        return BantItem(name, False, shown, f"too short ({len(raw)} characters, needs {minimum})")
    return BantItem(name, True, shown, "documented")


def _timeline(shown: str, raw: str, reference: date, max_days: int) -> BantItem:
    when = decision_date(raw[:500], reference)
    if when is None:
        return BantItem("timeline", False, shown, f"{preview(raw)!r} is not a date or horizon")
    if when < reference:
        return BantItem("timeline", False, shown, f"decision date {when} has passed")
    if when > reference + timedelta(days=max_days):
        return BantItem("timeline", False, shown, f"decision by {when} is beyond {max_days} days")
    return BantItem("timeline", True, shown, f"decision by {when}")
