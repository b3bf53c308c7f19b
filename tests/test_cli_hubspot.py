"""`crmsync sandbox serve`, `setup` and `doctor` as users run them, against a real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from tests.builders import ROOT
from tests.hubspot_fixtures import TOKEN, hubspot
from tests.test_cli import run


def hubspot_env(url: str) -> dict[str, str]:
    return {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url}


def test_setup_twice_then_doctor_passes() -> None:
    with hubspot(0, crmsync_properties=False) as (app, url):
        failing = run("doctor", env=hubspot_env(url))
        assert failing.returncode == 1
        assert "FAIL hubspot properties" in failing.stdout and "crmsync setup" in failing.stdout
        first = run("setup", env=hubspot_env(url))
        assert first.returncode == 0, first.stderr
        assert "hubspot: created group crmsync, crmsync_stage" in first.stdout
        second = run("setup", env=hubspot_env(url))
        assert second.stdout.strip() == "hubspot: nothing to create"
        passing = run("doctor", "--json", env=hubspot_env(url))
        assert passing.returncode == 0, passing.stdout
        report = json.loads(passing.stdout)
        assert report["ok"] is True and TOKEN not in passing.stdout
        assert "crmsync_bant_budget" in app.portal.properties["contacts"]


def test_doctor_reports_a_revoked_token() -> None:
    with hubspot(0) as (_app, url):
        result = run("doctor", env={**hubspot_env(url), "CRMSYNC_HUBSPOT__ACCESS_TOKEN": "pat-revoked"})
        assert result.returncode == 1
        assert "FAIL hubspot token" in result.stdout and "HTTP 401" in result.stdout


def test_setup_without_a_crm_is_a_configuration_error() -> None:
    result = run("setup")
    assert result.returncode == 2 and "no CRM is configured" in result.stderr


def test_sandbox_serve_answers_like_hubspot() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    process = subprocess.Popen([sys.executable, "-m", "crmsync", "sandbox", "serve", "--port", "0", "--contacts", "25",
                                "--token", "t0k"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        request = urllib.request.Request(url + "/crm/v3/objects/contacts?limit=2",
                                         headers={"Authorization": "Bearer t0k"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert len(body["results"]) == 2 and body["paging"]["next"]["after"] == "2"
        with urllib.request.urlopen(url + "/__sandbox/counts", timeout=10) as response:
            assert json.loads(response.read())["calls"] == {"objects.list": 1}
    finally:
        process.terminate()
        process.wait(timeout=10)
