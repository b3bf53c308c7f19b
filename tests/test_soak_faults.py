"""The soak (scripts/soak.py) at a small size: the daemon against both sandboxes through the fault
proxy (a seeded mix of every network fault kind on reads, writes, task creates and login), with the
sandboxes' own faults, three SIGKILL restarts and human edits during the run, ends as the fault-free
run of the same seed: no difference, no task twice, no traceback, no person's edit lost."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.builders import ROOT

_spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
assert _spec is not None and _spec.loader is not None
soak: Any = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak  # dataclasses look their module up there
_spec.loader.exec_module(soak)

SIZE = {"leads": 60, "seed": 2026, "seconds": 20, "quiet": 2.0}
KILLS = 3


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The fault-free run of the seed, shared by both stores (the CRM end state does not depend on it)."""
    workdir = tmp_path_factory.mktemp("fault-free")
    return soak.one_run(**SIZE, kills=0, database_url=f"sqlite:///{workdir / 'calm.db'}", workdir=workdir,
                        chaotic=False)


def test_the_soak_under_every_network_fault_and_kill_ends_as_the_fault_free_run(
        database_url: str, fault_free: Any, tmp_path: Path) -> None:
    @contextmanager
    def databases(label: str) -> Iterator[str]:
        yield database_url

    lines: list[str] = []
    found = soak.soak(**SIZE, kills=KILLS, workdir=tmp_path, databases=databases, calm=fault_free,
                      twice_creates=False, read_rate=0.06, write_rate=0.3)
    soak.report(found, lines.append)
    summary = "\n".join(lines)
    assert found.chaos.kills == KILLS, summary
    kinds = {key.split()[-1] for key in found.chaos.faults}
    assert len(kinds & set(soak.KINDS)) >= 5, summary  # a real mix of network faults, not one kind
    assert {key.split()[1] for key in found.chaos.faults} >= {"read", "write", "sandbox"}, summary
    assert found.differences == [], summary
    assert found.duplicates == [], summary
    assert found.tracebacks == [], summary
    assert found.lost_edits == [], summary
    assert found.calm.state["task_keys"], "the fault-free run made owner tasks: the task comparison means something"
