"""Shared fixtures: the default definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def _postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL for one test, dropped afterwards."""
    import uuid

    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # the server is down or unreachable
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({exc.__class__.__name__}); "
                    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    name = f"crmsync_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store on both backends: a SQLite file, and a fresh database on the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crmsync.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


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
