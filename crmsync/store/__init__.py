"""The store: cursors, runs, record snapshots, decisions (the audit trail), the outbox, quarantine, leases,
webhook event ids.

SQLite by default (a file, WAL), PostgreSQL in production. The schema is brought to the latest
Alembic revision when the store is opened. All state the sync keeps lives here, so a restart
after a crash carries on from what was committed.

`Store` is composed of one part per concern (a mixin over the shared engine, `base.StoreBase`):
cursors, runs, records (with inputs and decisions), objects (deals), governance, privacy, activities, outbox,
quarantine, webhook events, leases (with quota pauses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError as AlembicError
from sqlalchemy import create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from crmsync.errors import ConfigError
from crmsync.redact import safe_url
from crmsync.store.activities import Activities
from crmsync.store.base import aware, fingerprint
from crmsync.store.cursors import Cursors
from crmsync.store.governance import Governance
from crmsync.store.leases import Leases
from crmsync.store.objects import Objects
from crmsync.store.outbox import Outbox
from crmsync.store.privacy import PERSONAL, Privacy
from crmsync.store.quarantine import Quarantine
from crmsync.store.records import Records
from crmsync.store.runs import Runs
from crmsync.store.webhook_events import WebhookEvents

__all__ = ["MIGRATIONS", "PERSONAL", "Store", "aware", "fingerprint"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Store(Cursors, Runs, Records, Objects, Governance, Privacy, Activities, Outbox, Quarantine, WebhookEvents,
            Leases):
    def __init__(self, url: str) -> None:
        self.url = _driver_url(url)
        try:
            self.engine = create_engine(self.url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(safe_url(f"CRMSYNC_DATABASE_URL is not usable ({exc.__class__.__name__}: {exc})")
                              .splitlines()[0]) from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema to the latest revision."""
        store = cls(url)
        store.migrate()
        return store

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                if self.dialect == "sqlite":
                    # pysqlite opens no transaction for DDL: each CREATE TABLE was committed on its own,
                    # and a start killed mid-upgrade left a store no later start could open. One
                    # transaction, taken as the writer (a second replica starting waits, then finds head).
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (SQLAlchemyError, AlembicError) as exc:
            # An unreachable or unusable database at start-up is configuration: one line, exit 2.
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise ConfigError(safe_url(f"cannot open the store at {self.url}: {reason}")[:500]) from None

    def close(self) -> None:
        self.engine.dispose()


def _driver_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()

