"""Hostile definitions and settings end start-up within seconds: exit 2, one line, no traceback.

The inputs that could block a process or exhaust its memory (/dev/zero, a FIFO) run the real CLI in
a process killed after `STARTUP_LIMIT` (`subprocess.TimeoutExpired` fails the test): the module entry
point's exit code and one line, and no hang can pass; the limit leaves room for the interpreter's
start-up on a loaded machine. The other settings, store and file-size cases can only cost time: they
run the same entry point (`crmsync.cli.main`) in-process on a thread given `STARTUP_LIMIT`
(`run_within`: a hang or an exponential expansion fails the test), without a second of interpreter
start-up each. The definitions cases are timed in-process against the 10 s the issue asks for (they
take milliseconds); once that has ended in time, their CLI run (exit code and one line) is
in-process too.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crmsync.definitions import load_definitions
from crmsync.errors import DefinitionsError
from tests.test_cli import run as run_in_process
from tests.test_cli import run_process as run
from tests.test_cli import run_within

DEADLINE = 10.0
STARTUP_LIMIT = 30.0


def one_line_exit_2(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr[-500:]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().count("\n") == 0, result.stderr[:500]
    assert len(result.stderr) < 600
    for text in expected:
        assert text in result.stderr, result.stderr


def _laughs(path: Path) -> Path:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 600  # the 494-byte bomb, give or take
    return path


def _write(text: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_text(text)
        return path
    return make


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path
    return make


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _huge(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MB of nothing, costs no disk
    return path


BAD_DEFINITIONS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "billion laughs": (_laughs, "anchors and aliases"),
    "recursive alias": (_write("a: &a [*a]\n"), "anchors and aliases"),
    "10,000-deep nesting": (_write("a: " + "[" * 10_000 + "]" * 10_000 + "\n"), "nested more than"),
    "300-deep block nesting": (_write("".join(" " * i + "k:\n" for i in range(300))), "nested more than"),
    "100,000-digit integer": (_write("governance: " + "9" * 100_000 + "\n"), "more than the 65536 allowed"),
    "40,000-digit integer": (_write("governance: " + "9" * 40_000 + "\n"), "value cannot be read"),
    "a list as a key": (_write("? [a]\n: b\n"), "a key must be a plain word"),
    "not UTF-8": (_bytes(b"governance: \xff\xfe\n"), "not UTF-8"),
    "a FIFO": (_fifo, "is a FIFO"),
    "a directory": (lambda p: p.parent, "is a directory"),
    "a huge file": (_huge, "more than the"),
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
def test_hostile_definitions_end_in_seconds_with_one_line(case: str, tmp_path: Path) -> None:
    make, expected = BAD_DEFINITIONS[case]
    path = make(tmp_path / "bad.yaml")
    started = time.monotonic()
    with pytest.raises(DefinitionsError, match=re.escape(expected)):
        load_definitions(path)
    assert time.monotonic() - started < DEADLINE
    one_line_exit_2(run_in_process("definitions", "validate", str(path)), str(path), expected)


def test_the_largest_file_allowed_is_parsed_within_the_deadline(tmp_path: Path) -> None:
    """64 KB of dense YAML (the worst the size cap lets through) is read and refused in time."""
    path = tmp_path / "dense.yaml"
    path.write_text("a:\n" + "- {b: 1, c: [x, y]}\n" * 3200)
    assert 60_000 < path.stat().st_size <= 65536
    result = run_within(STARTUP_LIMIT, "definitions", "validate", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "a: unknown key" in result.stderr


def test_dev_zero_as_definitions() -> None:
    one_line_exit_2(run("definitions", "validate", "/dev/zero", timeout=STARTUP_LIMIT), "character device")


def test_dev_zero_and_fifo_as_the_settings_file(tmp_path: Path) -> None:
    one_line_exit_2(run("--config", "/dev/zero", "doctor", timeout=STARTUP_LIMIT), "character device")
    one_line_exit_2(run("--config", str(_fifo(tmp_path / "fifo")), "doctor", timeout=STARTUP_LIMIT), "FIFO")


@pytest.mark.parametrize("text, expected", [
    ("a = " + "[" * 10_000 + "]" * 10_000 + "\n", "nested too deeply"),
    ("[http]\nport = " + "9" * 40_000 + "\n", "digits"),
    ("x" * 70_000, "more than the"),
])
def test_hostile_settings_files(text: str, expected: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    one_line_exit_2(run_within(STARTUP_LIMIT, "--config", str(config), "doctor"), expected)


@pytest.mark.parametrize("variable, value, expected", [
    ("CRMSYNC_HUBSPOT__BASE_URL", "http://", "the URL has no host"),
    ("CRMSYNC_HUBSPOT__BASE_URL", "http://[::1", "not a valid URL"),
    ("CRMSYNC_SALESFORCE__INSTANCE_URL", "http://example.com:99999", "not a valid URL (Port out of range"),
    ("CRMSYNC_HUBSPOT__WEBHOOK_URL", "https://exa mple.com/hooks", "spaces or control characters"),
    ("CRMSYNC_HUBSPOT__ACCESS_TOKEN", "", "is empty"),
    ("CRMSYNC_SALESFORCE__CLIENT_SECRET", "  ", "is empty"),
    ("CRMSYNC_SENTRY_DSN", "https://o1.ingest.sentry.io/1", "not a Sentry DSN"),
    ("CRMSYNC_HTTP__HOST", "not a host!", "expected an IP address or a host name"),
    ("CRMSYNC_HTTP__PORT", "9" * 100_000, "(100002 characters)"),
    ("CRMSYNC_HTTP", "[" * 10_000 + "]" * 10_000, "nested too deeply"),
])
def test_bad_settings_fail_at_start_up(variable: str, value: str, expected: str) -> None:
    result = run_within(STARTUP_LIMIT, "doctor", env={variable: value})
    one_line_exit_2(result, expected)
    if "SENTRY" in variable:
        assert value not in result.stderr  # a DSN carries its key


@pytest.mark.parametrize("url, expected", [
    ("postgresql://crmsync:hunter2@127.0.0.1:1/nowhere", "cannot open the store at postgresql"),
    ("nonsense://crmsync:hunter2@host/x", "CRMSYNC_DATABASE_URL is not usable"),
    ("sqlite:////nonexistent-directory/crmsync.db", "cannot open the store"),
])
def test_store_errors_are_one_line_exit_2_without_the_password(url: str, expected: str) -> None:
    result = run_within(STARTUP_LIMIT, "status", env={"CRMSYNC_DATABASE_URL": url})
    one_line_exit_2(result, expected)
    assert "hunter2" not in result.stderr
