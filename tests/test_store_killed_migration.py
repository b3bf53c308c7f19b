"""A process killed (SIGKILL) in the middle of the store's first migration: the next start opens the
store and finishes the schema (the daemon's first start is one the soak may kill, scripts/soak.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from crmsync.store import Store
from crmsync.store.schema import metadata
from tests.builders import ROOT

# The child kills itself, with SIGKILL, right after the store's third CREATE TABLE: a deterministic point
# in the middle of the upgrade (no timing involved).
KILLED_MIDWAY = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from crmsync.store import Store

created = []

@event.listens_for(Engine, "after_cursor_execute")
def after(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created.append(statement)
        if len(created) == 3:
            os.kill(os.getpid(), signal.SIGKILL)

Store.open(sys.argv[1])
"""


def test_a_store_whose_first_migration_was_killed_midway_opens_with_the_whole_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crmsync.db'}"
    child = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, url], cwd=ROOT, capture_output=True, timeout=60)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    store = Store.open(url)  # raised "table cursors already exists" when the tables came one by one
    try:
        tables = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
        assert tables == set(metadata.tables)
    finally:
        store.close()
