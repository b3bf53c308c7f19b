"""Poisoned records among 240 (1,000 with CRMSYNC_TEST_SCALE=nightly) are quarantined, each with a
reason naming its field; all the others, on their pages and before and after them, are decided and
written, and the pass ends ok (SQLite and PostgreSQL, both CRMs, real sandboxes; PostgreSQL matters
since its text refuses NUL and its JSON refuses inf and nan).

One pass per CRM per backend holds every poison kind of that CRM, each in its own record (two kinds of
the same field, Salesforce's NumberOfEmployees inf and nan, in two records): the sanitizer judges each
record alone, so a record's poison does not depend on another's, and each kind's own checks (its record
quarantined, the reason starting with its neutral field, no personal data in it) are asserted for its
record, failures named by kind. The positions spread over the pass: the first record, the last of
HubSpot's first search page of 200, the first of its second page, the 218th (17 records before it on
the second page, 22 after) and the last record. 240 is the least that still proves it across pages;
more records add only time. (Before: one pass of 240 per kind, 18 passes; the same checks per kind.)"""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.model import Activity, Contact
from crmsync.store import Store
from crmsync.sync import PassReport, SyncPass
from crmsync.sync.sanitize import contact_problem, problem
from tests.builders import scaled
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector

RECORDS = scaled(ci=240, nightly=1000)
PAGE = 200  # HubSpot's search page (crmsync.crms.hubspot.connector.SEARCH_PAGE)
POISON = scaled(ci=217, nightly=567)  # on HubSpot's second search page (nightly: its third)
POSITIONS = [0, PAGE - 1, PAGE, POISON, RECORDS - 1]  # where the kinds of one CRM go, in order

KINDS = [  # (crm, the CRM's field, the value, the neutral field the reason must name)
    ("hubspot", "firstname", "Ann\ud800", "first_name"),  # a lone surrogate, as JSON allows
    ("hubspot", "company", "Acme\x00Corp", "company"),  # PostgreSQL text refuses NUL
    ("hubspot", "crmsync_bant_need", "x\x00", "bant.need"),
    ("hubspot", "crmsync_mql_at", "9999-12-31T23:59:59-01:00", "mql_at"),  # year 10000 in UTC
    ("hubspot", "createdate", "0001-01-01T00:00:00+01:00", "created_at"),  # year 0 in UTC
    ("salesforce", "LastName", "\udfff", "last_name"),
    ("salesforce", "NumberOfEmployees", float("1e309"), "employees"),  # JSON 1e309 reads as inf
    ("salesforce", "NumberOfEmployees", float("nan"), "employees"),
    ("salesforce", "CreatedDate", "9999-12-31T23:59:59-01:00", "created_at"),
]


def _label(kind: tuple[str, str, Any, str]) -> str:
    return f"{kind[1]}={kind[2]!r} ({kind[3]})"


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_poisoned_records_are_quarantined_and_the_others_go_through(database_url: str, crm: str) -> None:
    kinds = [k for k in KINDS if k[0] == crm]
    assert len(kinds) <= len(POSITIONS) and len(set(POSITIONS)) == len(POSITIONS)
    store = Store.open(database_url)
    if crm == "hubspot":
        with hubspot(RECORDS) as (app, url):
            ids = list(app.portal.records["contacts"])
            assert ids == sorted(ids, key=int)  # the search's order (by id): POSITIONS fall on the pages said
            for (_, field, value, _), at in zip(kinds, POSITIONS, strict=False):
                app.portal.records["contacts"][ids[at]].properties[field] = value
            report = SyncPass(store, connector(url), DEFS).run()
            written = {rid: r.properties.get("crmsync_stage") for rid, r in app.portal.records["contacts"].items()}
    else:
        with salesforce(RECORDS) as (app, url):
            ids = list(app.org.records["Lead"])
            for (_, field, value, _), at in zip(kinds, POSITIONS, strict=False):
                app.org.records["Lead"][ids[at]][field] = value
            report = SyncPass(store, sf_connector(url), DEFS).run()
            words = DEFS.definitions.mappings.salesforce.stages  # Salesforce shows its own stage words
            written = {rid: next((s for s in ("lead", "mql", "sal", "sql", "recycled", "disqualified")
                                  if getattr(words, s) == r.get("CRMSync_Stage__c")), None)
                       for rid, r in app.org.records["Lead"].items()}
    poisoned = {ids[at]: kind for kind, at in zip(kinds, POSITIONS, strict=False)}
    quarantined = {row["record_id"]: row for row in store.quarantined()}
    decided = store.records(crm, ids)
    problems = []  # every kind's failures, named by kind, in one assertion
    for record_id, kind in poisoned.items():
        row = quarantined.get(record_id)
        if row is None:
            problems.append(f"{_label(kind)}: record {record_id} not quarantined")
            continue
        reason = row["reason"]
        if not reason.startswith(f"{kind[3]}:"):
            problems.append(f"{_label(kind)}: reason {reason!r} does not start with {kind[3]!r}:")
        if "Ann" in reason or "Acme" in reason or "Corp" in reason:  # no personal data
            problems.append(f"{_label(kind)}: reason {reason!r} quotes the value")
        if record_id in decided:
            problems.append(f"{_label(kind)}: record {record_id} was decided and stored all the same")
    assert not problems, "\n".join(problems)
    assert set(quarantined) == set(poisoned), "quarantined besides the poisoned records"
    assert set(decided) == set(ids) - set(poisoned), "records not decided: " + ", ".join(
        sorted(set(ids) - set(poisoned) - set(decided)))
    assert report.outcome == "ok" and store.runs()[0]["outcome"] == "ok"
    assert report.counts["pulled"] == RECORDS and report.counts["decided"] == RECORDS - len(poisoned)
    assert report.counts["quarantined"] == len(poisoned) and report.counts["write_failed"] == 0
    assert report.counts["written"] == report.counts["changed"] > RECORDS * 0.9
    assert all(written[rid] == row["target_stage"] for rid, row in decided.items()  # all others written
               if row["target_stage"] not in ("opportunity", "customer"))  # (sales-owned: never touched)
    assert store.outbox_depth() == 0


def test_the_sanitizer_names_the_field_of_every_kind() -> None:
    assert problem("title", "ok") is None and problem("employees", 12.5) is None
    assert problem("title", "a\x00b") == "title: contains a NUL character"
    assert (problem("bant", {"need": "\ud83d"}) or "").startswith("bant.need: contains a lone UTF-16 surrogate")
    assert problem("score", float("-inf")) == "score: number -inf cannot be stored (not finite)"
    assert "outside the years" in (problem("sql_at", "0001-01-01T00:00:00+01:00") or "")
    assert problem("sql_at", "9999-12-31T23:59:59Z") is None  # in range in UTC: fine
    assert problem("sql_at", "2026-11-25") is None and problem("sql_at", "last tuesday") is None
    bad_activity = Activity("call-1", "call", "2026-11-25T10:00:00Z", "Discovery\x00")
    assert contact_problem(Contact("c-1"), [bad_activity]) == "activity call-1 detail: contains a NUL character"


def test_a_page_the_store_refuses_is_stored_record_by_record(database_url: str) -> None:
    """Defence in depth: a value that slipped past the sanitizer fails the page's transaction; the
    page is retried record by record, the refused record quarantined (step `store`), the rest kept."""
    store = Store.open(database_url)
    with hubspot(3) as (app, url):
        syncer = SyncPass(store, connector(url), DEFS)
        report = PassReport("hubspot", "sync", "enforce", (SEED_NOW, SEED_NOW))
        contacts = syncer.connector.read(list(app.portal.records["contacts"])).contacts
        decided = [syncer.decider.one(c, [], None, SEED_NOW, report) for c in contacts]
    decided[1].contact.source = "web\udc80"  # as if a mapping produced it after the check
    syncer.decider.commit(decided, [], report, SEED_NOW, release=True)
    stored = store.records("hubspot", [c.id for c in contacts])
    assert set(stored) == {contacts[0].id, contacts[2].id}
    [refused] = store.quarantined()
    assert refused["record_id"] == contacts[1].id and refused["step"] == "store"
    assert report.counts["stored"] == 2 and report.counts["quarantined"] == 1
    assert {r["record_id"] for r in store.outbox_rows("hubspot")} <= {contacts[0].id, contacts[2].id}
