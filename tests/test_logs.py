"""Every line the daemon writes to stderr is one JSON object in the json log format."""

from __future__ import annotations

import json
import logging

import pytest

from crmsync.logs import configure


def test_the_schedulers_own_warnings_are_json_lines_like_crmsyncs(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "Daemon.sync" skipped: maximum number of running instances reached (1)')
    logging.getLogger("crmsync.daemon").info("daemon started")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    parsed = [json.loads(line) for line in lines]
    assert "skipped" in json.dumps(parsed[0]) and "daemon started" in json.dumps(parsed[1])
