"""Shared fixtures: the default definitions."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from crmsync.definitions import LoadedDefinitions, load_definitions
from tests.builders import DEFAULT_DEFINITIONS, NIGHTLY

# Every property test's default, loaded here so that it is the same whichever test modules a worker
# imports (a module loading its own profile changed it for every test collected after it): Hypothesis'
# 100 examples in CI, 1,000 with CRMSYNC_TEST_SCALE=nightly; no deadline and no too-slow check, since
# a shared machine's load is no bug. A test that sets max_examples itself sizes it with `scaled`.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("nightly" if NIGHTLY else "ci")


@pytest.fixture(scope="session")
def definitions() -> LoadedDefinitions:
    return load_definitions(DEFAULT_DEFINITIONS)


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# Every database the tests make is named crmsync_test_HOST_PID_..., HOST a digest of this machine's name and
# PID the xdist worker (or pytest) that made it, so that what a killed run left behind can be told from
# what a run going on now on the same server uses: see `_drop_leftovers`.
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
PREFIX = f"crmsync_test_{HOST}_"


def _admin() -> Any:
    try:
        import psycopg

        return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # the server is down or unreachable
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc.__class__.__name__}); "
                    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_leftovers(admin: Any) -> None:
    """Drop the databases a run on this machine left when it was killed before its clean-up (their maker's
    process is gone). Names are unique, so leftovers never collide with a new run; this keeps them from
    piling up. A database of a run going on now (its process alive) is left alone."""
    import psycopg

    pattern = re.compile(re.escape(PREFIX) + r"(\d+)_")
    for (name,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'crmsync\\_test\\_%'"):
        found = pattern.match(name)
        if found and not _alive(int(found.group(1))):
            with contextlib.suppress(psycopg.Error):  # another worker dropping it at the same moment
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated to head once per worker, which each test's database is copied from: `CREATE
    DATABASE x TEMPLATE t` instead of a new database migrated again. Per test (create, Store.open, drop;
    PostgreSQL 15, a cluster of its own): 0.02 s of CPU in pytest against 0.08-0.09 s, and 0.11-0.32 s in
    PostgreSQL against 0.13-0.38 s, since copying the catalogs (the WAL_LOG strategy, 15's default) is
    most of what creating any database costs. PostgreSQL refuses to copy a
    database another session is connected to (https://www.postgresql.org/docs/15/manage-ag-templatedbs.html),
    so the migration's connections are closed and no connection is allowed to it afterwards."""
    admin = _admin()
    _drop_leftovers(admin)
    name = f"{PREFIX}{os.getpid()}_template_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        from crmsync.store import Store

        Store.open(f"postgresql://postgres@127.0.0.1:5432/{name}").close()
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to head once per worker, which each test's store is a copy of: copying the
    file and opening it costs 0.012 s of CPU, migrating a new file 0.068 s. Closed before it is copied, so
    its write-ahead log is checkpointed into the file and removed (https://www.sqlite.org/wal.html)."""
    from crmsync.store import Store

    path = tmp_path_factory.mktemp("template") / "crmsync.db"
    Store.open(f"sqlite:///{path}").close()
    return path


def _postgres_database(template: str | None = None) -> Iterator[str]:
    """A database of its own on the local PostgreSQL for one test, dropped afterwards: a copy of
    `template` (the schema at head), or with None an empty one (for the tests of the migrations)."""
    admin = _admin()
    name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store on both backends: a SQLite file, and a database of its own on the local PostgreSQL,
    copied from `postgres_template` (already at head: `Store.open` finds nothing to migrate)."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "crmsync.db")
        yield f"sqlite:///{tmp_path / 'crmsync.db'}"
    else:
        yield from _postgres_database(request.getfixturevalue("postgres_template"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both backends with nothing in them, for the tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crmsync.db'}"
    else:
        yield from _postgres_database()


# A test whose PostgreSQL variant exercised no store path another PostgreSQL test does not: an end-to-end
# behaviour of the engine or a connector, which SQLite shows as well. Each use says, in one comment line,
# why SQLite suffices and which PostgreSQL test covers the store path.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    yield from _postgres_database(postgres_template)


# Files whose tests mostly wait (the soak, kill trials, slow connections, two daemons), longest first.
# Under `--dist worksteal` (the README's command) each worker starts with an equal, contiguous share
# of the run order, and an idle worker steals from the end of another's share. So these tests are
# dealt out to the heads of the shares, one at a time in turn: every worker starts on some of them at
# once, and none is left waiting at the end of a share. (Sorted to the front as one block, they all
# landed on the first worker, one after another, under both worksteal and the default `load`.)
FIRST = ("test_soak_faults.py", "test_resilience.py", "test_http_port.py", "test_daemon.py", "test_fencing.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    waiting = sorted((item for item in items if item.path.name in FIRST),
                     key=lambda item: FIRST.index(item.path.name))  # stable: file order kept within
    rest = [item for item in items if item.path.name not in FIRST]
    ordered: list[pytest.Item] = []
    for w in range(workers):
        share = (len(items) - len(ordered)) // (workers - w)  # as worksteal splits the run at the start
        head = waiting[w::workers]
        ordered += head + rest[:max(0, share - len(head))]
        rest = rest[max(0, share - len(head)):]
    items[:] = ordered + rest
