"""Backfills: a cursor of their own that fits the store, a frozen upper bound, an interrupted backfill
that resumes to the same result as an uninterrupted one, and one that failed in its deal stream that
resumes there, on the same window, without reading its records again. The two that resume run on
SQLite and PostgreSQL (the store's checkpoints, upper bounds and cursors); the others on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from crmsync.cli import app as cli
from crmsync.crms.hubspot.connector import TASK_KEY
from crmsync.crms.hubspot.sandbox import HubSpotApp
from crmsync.errors import AuthError
from crmsync.model import ObjectType
from crmsync.store import Store, aware
from crmsync.store.schema import cursors
from crmsync.sync import SyncPass
from crmsync.sync.pipeline import backfill_stream, events_stream
from crmsync.sync.window import ROLLOUT_NOTE, object_stream
from tests.conftest import SQLITE_ONLY
from tests.faultproxy import Fault, FaultProxy
from tests.hubspot_fixtures import DEFS, SEED_NOW, TOKEN, connector, hubspot
from tests.test_hubspot_deals import create_deal
from tests.test_hubspot_deals import rep as hubspot_rep

SINCE = datetime(2020, 1, 1, tzinfo=UTC)
LIVE = datetime(2026, 11, 1, tzinfo=UTC)
CONTACTS = 410  # three search pages of 200, 200, 10: a resume after one or two pages still has pages to go


def stop_after(pages: int) -> Any:
    seen = []
    return lambda: seen.append(1) or len(seen) >= pages


def outcome(app: HubSpotApp, store: Store) -> dict[str, Any]:
    """What a backfill leaves behind: the CRM's contacts and tasks, the store's records and outbox."""
    contacts = {cid: dict(r.properties) for cid, r in app.portal.records["contacts"].items()}
    tasks = sorted(str(t.properties.get(TASK_KEY)) for t in app.portal.records["tasks"].values())
    records = {rid: {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items() if k != "updated_at"}
               for rid, row in store.records("hubspot", list(contacts)).items()}
    outbox = sorted((r["record_id"], r["kind"], r["key"], r["status"]) for r in store.outbox_rows("hubspot"))
    return {"contacts": contacts, "tasks": tasks, "records": records, "outbox": outbox}


def live_cursor(store: Store) -> None:
    with store.transaction() as c:
        store.set_cursor(c, "hubspot", "contacts", LIVE)


def test_an_interrupted_backfill_resumes_to_the_same_result(database_url: str, tmp_path: Path) -> None:
    stream = backfill_stream("hubspot", SINCE, None)
    with hubspot(CONTACTS) as (app, url):
        reference = Store.open(f"sqlite:///{tmp_path / 'reference.db'}")
        whole = SyncPass(reference, connector(url), DEFS, clock=lambda: SEED_NOW).run(
            kind="backfill", since=SINCE, stream=stream)
        assert whole.outcome == "ok" and whole.counts["pulled"] == CONTACTS
        expected = outcome(app, reference)
    assert expected["outbox"] and expected["tasks"]

    with hubspot(CONTACTS) as (app, url):
        store = Store.open(database_url)
        live_cursor(store)
        first = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW, should_stop=stop_after(1)).run(
            kind="backfill", since=SINCE, stream=stream)
        assert first.outcome == "interrupted" and first.counts["pulled"] == 200
        upper, checkpoint = store.unfinished("hubspot", stream)
        assert upper == SEED_NOW and checkpoint is not None
        assert len(store.records("hubspot", list(app.portal.records["contacts"]))) == 200  # page 1, committed

        app.reset_counts()
        rest = SyncPass(store, connector(url), DEFS, clock=lambda: SEED_NOW).run(
            kind="backfill", since=SINCE, stream=stream)
        assert rest.outcome == "ok" and rest.counts["pulled"] == CONTACTS - 200  # after the checkpoint only
        assert outcome(app, store) == expected
        assert store.cursor("hubspot", "contacts") == LIVE  # the live cursor has not moved
        assert store.unfinished("hubspot", stream) == (None, None)
        store.close()


# SQLite only (the window's end is the engine's); PostgreSQL's upper bound, checkpoint: the interrupted test
@SQLITE_ONLY
def test_a_backfill_without_until_keeps_the_end_it_started_with(database_url: str) -> None:
    stream = backfill_stream("hubspot", SINCE, None)
    started = SEED_NOW
    with hubspot(CONTACTS) as (_, url):
        store = Store.open(database_url)
        first = SyncPass(store, connector(url), DEFS, clock=lambda: started, should_stop=stop_after(2)).run(
            kind="backfill", since=SINCE, stream=stream)
        assert first.outcome == "interrupted" and first.window == (SINCE, started)
        later = started + timedelta(hours=5)
        resumed = SyncPass(store, connector(url), DEFS, clock=lambda: later).run(
            kind="backfill", since=SINCE, stream=stream)
        assert resumed.window == (SINCE, started) and resumed.counts["pulled"] == CONTACTS - 400
        again = SyncPass(store, connector(url), DEFS, clock=lambda: later).run(
            kind="backfill", since=SINCE, stream=stream)
        assert again.window == (SINCE, later)  # a finished backfill run again is a new window
        assert again.counts["pulled"] == CONTACTS
        store.close()


def test_a_backfill_failed_in_its_deal_stream_resumes_there_on_the_same_window(database_url: str) -> None:
    """The records of the window are read to their end, then the deal search fails: the backfill is
    unfinished until its deals are read, so running it again later keeps the end it started with, reads
    no record again and reads the deals to that end."""
    stream = backfill_stream("hubspot", SINCE, None)
    started, later = SEED_NOW + timedelta(minutes=1), SEED_NOW + timedelta(hours=5)
    with hubspot(CONTACTS) as (_app, url), FaultProxy(url) as proxy:
        store = Store.open(database_url)
        deal = create_deal(hubspot_rep(url), [])  # naming no contact: the deal stream re-reads none
        proxy.faults.append(Fault("unauthorized", "POST", "/crm/v3/objects/deals/search"))
        with pytest.raises(AuthError):
            SyncPass(store, connector(proxy.url), DEFS, clock=lambda: started).run(
                kind="backfill", since=SINCE, stream=stream)
        failed = store.runs(1)[0]
        assert failed["outcome"] == "failed" and failed["counts"]["pulled"] == CONTACTS
        assert store.unfinished("hubspot", object_stream(stream, "deals")) == (started, None)

        read_from = len(proxy.log)
        again = SyncPass(store, connector(proxy.url), DEFS, clock=lambda: later).run(
            kind="backfill", since=SINCE, stream=stream)
        assert again.outcome == "ok" and again.window == (SINCE, started)  # the end it started with
        assert again.counts["pulled"] == 0 and again.counts["deals"] == 1  # the records are not read again
        searches = [logged.path for logged in proxy.log[read_from:] if logged.path.endswith("/search")]
        # no contact search; the tasks search is the outbox's check of the tasks the failed pass left pending
        # (a search the sandbox refuses with 429, its per-second limit met with the first pass, is retried)
        assert set(searches) == {"/crm/v3/objects/tasks/search", "/crm/v3/objects/deals/search"}  # retries aside
        assert [d["object_id"] for d in store.objects("hubspot", object_type=ObjectType.DEAL)] == [deal]
        for done in (stream, object_stream(stream, "deals")):
            assert store.unfinished("hubspot", done) == (None, None) and store.cursor("hubspot", done) == started
        store.close()


# SQLite only (the CLI is the engine's); PostgreSQL's backfill cursors, checkpoints: the two resume tests
@SQLITE_ONLY
def test_backfill_from_the_cli_leaves_the_live_cursors(database_url: str) -> None:
    with hubspot(40, real_clock=True) as (app, url):
        env = {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url,
               "CRMSYNC_DATABASE_URL": database_url, "CRMSYNC_LOG_FORMAT": "json"}
        result = CliRunner().invoke(cli, ["backfill", "--since", "2020-01-01"], env=env)
        assert result.exit_code == 0, result.output
        assert "backfill" in result.stdout and "pulled 40" in result.stdout
        store = Store.open(database_url)
        streams = [c["stream"] for c in store.cursors()]
        # the live cursors have not moved (the rollout note is when crmsync first decided a record, not a stream)
        assert streams and all(s.startswith("backfill:") for s in streams if s != ROLLOUT_NOTE)
        store.close()
        ids = list(app.portal.records["contacts"])
        assert app.portal.records["contacts"][ids[0]].properties["crmsync_stage"] == "mql"


moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30),
                       timezones=st.sampled_from([UTC, None]).map(lambda tz: tz or UTC))


@given(since=moments, until=st.none() | moments, crm=st.text(max_size=32))
def test_every_stream_name_fits_the_cursor_column(since: datetime, until: datetime | None, crm: str) -> None:
    limit = cursors.c.stream.type.length
    for stream in ("contacts", backfill_stream(crm, since, until)):
        assert len(stream) <= limit and len(events_stream(stream)) <= limit
    assert backfill_stream(crm, since, until) == backfill_stream(crm, since, until)
    assert backfill_stream(crm, since, None) != backfill_stream(crm, since, since + timedelta(days=1))
