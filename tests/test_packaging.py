"""The default definitions ship inside the package: the commands that need no file work from any directory."""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.definitions import DEFAULT_DEFINITIONS, load_definitions
from tests.builders import ROOT


def test_the_packaged_definitions_are_the_admin_example() -> None:
    assert DEFAULT_DEFINITIONS.is_relative_to(ROOT / "crmsync")
    assert DEFAULT_DEFINITIONS.read_bytes() == (ROOT / "config" / "definitions.yaml").read_bytes()


def test_the_packaged_definitions_are_declared_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    pattern = str(DEFAULT_DEFINITIONS.relative_to(ROOT / "crmsync").parent / "*.yaml")
    assert f'"{pattern}"' in pyproject


def test_the_default_is_used_and_named_when_no_file_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing called config/ here
    result = CliRunner().invoke(app, ["doctor"], env={"CRMSYNC_DEFINITIONS": None})
    assert f"definitions: {DEFAULT_DEFINITIONS} (the default shipped with crmsync" in result.stderr
    assert f"{DEFAULT_DEFINITIONS} version {load_definitions(DEFAULT_DEFINITIONS).version}" in result.stdout


def test_sandbox_serve_uses_the_definitions_named(tmp_path: Path) -> None:
    """From a directory with no config/: the sandbox installs the properties the named definitions map."""
    custom = tmp_path / "acme.yaml"
    custom.write_text(DEFAULT_DEFINITIONS.read_text().replace("stage: crmsync_stage", "stage: acme_stage"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env["CRMSYNC_DEFINITIONS"] = str(custom)
    server = subprocess.Popen([sys.executable, "-m", "crmsync", "sandbox", "serve", "--port", "0", "--contacts", "5"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(server, deadline=time.monotonic() + 30)
        assert "HubSpot sandbox on http://" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        request = urllib.request.Request(f"{url}/crm/v3/properties/contacts/acme_stage",
                                         headers={"Authorization": "Bearer any-token"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["name"] == "acme_stage"
    finally:
        server.terminate()
        server.wait(timeout=10)
        assert server.stderr is not None and server.stdout is not None
        server.stderr.close()
        server.stdout.close()


def _first_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                return process.stdout.readline()
            if process.poll() is not None:
                raise AssertionError(f"the sandbox exited: {process.stderr.read() if process.stderr else ''}")
    raise AssertionError("the sandbox printed nothing before the deadline")


def test_the_daemon_names_its_definitions_when_it_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from crmsync.daemon import Daemon
    from crmsync.store import Store
    from tests.hubspot_fixtures import DEFS, connector, hubspot
    from tests.test_daemon import settings

    caplog.set_level(logging.INFO, logger="crmsync.daemon")
    with hubspot(5) as (_, url):
        store = Store.open(f"sqlite:///{tmp_path / 'd.db'}")
        daemon = Daemon(settings(url, store.url, interval=3600), DEFS, store, {"hubspot": connector(url)})
        daemon.start()
        daemon.stop()
        store.close()
    started = [r for r in caplog.records if r.message == "daemon started"]
    assert started and started[0].definitions == DEFS.path and started[0].definitions_version == DEFS.version
