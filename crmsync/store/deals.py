"""Deals (HubSpot deals, Salesforce Opportunities): kept, never decided; each linked to the contact-stream
records it belongs to (`deals.contact_ids`, and the same links as rows in `deal_contacts`).

Deal fields come loosely typed from a CRM, so every value is made storable here: text through
`sanitize.storable` (a lone surrogate or a NUL escaped) and cut to its column, an amount that is not a
finite number and a date outside years 1-9999 stored as NULL.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, exists, func, or_, select

from crmsync.model import Deal, ObjectType
from crmsync.rules.values import moment
from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware, chunks

DATES = ("close_date", "created_at", "modified_at", "updated_at")


class Deals(StoreBase):
    def save_objects(self, c: Connection, crm: str, deals: list[Deal], now: datetime, *,
                     object_type: ObjectType) -> list[str]:
        """Upsert deals (a deal read again replaces what was kept, its contact links too). A deal whose id
        is empty or longer than 64 characters is left out; their ids (storable, cut) are returned for
        the caller to quarantine."""
        _deals_only(object_type)
        refused = [_text(deal.id, 64) or "" for deal in deals if not storable_id(deal.id)]
        rows = list({row["deal_id"]: row for row in (_row(crm, deal, now) for deal in deals if storable_id(deal.id))}
                    .values())
        if not rows:
            return refused
        statement = self.insert(t.deals)
        keys = {k: statement.excluded[k] for k in rows[0] if k not in ("crm", "deal_id")}
        c.execute(statement.on_conflict_do_update(index_elements=["crm", "deal_id"], set_=keys), rows)
        self._unlink(c, crm, [row["deal_id"] for row in rows])
        links = [{"crm": crm, "contact_id": contact_id, "deal_id": row["deal_id"]}
                 for row in rows for contact_id in row["contact_ids"]]
        if links:
            c.execute(t.deal_contacts.insert(), links)
        return refused

    def deals(self, crm: str | None = None) -> list[dict[str, Any]]:
        query = select(t.deals).order_by(t.deals.c.crm, t.deals.c.deal_id)
        if crm:
            query = query.where(t.deals.c.crm == crm)
        with self.engine.connect() as c:
            return [_read(row) for row in c.execute(query).mappings()]

    def forget_objects(self, crm: str, ids: list[str], *, object_type: ObjectType) -> int:
        """Drop these deals (deleted in the CRM) and their links; how many were kept."""
        _deals_only(object_type)
        dropped = 0
        with self.transaction() as c:
            for chunk in chunks(list(dict.fromkeys(ids)), 500):
                self._unlink(c, crm, chunk)
                dropped += int(c.execute(t.deals.delete().where(
                    t.deals.c.crm == crm, t.deals.c.deal_id.in_(chunk))).rowcount or 0)
        return dropped

    @staticmethod
    def _unlink(c: Connection, crm: str, deal_ids: list[str]) -> None:
        for chunk in chunks(deal_ids, 500):
            c.execute(t.deal_contacts.delete().where(t.deal_contacts.c.crm == crm,
                                                     t.deal_contacts.c.deal_id.in_(chunk)))


def _deals_only(object_type: ObjectType) -> None:
    if object_type is not ObjectType.DEAL:
        raise ValueError(f"no table keeps objects of type {object_type!r}")


def unlink_contact(c: Connection, crm: str, contact_id: str) -> int:
    """Take an erased contact-stream record out of the deals it belonged to (the deals stay); how
    many links were dropped."""
    link = t.deal_contacts.c
    deal_ids = list(c.execute(select(link.deal_id).where(link.crm == crm, link.contact_id == contact_id)).scalars())
    for deal_id, ids in c.execute(select(t.deals.c.deal_id, t.deals.c.contact_ids).where(
            t.deals.c.crm == crm, t.deals.c.deal_id.in_(deal_ids))).all():
        c.execute(t.deals.update().where(t.deals.c.crm == crm, t.deals.c.deal_id == deal_id)
                  .values(contact_ids=[i for i in ids or [] if i != contact_id]))
    return int(c.execute(t.deal_contacts.delete().where(link.crm == crm, link.contact_id == contact_id))
               .rowcount or 0)


def skipped_gate_deals(c: Connection) -> tuple[int, dict[str, float]]:
    """Open or won deals linked to at least one contact record whose `skipped_gate` verdict is not
    empty: how many, and their amounts summed per currency (never converted): by the deal's currency
    code, or "<crm> default" for a deal without one (the account's own currency, which differs by CRM)."""
    link, record = t.deal_contacts.c, t.records.c
    skipped = exists().where(
        link.crm == t.deals.c.crm, link.deal_id == t.deals.c.deal_id, record.crm == link.crm,
        record.object_type == ObjectType.CONTACT, record.record_id == link.contact_id, record.skipped_gate != "")
    currency = func.coalesce(t.deals.c.currency, t.deals.c.crm + " default")
    rows = c.execute(select(currency, func.count(), func.coalesce(func.sum(t.deals.c.amount), 0.0)).where(
        or_(~t.deals.c.is_closed, t.deals.c.is_won), skipped).group_by(currency).order_by(currency)).all()
    return sum(int(n or 0) for _, n, _ in rows), {str(code): round(float(amount or 0.0), 2) for code, _, amount in rows}


def _row(crm: str, deal: Deal, now: datetime) -> dict[str, Any]:
    ids = [_text(i, 64) for i in deal.contact_ids or () if storable_id(i)]  # a longer id names no record
    return {
        "crm": crm, "deal_id": _text(deal.id, 64), "name": _text(deal.name, 1000), "stage": _text(deal.stage, 128),
        "pipeline": _text(deal.pipeline, 128), "amount": _amount(deal.amount), "currency": _text(deal.currency, 16),
        "close_date": _when(deal.close_date), "created_at": _when(deal.created_at),
        "modified_at": _when(deal.updated_at), "is_closed": bool(deal.is_closed), "is_won": bool(deal.is_won),
        "owner_id": _text(deal.owner_id, 64), "contact_ids": list(dict.fromkeys(i for i in ids if i)),
        "updated_at": now,
    }


def _read(row: Any) -> dict[str, Any]:
    out = {column.name: row[column.name] for column in t.deals.c}
    for key in DATES:
        out[key] = aware(out[key])
    return out


def storable_id(value: Any) -> bool:
    """Whether a deal (or contact) id fits the store's key: present, 1 to 64 characters."""
    return value is not None and 0 < len(str(value)) <= 64


def _text(value: Any, limit: int) -> str | None:
    from crmsync.sync.sanitize import storable  # here: crmsync.sync imports the store

    if value is None or value == "":
        return None
    return storable(str(value))[:limit]


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
