"""Objects read beside the contacts (deals: HubSpot deals, Salesforce Opportunities): kept, never decided,
each under its object type and linked to the contact-stream records it belongs to (`objects.contact_ids`,
and the same links as rows in `object_links`).

Object fields come loosely typed from a CRM, so every value is made storable here: text through
`sanitize.storable` (a lone surrogate or a NUL escaped) and cut to its column, an amount that is not a
finite number and a date outside years 1-9999 stored as NULL, the type-specific `fields` as JSON with
the same rules.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, exists, func, or_, select

from crmsync.model import LinkedObject, ObjectType
from crmsync.rules.values import moment
from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware, chunks

DATES = ("close_date", "created_at", "modified_at", "updated_at")
KEY = ("crm", "object_type", "object_id")


class Objects(StoreBase):
    def save_objects(self, c: Connection, crm: str, objects: list[LinkedObject], now: datetime, *,
                     object_type: ObjectType) -> list[str]:
        """Upsert objects of one type (one read again replaces what was kept, its contact links too). An
        object whose id is empty or longer than 64 characters is left out; their ids (storable, cut) are
        returned for the caller to quarantine."""
        refused = [_text(found.id, 64) or "" for found in objects if not storable_id(found.id)]
        rows = list({row["object_id"]: row for row in (_row(crm, object_type, found, now) for found in objects
                                                       if storable_id(found.id))}.values())
        if not rows:
            return refused
        statement = self.insert(t.objects)
        keys = {k: statement.excluded[k] for k in rows[0] if k not in KEY}
        c.execute(statement.on_conflict_do_update(index_elements=list(KEY), set_=keys), rows)
        self._unlink(c, crm, object_type, [row["object_id"] for row in rows])
        links = [{"crm": crm, "contact_id": contact_id, "object_type": object_type, "object_id": row["object_id"]}
                 for row in rows for contact_id in row["contact_ids"]]
        if links:
            c.execute(t.object_links.insert(), links)
        return refused

    def objects(self, crm: str | None = None, *, object_type: ObjectType) -> list[dict[str, Any]]:
        """The objects of one type kept (of one CRM, or all), by CRM and id."""
        query = select(t.objects).where(t.objects.c.object_type == object_type).order_by(
            t.objects.c.crm, t.objects.c.object_id)
        if crm:
            query = query.where(t.objects.c.crm == crm)
        with self.engine.connect() as c:
            return [_read(row) for row in c.execute(query).mappings()]

    def forget_objects(self, crm: str, ids: list[str], *, object_type: ObjectType) -> int:
        """Drop these objects (deleted in the CRM) and their links; how many were kept."""
        dropped = 0
        with self.transaction() as c:
            for chunk in chunks(list(dict.fromkeys(ids)), 500):
                self._unlink(c, crm, object_type, chunk)
                dropped += int(c.execute(t.objects.delete().where(
                    t.objects.c.crm == crm, t.objects.c.object_type == object_type,
                    t.objects.c.object_id.in_(chunk))).rowcount or 0)
        return dropped

    @staticmethod
    def _unlink(c: Connection, crm: str, object_type: ObjectType, object_ids: list[str]) -> None:
        link = t.object_links.c
        for chunk in chunks(object_ids, 500):
            c.execute(t.object_links.delete().where(link.crm == crm, link.object_type == object_type,
                                                    link.object_id.in_(chunk)))


def unlink_contact(c: Connection, crm: str, contact_id: str) -> int:
    """Take an erased contact-stream record out of the objects of every type it belonged to (the objects
    stay); how many links were dropped."""
    link, kept = t.object_links.c, t.objects.c
    named = c.execute(select(link.object_type, link.object_id).where(
        link.crm == crm, link.contact_id == contact_id)).all()
    for object_type, object_id in named:
        ids = c.execute(select(kept.contact_ids).where(kept.crm == crm, kept.object_type == object_type,
                                                       kept.object_id == object_id)).scalar()
        c.execute(t.objects.update().where(kept.crm == crm, kept.object_type == object_type,
                                           kept.object_id == object_id)
                  .values(contact_ids=[i for i in ids or [] if i != contact_id]))
    return int(c.execute(t.object_links.delete().where(link.crm == crm, link.contact_id == contact_id))
               .rowcount or 0)


def skipped_gate_deals(c: Connection) -> tuple[int, dict[str, float]]:
    """Open or won deals linked to at least one contact record whose `skipped_gate` verdict is not
    empty: how many, and their amounts summed per currency (never converted): by the deal's currency
    code, or "<crm> default" for a deal without one (the account's own currency, which differs by CRM)."""
    link, record, deal = t.object_links.c, t.records.c, t.objects.c
    skipped = exists().where(
        link.crm == deal.crm, link.object_type == deal.object_type, link.object_id == deal.object_id,
        record.crm == link.crm, record.object_type == ObjectType.CONTACT, record.record_id == link.contact_id,
        record.skipped_gate != "")
    currency = func.coalesce(deal.currency, deal.crm + " default")
    rows = c.execute(select(currency, func.count(), func.coalesce(func.sum(deal.amount), 0.0)).where(
        deal.object_type == ObjectType.DEAL, or_(~deal.is_closed, deal.is_won), skipped)
        .group_by(currency).order_by(currency)).all()
    return sum(int(n or 0) for _, n, _ in rows), {str(code): round(float(amount or 0.0), 2) for code, _, amount in rows}


def _row(crm: str, object_type: ObjectType, found: LinkedObject, now: datetime) -> dict[str, Any]:
    ids = [_text(i, 64) for i in found.contact_ids or () if storable_id(i)]  # a longer id names no record
    return {
        "crm": crm, "object_type": object_type, "object_id": _text(found.id, 64), "name": _text(found.name, 1000),
        "stage": _text(found.stage, 128), "pipeline": _text(found.pipeline, 128), "amount": _amount(found.amount),
        "currency": _text(found.currency, 16), "close_date": _when(found.close_date),
        "created_at": _when(found.created_at), "modified_at": _when(found.updated_at),
        "is_closed": bool(found.is_closed), "is_won": bool(found.is_won), "owner_id": _text(found.owner_id, 64),
        "contact_ids": list(dict.fromkeys(i for i in ids if i)), "fields": _json(found.fields or {}),
        "updated_at": now,
    }


def _read(row: Any) -> dict[str, Any]:
    out = {column.name: row[column.name] for column in t.objects.c}
    for key in DATES:
        out[key] = aware(out[key])
    return out


def storable_id(value: Any) -> bool:
    """Whether an object (or contact) id fits the store's key: present, 1 to 64 characters."""
    return value is not None and 0 < len(str(value)) <= 64


def _text(value: Any, limit: int) -> str | None:
    from crmsync.sync.sanitize import storable  # here: crmsync.sync imports the store

    if value is None or value == "":
        return None
    return storable(str(value))[:limit]


def _json(value: Any) -> Any:
    """A type-specific value as JSON every store keeps: text storable, a non-finite number None, keys
    text, anything else its text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_text(key, 1000) or "": _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return _text(value, 100_000) or ""


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip().replace(",", "") if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _when(value: Any) -> datetime | None:
    found = moment(value)
    if found is None:
        return None
    try:
        return found.astimezone(UTC)
    except OverflowError:  # no UTC time inside years 1-9999
        return None
