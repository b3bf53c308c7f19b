"""End to end through the CLI: the HubSpot sandbox, a real store, `crmsync sync --once`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from crmsync.store import Store
from tests.hubspot_fixtures import TOKEN, hubspot
from tests.test_cli import run

# Seeded archetypes by index (crmsync.sandbox.seed.ARCHETYPES)
IDEAL_DEMO, FIT_BLOG_ONLY, COMPETITOR, SQL_DOCUMENTED = 0, 3, 7, 9
SQL_MISSING_BUDGET, NOT_INTERESTED, ACCEPTED = 10, 13, 19


def env(url: str, db: Path, **extra: str) -> dict[str, str]:
    return {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url,
            "CRMSYNC_DATABASE_URL": f"sqlite:///{db}", "CRMSYNC_LOG_FORMAT": "json", **extra}


def contact(app: Any, index: int) -> dict[str, str]:
    ids = list(app.portal.records["contacts"])
    return dict(app.portal.records["contacts"][ids[index]].properties)


def post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_first_sync_promotes_and_a_second_writes_nothing(tmp_path: Path) -> None:
    with hubspot(60, real_clock=True) as (app, url):
        first = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert first.returncode == 0, first.stderr
        assert contact(app, IDEAL_DEMO)["lifecyclestage"] == "marketingqualifiedlead"
        assert contact(app, IDEAL_DEMO)["crmsync_stage"] == "mql"
        assert contact(app, FIT_BLOG_ONLY)["lifecyclestage"] == "lead"
        assert contact(app, COMPETITOR)["crmsync_stage"] == "disqualified"
        assert contact(app, SQL_DOCUMENTED)["crmsync_stage"] == "sql" and contact(app, SQL_DOCUMENTED)["crmsync_sql_at"]
        blocked = contact(app, SQL_MISSING_BUDGET)
        assert blocked["lifecyclestage"] != "salesqualifiedlead"
        assert "budget: empty" in blocked["crmsync_sql_blocked_reason"]
        assert "not an accepted reason" in contact(app, NOT_INTERESTED)["crmsync_dq_reason_status"]
        assert contact(app, ACCEPTED)["crmsync_stage"] == "sal"
        tasks = {t.properties["hs_task_subject"] for t in app.portal.records["tasks"].values()}
        # the seed's undocumented customers were in pipeline before this first pass: the backlog, no task
        assert tasks == {"crmsync: SQL blocked, document BANT", "crmsync: fix the disqualification reason"}
        assert any(" before rollout: missing " in c.properties.get("crmsync_skipped_gate", "")
                   for c in app.portal.records["contacts"].values())
        task_count = len(app.portal.records["tasks"])

        app.reset_counts()
        second = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert second.returncode == 0, second.stderr
        calls = app.call_counts()
        assert "objects.batch_update" not in calls and "objects.batch_create" not in calls, calls
        assert len(app.portal.records["tasks"]) == task_count


def test_rep_setting_sql_without_bant_is_reverted_and_with_bant_stays(tmp_path: Path) -> None:
    with hubspot(30, real_clock=True) as (app, url):
        assert run("sync", "--once", env=env(url, tmp_path / "s.db")).returncode == 0
        ids = list(app.portal.records["contacts"])
        mql = ids[IDEAL_DEMO]
        post(url, f"/__sandbox/contacts/{mql}/sql", {"bant": {"need": "Lead routing loses a third of demo requests",
                                                              "authority": "VP Finance signs", "timeline": "next year",
                                                              "budget": ""}})
        documented = ids[1]
        post(url, f"/__sandbox/contacts/{documented}/sql", {"bant": {
            "need": "Lead routing loses a third of demo requests", "authority": "CFO signs off",
            "timeline": "within 6 weeks", "budget": "$40k approved"}})
        tasks_before = len(app.portal.records["tasks"])
        result = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert result.returncode == 0, result.stderr
        reverted = app.portal.records["contacts"][mql].properties
        assert reverted["lifecyclestage"] == "marketingqualifiedlead" and reverted["crmsync_stage"] == "mql"
        assert "budget: empty" in reverted["crmsync_sql_blocked_reason"]
        assert "timeline: decision by" in reverted["crmsync_sql_blocked_reason"]
        new_tasks = [t for t in app.portal.records["tasks"].values()][tasks_before:]
        assert len(new_tasks) == 1 and "budget" in new_tasks[0].properties["hs_task_body"]
        kept = app.portal.records["contacts"][documented].properties
        assert kept["lifecyclestage"] == "salesqualifiedlead" and kept["crmsync_stage"] == "sql"
        assert kept["crmsync_sql_at"]
        again = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert again.returncode == 0 and len(app.portal.records["tasks"]) == tasks_before + 1


def test_shadow_mode_writes_nothing_and_records_what_it_would(tmp_path: Path) -> None:
    with hubspot(30, real_clock=True) as (app, url):
        before = {cid: dict(r.properties) for cid, r in app.portal.records["contacts"].items()}
        result = run("sync", "--once", env=env(url, tmp_path / "s.db", CRMSYNC_MODE="shadow"))
        assert result.returncode == 0, result.stderr
        assert "objects.batch_update" not in app.call_counts()
        assert {cid: dict(r.properties) for cid, r in app.portal.records["contacts"].items()} == before
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        shadow = store.outbox_rows("hubspot", "shadow")
        assert len(shadow) > 20 and store.outbox_depth() == 0
        assert all(row["payload"] for row in shadow)


def test_dry_run_prints_the_plan_and_stores_nothing(tmp_path: Path) -> None:
    with hubspot(30, real_clock=True) as (app, url):
        result = run("sync", "--once", "--dry-run", env=env(url, tmp_path / "s.db"))
        assert result.returncode == 0, result.stderr
        assert "(dry run)" in result.stdout and "would write" in result.stdout
        assert "objects.batch_update" not in app.call_counts()
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        assert store.runs() == [] and store.cursors() == [] and store.outbox_rows("hubspot") == []


def test_unmappable_record_is_quarantined_and_the_pass_goes_on(tmp_path: Path) -> None:
    with hubspot(30, real_clock=True) as (app, url):
        ids = list(app.portal.records["contacts"])
        app.portal.records["contacts"][ids[5]].properties["hs_lead_status"] = "OPEN_DEAL"
        result = run("sync", "--once", env=env(url, tmp_path / "s.db"))
        assert result.returncode == 0, result.stderr
        assert "quarantined 1" in result.stdout
        status = json.loads(run("status", "--json", env=env(url, tmp_path / "s.db")).stdout)
        assert status["quarantined"] == 1 and status["outbox_depth"] == 0
        assert status["last_runs"][0]["outcome"] == "ok"
        assert contact(app, IDEAL_DEMO)["crmsync_stage"] == "mql"


def test_sync_requires_once_and_a_configured_crm(tmp_path: Path) -> None:
    assert run("sync").returncode == 2
    no_crm = run("sync", "--once", env={"CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"})
    assert no_crm.returncode == 2 and "no CRM is configured" in no_crm.stderr
