"""explain, backtest and the definitions lifecycle, on a store filled by a real sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsync.definitions import parse_definitions
from crmsync.reporting.backtest import backtest
from crmsync.reporting.explain import explain
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.builders import DEFAULT_DEFINITIONS
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.test_cli import run

TEXT = DEFAULT_DEFINITIONS.read_text()


def _synced(database_url: str) -> Iterator[tuple[Store, str]]:
    with hubspot(300) as (_app, url):
        store = Store.open(database_url)
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run()
        yield store, database_url


@pytest.fixture
def synced(database_url: str) -> Iterator[tuple[Store, str]]:
    """A store of its own, for a test that activates definitions."""
    yield from _synced(database_url)


# SQLite only: explain and backtest read the store as the CLI test below does, which keeps PostgreSQL
# (explain, backtest and activate on a PostgreSQL store synced the same way).
@pytest.fixture(scope="module")
def synced_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    """One synced store for the tests that only explain and backtest against it (a backtest records that
    the candidate was backtested; neither reads that mark but the test that makes it), so the 300-contact
    sync is not made again for each of them."""
    yield from _synced(f"sqlite:///{tmp_path_factory.mktemp('governance') / 'crmsync.db'}")


def candidate(threshold: int, version: str = "2026.12.0") -> str:
    return (TEXT.replace("  threshold: 50", f"  threshold: {threshold}")
            .replace('  version: "2026.11.1"\n  owner', f'  version: "{version}"\n  owner')
            .replace("  changelog:\n", f'  changelog:\n    - version: "{version}"\n      date: 2026-12-01\n'
                                       f'      summary: "Threshold {threshold}"\n'))


def test_explain_reproduces_the_stored_decision_byte_for_byte(synced_shared: tuple[Store, str]) -> None:
    store, _ = synced_shared
    ids = [row["record_id"] for row in store.latest_decisions(SEED_NOW.replace(year=2020))][:25]
    for record_id in ids:
        explanation = explain(store, "hubspot", record_id, DEFS)
        assert explanation.identical, explanation.differences
        assert explanation.decision["record_id"] == record_id
    changed = parse_definitions(candidate(70), "candidate.yaml")
    differing = [explain(store, "hubspot", rid, changed) for rid in ids]
    assert any(not e.identical for e in differing)
    assert all("definitions_version" in " ".join(e.differences) for e in differing if not e.identical)


def test_backtest_of_a_higher_threshold_changes_exactly_the_scores_in_between(
        synced_shared: tuple[Store, str]) -> None:
    store, _ = synced_shared
    expected = set()
    for row in store.latest_decisions(SEED_NOW.replace(year=2020)):
        d = row["decision"]
        by_score_only = d["fit"]["passed"] and not d["disqualifiers"] and not d["engagement"]["high_intent"]
        if by_score_only and 50 <= d["engagement"]["score"] < 70:
            expected.add(row["record_id"])
    assert expected, "the seeded history must hold records scoring between the thresholds"
    summary = backtest(store, DEFS, parse_definitions(candidate(70), "candidate.yaml"), days=3650, now=SEED_NOW)
    groups = {g["transition"]: g for g in summary["transitions"]}
    assert set(groups) == {"MQL -> not MQL"}
    assert groups["MQL -> not MQL"]["count"] == len(expected) == summary["changed"]
    assert groups["MQL -> not MQL"]["rules"] == {"engagement.threshold": len(expected)}
    assert {e.split(":")[1] for e in groups["MQL -> not MQL"]["examples"]} <= expected
    assert set(groups["MQL -> not MQL"]["later"]) == {"sql", "opportunity", "won"}
    assert store.backtested(parse_definitions(candidate(70)).content_hash)


def test_explain_backtest_and_activate_from_the_cli(synced: tuple[Store, str], tmp_path: Path) -> None:
    store, url = synced
    env = {"CRMSYNC_DATABASE_URL": url}
    record_id = next(iter(store.latest_decisions(SEED_NOW.replace(year=2020))))["record_id"]
    shown = run("explain", record_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Fit:" in shown.stdout and "identical" in shown.stdout
    as_json = json.loads(run("explain", record_id, "--json", env=env).stdout)
    assert as_json["reproduced"]["identical"] is True
    assert run("explain", "no-such-record", env=env).returncode == 1

    new = tmp_path / "candidate.yaml"
    new.write_text(candidate(70))
    unbacktested = run("definitions", "activate", str(new), env=env)
    assert unbacktested.returncode == 0 and "never backtested" in unbacktested.stderr
    reused = tmp_path / "reused.yaml"
    reused.write_text(candidate(75))  # same version number, other content
    refused = run("definitions", "activate", str(reused), env=env)
    assert refused.returncode == 2 and "activated before with different content" in refused.stderr
    other = tmp_path / "other.yaml"
    other.write_text(candidate(60, version="2026.12.1"))
    result = run("backtest", "--definitions", str(other), "--days", "3650", env=env)
    assert result.returncode == 0, result.stderr
    assert "classified differently" in result.stdout
    activated = run("definitions", "activate", str(other), env=env)
    assert activated.returncode == 0 and "never backtested" not in activated.stderr
