"""`crmsync report` on a seeded history whose figures are known in advance; the HTML page in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.reporting.report import build_report, render_csv, render_html, render_text
from crmsync.store import Store
from tests.hubspot_fixtures import DEFS
from tests.test_cli import run

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def history(store: Store) -> None:
    """20 leads created 60 days ago: 10 MQL (after 24 h), 8 SAL (2 h later), 4 SQL (after 10 more days, so
    within 30 days of MQL), 2 opportunities, 1 won; 10 disqualified: 5 budget, 3 no authority, 2 no need.
    The customer got there through a deal without a documented budget (a skipped gate)."""
    created = NOW - timedelta(days=60)
    rows: list[dict[str, Any]] = []
    for i in range(20):
        mql = created + timedelta(hours=24) if i < 10 else None
        sal = mql + timedelta(hours=2) if mql and i < 8 else None
        sql = sal + timedelta(days=10) if sal and i < 4 else None
        stage = "customer" if i == 0 else "opportunity" if i == 1 else "sql" if sql else "sal" if sal else \
            "mql" if mql else "disqualified"
        reason = None if i < 10 else "budget_unavailable" if i < 15 else "no_authority" if i < 18 else "no_need"
        rows.append({"crm": "hubspot", "record_id": str(i), "snapshot_hash": "", "inputs_hash": "",
                     "definitions_hash": "", "stage": stage, "target_stage": stage, "mql_at": mql, "sal_at": sal,
                     "sql_at": sql, "created_at": created, "updated_at": NOW, "dq_reason": reason,
                     "dq_invalid": False, "source": "referral" if i % 2 else "organic",
                     "segment": "mid_market", "owner_id": "7001", "definitions_version": "2026.11.1",
                     "skipped_gate": "deal: missing budget" if i == 0 else "" if i == 1 else None,
                     "slas": [{"name": "accept", "state": "met" if i < 8 else "breached",
                               "started_at": "2026-09-26T12:00:00Z"}] if mql else []})
    with store.transaction() as c:
        store.save_records(c, rows)


def test_report_figures_are_the_known_ones(database_url: str) -> None:
    store = Store.open(database_url)
    history(store)
    report = build_report(store, DEFS, NOW - timedelta(days=90), NOW, by="source")
    funnel = {row["stage"]: (row["count"], row["rate_from_previous"]) for row in report["funnel"]}
    assert funnel == {"lead": (20, None), "mql": (10, 0.5), "sal": (8, 0.8), "sql": (4, 0.5),
                      "opportunity": (2, 0.5), "won": (1, 0.5)}
    times = report["stage_times_hours"]
    assert times["lead->mql"] == {"count": 10, "median": 24.0, "p90": 24.0}
    assert times["mql->sal"]["median"] == 2.0 and times["sal->sql"]["median"] == 240.0
    contract = report["contract"]
    assert contract["mql_to_sql_30d"] == 0.4 and contract["alerts"]["mql_to_sql_30d"] is False
    assert contract["sal_acceptance"] == 0.8 and contract["sla_compliance"] == {"accept": 0.8}
    reasons = report["reasons"]
    assert reasons["shares"] == {"budget_unavailable": 0.5, "no_authority": 0.3, "no_need": 0.2}
    assert reasons["hints"] == ["50% budget unavailable: add a budget signal to the MQL definition",
                                "30% no authority: recalibrate title scoring (buyer personas)"]
    assert report["sla_trend"] == [{"week": "2026-09-21", "sla": "accept", "met": 8, "closed": 10,
                                    "compliance": 0.8}]
    assert report["pipeline"] == {"records": 2, "skipped_gate": 1, "by_route": {"deal": 1},
                                  "deals": 0, "amounts": {}}
    assert contract["skipped_gates"] == 1
    groups = {name: [row["count"] for row in funnel] for name, funnel in report["groups"].items()}
    assert groups == {"organic": [10, 5, 4, 2, 1, 1], "referral": [10, 5, 4, 2, 1, 0]}
    text = render_text(report)
    assert "add a budget signal" in text and "mql" in text
    assert "Pipeline without documented qualification: 1 records (of 2 in pipeline)" in text
    csv_text = render_csv(report)
    assert "funnel,all,mql,10,0.5" in csv_text


def test_report_cli_outputs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    history(Store.open(url))
    env = {"CRMSYNC_DATABASE_URL": url}
    window = ("--since", "2026-08-01", "--until", "2026-11-25T12:00:00")
    as_json = json.loads(run("report", *window, "--json", env=env).stdout)
    assert as_json["funnel"][1] == {"stage": "mql", "count": 10, "rate_from_previous": 0.5}
    assert run("report", *window, "--csv", env=env).stdout.startswith("section,group,name,value,rate")
    assert run("report", "--by", "planet", env=env).returncode == 2
    page = tmp_path / "report.html"
    result = run("report", *window, "--html", str(page), env=env)
    assert result.returncode == 0 and page.exists() and "<script" not in page.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_html_report_loads_in_headless_chromium_and_shows_the_funnel(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    history(store)
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(store, DEFS, NOW - timedelta(days=90), NOW)), encoding="utf-8")
    flags = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1400"]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'id="funnel"' in dom and ">Funnel<" in dom
    for stage in ("lead", "mql", "sal", "sql", "opportunity", "won"):
        assert f">{stage}</text>" in dom
    assert "10 (50%)" in dom and "add a budget signal" in dom
