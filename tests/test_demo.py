"""`crmsync demo` as a new user runs it: both sandboxes, two syncs, the story printed."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import run_process


def test_demo_runs_the_whole_loop_from_any_directory(tmp_path: Path) -> None:
    """As in `cd "$(mktemp -d)" && crmsync demo`: no config/ here, the packaged definitions are used."""
    database = tmp_path / "crmsync-demo.db"
    result = run_process("demo", "--leads", "60", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("1. First sync", "2. A day of rep activity", "3. Second sync", "4. Funnel",
                    "5. What crmsync wrote", "6. SQL requests blocked", "7. SLA states", "8. Two decisions"):
        assert heading in out
    assert "hubspot    pulled 60" in out and "salesforce pulled 60" in out
    assert "budget: empty" in out and "is not an accepted reason" in out
    assert "Salesforce: a rep tried to convert undocumented lead" in out
    assert "refused by the guard (FIELD_CUSTOM_VALIDATION_EXCEPTION)" in out
    assert "HubSpot: a rep created deal " in out and "hubspot    pulled 60, deals 1," in out
    assert "deal: missing need, authority, timeline, budget (owner tasks: 1)" in out
    assert "; 1 deal, total amount 18,000.00" in out
    assert out.count("Re-run on the stored inputs with definitions 2026.11.1: identical.") == 2
    assert database.exists()
    assert "the default shipped with crmsync" in result.stderr
