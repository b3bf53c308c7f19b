"""Adding an object type is one stream, one mapping and one registration line (docs/architecture.md):
a third object type, tickets, registered only here on a subclass of the real HubSpot connector (a
help desk's tickets read from a list in the test, since the sandbox has none), goes through the pass
and the store that deals use, with nothing in crmsync/sync, crmsync/store or connectors/base.py
knowing it: read on its own cursor, stored with its own fields, quarantined under its type, linked to
the contacts it names (re-decided), dropped when deleted, and resumed by a backfill after its last page; its
archived objects are listed by the daily sweep from its registration line alone, and a token without its scope
turns that stream off (said once, no call for it after) while the contacts and deals sync."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import pytest
from pydantic import SecretStr

from crmsync.connectors import calls
from crmsync.connectors.base import ObjectPage, ObjectStream, PulledPage
from crmsync.connectors.core import chunks
from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.errors import AuthError, RecordError, RetriableError, StreamRefused
from crmsync.model import LinkedObject, ObjectType
from crmsync.store import Store
from crmsync.sync import SyncPass
from crmsync.sync.erasure import SWEEP_EVERY
from crmsync.sync.window import backfill_stream, object_stream
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW, TOKEN, fast_retry, hubspot
from tests.test_hubspot_deals import create_deal
from tests.test_hubspot_deals import rep as hubspot_rep

TICKET = cast(ObjectType, "ticket")
"""The member a real ticket type would add to model.ObjectType (`TICKET = "ticket"`): here only a string,
so that nothing outside this file names it."""
SINCE = datetime(2020, 1, 1, tzinfo=UTC)
PAGE = 2


@dataclass
class Ticket:
    id: str
    modified: datetime
    contacts: tuple[str, ...] = ()
    priority: str | None = "LOW"  # None: a ticket its mapping refuses
    deleted: bool = False


@dataclass
class Desk:
    """The help desk's tickets and what the stream was asked."""

    tickets: dict[str, Ticket] = field(default_factory=dict)
    fail_at_page: int | None = None
    refused: set[str] = field(default_factory=set)
    """The streams the token may not read: their pull is answered 403 MISSING_SCOPES."""
    asked: list[tuple[str, datetime, datetime, str | None]] = field(default_factory=list)
    read: list[list[str]] = field(default_factory=list)


def to_ticket(ticket: Ticket) -> LinkedObject:
    """The mapping: a ticket as a linked object (its priority in `fields`), or a RecordError."""
    if ticket.priority is None:
        raise RecordError(ticket.id, "ticket without a priority")
    return LinkedObject(ticket.id, crm="hubspot", name=f"Ticket {ticket.id}", stage="open",
                        updated_at=ticket.modified, contact_ids=ticket.contacts, fields={"priority": ticket.priority})


def missing_scope(scope: str) -> str:
    """HubSpot's 403 for a token without a scope (the body the sandbox answers for deals, naming the scope in
    errors[].context.requiredGranularScopes; docs/hubspot.md). Tickets' scope is `tickets` (HubSpot's legacy
    scope name; a granular `crm.objects.tickets.read` is unconfirmed): the error table names the object by
    the scope itself."""
    return json.dumps({"status": "error", "message": "This app hasn't been granted all required scopes to make "
                       "this call.", "category": "MISSING_SCOPES", "errors": [{
                           "message": "One or more of the following scopes are required.",
                           "context": {"requiredGranularScopes": [scope]}}]})


class WithTickets(HubSpotConnector):
    desk: Desk

    @property
    def object_streams(self) -> tuple[ObjectStream, ...]:
        return (*super().object_streams,  # the registration: the stream and its archived list
                ObjectStream(TICKET, "tickets", self.pull_tickets, deleted=partial(self.archived, "tickets")))

    def refuse(self, stream: str, what: str, scope: str) -> None:
        """A search the token may not make, failed the way the real connector's call fails (`_attempt`): one
        call, its 403 MISSING_SCOPES answer classified by the core and the error table."""
        if stream in self.desk.refused:
            self.calls += 1
            raise self._failed(calls.Answer("HubSpot", what, 403, missing_scope(scope)), None)

    def pull_tickets(self, since: datetime, until: datetime, after_key: str | None = None) -> Iterator[ObjectPage]:
        """The stream: tickets changed in [since, until) by id, PAGE a page, resumable after a page's last id."""
        self.desk.asked.append(("tickets", since, until, after_key))
        self.refuse("tickets", "search tickets", "tickets")
        window = sorted((t for t in self.desk.tickets.values()
                         if since <= t.modified < until and (after_key is None or t.id > after_key)),
                        key=lambda t: t.id)
        for number, found in enumerate(chunks(window, PAGE), start=1):
            if number == self.desk.fail_at_page:
                raise RetriableError("the help desk answered 503")
            page = ObjectPage(resume_key=found[-1].id, deleted=[t.id for t in found if t.deleted])
            for ticket in (t for t in found if not t.deleted):
                try:
                    page.objects.append(to_ticket(ticket))
                except RecordError as exc:
                    page.errors.append(exc)
            yield page

    # what the test watches: the other streams' reads, delegated unchanged
    def pull_changed(self, since: datetime, until: datetime, after_key: str | None = None, *,
                     backfill: bool = False) -> Iterator[PulledPage]:
        self.desk.asked.append(("contacts", since, until, after_key))
        self.refuse("contacts", "search contacts", "crm.objects.contacts.read")
        return super().pull_changed(since, until, after_key, backfill=backfill)

    def pull_deals(self, since: datetime, until: datetime, after_key: str | None = None) -> Iterator[ObjectPage]:
        self.desk.asked.append(("deals", since, until, after_key))
        return super().pull_deals(since, until, after_key)

    def read(self, contact_ids: list[str]) -> PulledPage:
        self.desk.read.append(list(contact_ids))
        return super().read(contact_ids)


def with_tickets(url: str, desk: Desk) -> WithTickets:
    conn = WithTickets(HubSpotSettings(access_token=SecretStr(TOKEN), base_url=url, timeout_seconds=5.0),
                       DEFS.definitions.mappings.hubspot, retry=fast_retry())
    conn.desk = desk
    return conn


def kept(store: Store) -> dict[str, Any]:
    return {t["object_id"]: (t["contact_ids"], t["fields"]) for t in store.objects("hubspot", object_type=TICKET)}


def test_a_third_object_type_is_read_stored_quarantined_linked_and_resumed(database_url: str) -> None:
    store = Store.open(database_url)
    with hubspot(6) as (app, url):
        c = list(app.portal.records["contacts"])
        hour_ago = SEED_NOW - timedelta(hours=1)
        desk = Desk({t.id: t for t in (Ticket("t1", hour_ago, (c[0],), "HIGH"), Ticket("t2", hour_ago, (c[1], c[2])),
                                       Ticket("t3", hour_ago, priority=None), Ticket("t4", hour_ago, (c[3],)),
                                       Ticket("t5", hour_ago, (c[4],)))})
        create_deal(hubspot_rep(url), [c[5]])  # the deal stream beside it, unchanged

        first = SEED_NOW + timedelta(minutes=1)
        report = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: first).run()
        assert report.outcome == "ok" and report.counts["tickets"] == 4 and report.counts["deals"] == 1
        assert report.counts["quarantined"] == 1
        assert store.cursor("hubspot", "tickets") == first and store.cursor("hubspot", "deals") == first
        assert kept(store) == {"t1": ([c[0]], {"priority": "HIGH"}), "t2": ([c[1], c[2]], {"priority": "LOW"}),
                               "t4": ([c[3]], {"priority": "LOW"}), "t5": ([c[4]], {"priority": "LOW"})}
        assert [(q["object_type"], q["record_id"], q["step"]) for q in store.quarantined("hubspot")] == [
            ("ticket", "t3", "read")]
        assert len(store.objects("hubspot", object_type=ObjectType.DEAL)) == 1
        assert desk.read == []  # every contact its tickets name was decided by the record stream

        # a ticket changes, naming a contact the record stream leaves alone (its modification time put
        # back out of the window, as in test_pipeline_deals); one is fixed, one deleted
        app.portal.records["contacts"][c[0]].properties["lastmodifieddate"] = "2026-11-20T12:00:00Z"
        second = SEED_NOW + timedelta(minutes=10)
        changed = SEED_NOW + timedelta(minutes=5)
        desk.tickets["t1"].modified = changed
        desk.tickets["t3"] = Ticket("t3", changed)
        desk.tickets["t2"] = Ticket("t2", changed, deleted=True)
        report = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: second).run()
        assert report.outcome == "ok" and report.counts["tickets"] == 2
        assert desk.read[-1] == [c[0]]  # the contact t1 names, re-decided by the ticket stream (after the deal's)
        assert sorted(kept(store)) == ["t1", "t3", "t4", "t5"] and store.quarantined("hubspot") == []
        assert store.cursor("hubspot", "tickets") == second
        assert store.forget("hubspot", c[3])["object_links"] == 1  # an erased contact leaves its ticket
        assert kept(store)["t4"] == ([], {"priority": "LOW"})

        # a backfill fails in the ticket stream after its first page, then resumes there
        stream = backfill_stream("hubspot", SINCE, None)
        started, later = SEED_NOW + timedelta(minutes=20), SEED_NOW + timedelta(hours=5)
        desk.fail_at_page, desk.asked = 3, []
        with pytest.raises(RetriableError):
            SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: started).run(
                kind="backfill", since=SINCE, stream=stream)
        assert [a[0] for a in desk.asked] == ["contacts", "deals", "tickets"]
        assert store.unfinished("hubspot", object_stream(stream, "tickets")) == (started, "t2")  # page 1 kept
        for done in (stream, object_stream(stream, "deals")):
            assert store.unfinished("hubspot", done) == (None, None) and store.cursor("hubspot", done) == started

        desk.fail_at_page, desk.asked, desk.read = None, [], []
        again = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: later).run(
            kind="backfill", since=SINCE, stream=stream)
        assert again.outcome == "ok" and again.window == (SINCE, started)  # the end it started with
        assert desk.asked == [("tickets", SINCE, started, "t2")]  # no record nor deal read again
        assert again.counts["tickets"] == 3 and desk.read == [[c[3]], [c[4]]]  # per page
        assert store.unfinished("hubspot", object_stream(stream, "tickets")) == (None, None)
        assert store.cursor("hubspot", object_stream(stream, "tickets")) == started
        assert store.cursor("hubspot", "tickets") == second  # the live cursor is untouched
        store.close()


# SQLite only (the sweep's list, the scope: the connector's); PostgreSQL's swept drop: test_erasure.py deal test
@SQLITE_ONLY
def test_a_third_type_s_archived_objects_are_swept_and_a_token_without_its_scope_turns_it_off(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(database_url)
    with hubspot(4) as (app, url):
        c, client = list(app.portal.records["contacts"]), hubspot_rep(url)
        hour_ago = SEED_NOW - timedelta(hours=1)
        ids = [app.portal.create("tickets", {}).id for _ in range(2)]  # the help desk's tickets, kept in HubSpot
        desk = Desk({i: Ticket(i, hour_ago, (c[n],)) for n, i in enumerate(ids)})
        create_deal(client, [c[2]])
        first = SEED_NOW + timedelta(minutes=1)
        report = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: first).run()
        assert report.outcome == "ok" and report.counts["tickets"] == 2 and sorted(kept(store)) == sorted(ids)

        # a ticket archived in HubSpot: the next daily sweep lists it from the stream's registration alone
        client.crm.objects.basic_api.archive("tickets", ids[0])
        day = first + SWEEP_EVERY
        app.reset_counts()
        report = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: day).run()
        assert report.outcome == "ok" and sorted(kept(store)) == [ids[1]]
        assert app.call_counts()["objects.list"] == 3  # archived contacts, deals and tickets: a page each

        # a token without the tickets scope: contacts and deals sync, the ticket stream is off, said once,
        # and neither the next pass nor the next sweep makes a call for it
        desk.refused, desk.asked = {"tickets"}, []
        conn = with_tickets(url, desk)
        later, next_day = day + timedelta(minutes=5), day + SWEEP_EVERY + timedelta(minutes=5)
        app.portal.clock = lambda: day + timedelta(minutes=2)
        create_deal(client, [c[3]])  # a new deal, which moves its contact (HubSpot's deal lifecycle sync)
        with caplog.at_level(logging.WARNING, logger="crmsync"):
            one = SyncPass(store, conn, DEFS, clock=lambda: later).run()
            app.reset_counts()
            two = SyncPass(store, conn, DEFS, clock=lambda: next_day).run()
        assert one.outcome == two.outcome == "ok"
        assert one.counts["deals"] == 1 and one.counts["pulled"] >= 1 and one.counts["decided"] >= 1
        assert one.counts["refused"] == 1 and "refused" not in two.counts
        assert store.cursor("hubspot", "contacts") == next_day and store.cursor("hubspot", "deals") == next_day
        assert [a[0] for a in desk.asked] == ["contacts", "deals", "tickets", "contacts", "deals"]
        assert conn.refused == {"tickets"} and conn.calls > 0
        assert app.call_counts()["objects.list"] == 2  # the sweep: archived contacts and deals only
        warnings = [r.getMessage() for r in caplog.records if "stream off" in r.getMessage()]
        assert warnings == ["HubSpot ticket stream off: the token lacks tickets (add the scope to read tickets)"]
        assert store.cursor("hubspot", "tickets") == day  # left where it was: once granted, nothing is missed

        # a restart (a new connector) tries again: granted now, the stream reads on from its cursor
        desk.refused, desk.asked = set(), []
        report = SyncPass(store, with_tickets(url, desk), DEFS, clock=lambda: next_day).run()
        assert report.outcome == "ok" and "tickets" in [a[0] for a in desk.asked]
        assert store.cursor("hubspot", "tickets") == next_day
    store.close()


# SQLite only (stopping the pass is the engine's); PostgreSQL's store of a third type: the test above
@SQLITE_ONLY
def test_the_contact_stream_refused_still_stops_the_pass(database_url: str) -> None:
    store = Store.open(database_url)
    with hubspot(2) as (_app, url):
        conn = with_tickets(url, Desk(refused={"contacts"}))
        with pytest.raises(StreamRefused) as refused:
            SyncPass(store, conn, DEFS, clock=lambda: SEED_NOW).run()
        assert isinstance(refused.value, AuthError) and "crm.objects.contacts.read" in str(refused.value)
        assert conn.refused == set() and store.cursor("hubspot", "contacts") is None
    store.close()
