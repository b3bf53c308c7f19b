"""Adding an object type is one stream, one mapping and one registration line (docs/architecture.md):
a third object type, tickets, registered only here on a subclass of the real HubSpot connector (a
help desk's tickets read from a list in the test, since the sandbox has none), goes through the pass
and the store that deals use, with nothing in crmsync/sync, crmsync/store or connectors/base.py
knowing it: read on its own cursor, stored with its own fields, quarantined under its type, linked to
the contacts it names (re-decided), dropped when deleted, and resumed by a backfill after its last page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pydantic import SecretStr

from crmsync.connectors.base import ObjectPage, ObjectStream, PulledPage
from crmsync.connectors.core import chunks
from crmsync.crms.hubspot.connector import HubSpotConnector
from crmsync.crms.hubspot.settings import HubSpotSettings
from crmsync.errors import RecordError, RetriableError
from crmsync.model import LinkedObject, ObjectType
from crmsync.store import Store
from crmsync.sync import SyncPass
from crmsync.sync.window import backfill_stream, object_stream
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
    asked: list[tuple[str, datetime, datetime, str | None]] = field(default_factory=list)
    read: list[list[str]] = field(default_factory=list)


def to_ticket(ticket: Ticket) -> LinkedObject:
    """The mapping: a ticket as a linked object (its priority in `fields`), or a RecordError."""
    if ticket.priority is None:
        raise RecordError(ticket.id, "ticket without a priority")
    return LinkedObject(ticket.id, crm="hubspot", name=f"Ticket {ticket.id}", stage="open",
                        updated_at=ticket.modified, contact_ids=ticket.contacts, fields={"priority": ticket.priority})


class WithTickets(HubSpotConnector):
    desk: Desk

    @property
    def object_streams(self) -> tuple[ObjectStream, ...]:
        return (*super().object_streams, ObjectStream(TICKET, "tickets", self.pull_tickets))  # the registration

    def pull_tickets(self, since: datetime, until: datetime, after_key: str | None = None) -> Iterator[ObjectPage]:
        """The stream: tickets changed in [since, until) by id, PAGE a page, resumable after a page's last id."""
        self.desk.asked.append(("tickets", since, until, after_key))
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
