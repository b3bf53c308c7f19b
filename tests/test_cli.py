"""The CLI as users run it: real exit codes and output, in-process (`run`) where a process adds
nothing, in a real process (`run_process`) where it does (the entry point, the working directory)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from typer.testing import CliRunner

from crmsync.cli import main
from tests.builders import DEFAULT_DEFINITIONS, ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`crmsync ARGS` through the console entry point (`crmsync.cli.main`: its exit codes and one-line
    errors), in this process, with only the given CRMSYNC_* variables set."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CRMSYNC_")}
    overrides.update(env or {})
    logger = logging.getLogger("crmsync")
    saved = (logger.handlers[:], logger.level, logger.propagate)  # the CLI configures logging for itself
    argv = sys.argv
    code: int | str | None = 0
    with CliRunner().isolation(env=overrides) as (stdout, stderr, _):
        sys.argv = ["crmsync", *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = argv
            logger.handlers[:], logger.level, logger.propagate = saved
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["crmsync", *args], returncode, out, err)


def run_within(limit: float, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`run` on a thread given `limit` seconds: a CLI run that hangs or takes exponential time fails the
    test instead of hanging it (the thread is left behind; the test has failed). For inputs that can
    only cost time; what could exhaust memory or block the process (/dev/zero, a FIFO) is `run_process`."""
    done: list[subprocess.CompletedProcess[str]] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            done.append(run(*args, env=env))
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True, name=f"crmsync {' '.join(args)[:40]}")
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"crmsync {' '.join(args)[:200]} still running after {limit} s"
    if errors:
        raise errors[0]
    return done[0]


def run_process(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m crmsync ARGS` in its own process, from `cwd`, killed after `timeout` seconds."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "crmsync", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


def test_version_and_help() -> None:
    assert run_process("--version").stdout.strip().startswith("crmsync ")  # the module entry point runs
    out = run("--help").stdout
    assert "definitions" in out and "doctor" in out
    assert run("definitions", "validate", "--help").returncode == 0


def test_validate_default_definitions() -> None:
    result = run("definitions", "validate", str(DEFAULT_DEFINITIONS), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True and data["version"] == "2026.11.1" and len(data["hash"]) == 64


def test_validate_invalid_file_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_DEFINITIONS.read_text().replace("  threshold: 50", "  treshold: 50"))
    result = run("definitions", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}: line " in result.stderr
    assert "engagement.treshold: unknown key; did you mean 'threshold'?" in result.stderr


def test_diff_json(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(DEFAULT_DEFINITIONS.read_text().replace("  threshold: 50", "  threshold: 65"))
    result = run("definitions", "diff", str(DEFAULT_DEFINITIONS), str(candidate), "--json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert changes == [{"path": "engagement.threshold", "section": "engagement", "change": "changed",
                        "old": 50.0, "new": 65.0}]
    text = run("definitions", "diff", str(DEFAULT_DEFINITIONS), str(candidate)).stdout
    assert "~ engagement.threshold: 50.0 -> 65.0" in text


def test_bad_setting_is_one_line_exit_2() -> None:
    result = run("doctor", env={"CRMSYNC_SYNC__INTERVAL_SECONDS": "often"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "CRMSYNC_SYNC__INTERVAL_SECONDS" in result.stderr and "Traceback" not in result.stderr


def test_doctor_reports_an_unreachable_crm_without_printing_secrets() -> None:
    result = run("doctor", "--json", env={"CRMSYNC_HUBSPOT__ACCESS_TOKEN": "pat-na1-topsecret",
                                          "CRMSYNC_HUBSPOT__BASE_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1, result.stderr
    assert "pat-na1-topsecret" not in result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["settings"]["ok"] and checks["definitions"]["ok"]
    assert not checks["hubspot connectivity"]["ok"] and "127.0.0.1:9" in checks["hubspot connectivity"]["detail"]


def test_unknown_command_is_usage_error() -> None:
    assert run("frobnicate").returncode == 2
