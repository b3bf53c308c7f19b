"""What every part of the store shares: the engine, transactions, the dialect-aware INSERT, and the
small helpers (fingerprint, aware, chunks)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_
from sqlalchemy.dialects import postgresql, sqlite

from crmsync.model import ObjectType

CONTACT = ObjectType.CONTACT
"""The default object type of every method that takes a record id (contact callers pass nothing)."""


def fingerprint(value: Any) -> str:
    """A stable hash of JSON-able data (sorted keys), used for inputs, snapshots and idempotency keys."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; everything stored is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most `size` (IN lists and multi-row statements stay under the drivers' limits)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def of(table: Table, crm: str, object_type: ObjectType) -> ColumnElement[bool]:
    """The rows of one CRM and object type in a table keyed by (crm, object_type, record_id)."""
    return and_(table.c.crm == crm, table.c.object_type == object_type)


def typed(rows: list[dict[str, Any]], object_type: ObjectType) -> list[dict[str, Any]]:
    """Rows for a table keyed by object type, of this type."""
    return [{**row, "object_type": object_type} for row in rows]


def new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class StoreBase:
    """The engine the parts of `Store` share (each part is a mixin over it)."""

    engine: Engine
    dialect: str

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def insert(self, table: Any) -> Any:
        """INSERT that understands ON CONFLICT on both SQLite and PostgreSQL."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)
