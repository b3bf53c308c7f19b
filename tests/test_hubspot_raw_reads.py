"""The connector reads HubSpot's answers itself (`_parsed`, json.loads and datetime.fromisoformat) instead of
through hubspot-api-client's models (dateutil for every timestamp). The client's own deserializer is the
oracle: for recorded answers (../shared/recorded/hubspot) and generated ones, the contacts, activities and
association pairs the connector maps are the same as those it mapped from the models, and an answer the
models refused (a required field missing, a timestamp that is not a date) is refused too (then a malformed
answer, retried: tests/test_error_table.py, tests/test_network_faults.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from dateutil.parser import parse as dateutil_parse
from hubspot.crm.associations.v4 import ApiClient as AssociationsClient
from hubspot.crm.contacts import ApiClient as ContactsClient
from hubspot.events import ApiClient as EventsClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.connectors.core import mapped
from crmsync.crms.hubspot.connector import ASSOCIATIONS, EVENTS, OBJECTS, HubSpotConnector, _parsed, _timestamp
from crmsync.crms.hubspot.mapping import EMAIL_HISTORY, PAGE_AND_FORM_HISTORY
from tests.builders import scaled
from tests.hubspot_fixtures import connector, hubspot, need_shared

JSON_TYPE = "application/json;charset=utf-8"
CLIENTS = {"contacts": ContactsClient(), "events": EventsClient(), "associations": AssociationsClient()}


class _Answer:
    """What the client's `deserialize` reads: the body as `__call_api` decoded it."""

    def __init__(self, body: bytes) -> None:
        self.data = body.decode("utf-8")


def _connector() -> HubSpotConnector:
    conn = connector("http://127.0.0.1:9")  # never called: mapping only
    conn.map.industry_labels = {}  # a text industry property: no call for its options
    return conn


CONN = _connector()


# --- the old path (the models, mapped as the connector did before) and the new one ---------------------


def _oracle(kind: str, body: bytes) -> Any:
    """What the connector mapped from the client's models (the code it had before `_parsed`)."""
    if kind == "contacts":
        answer = CLIENTS["contacts"].deserialize(_Answer(body), "BatchResponseSimplePublicObject")
        contacts, errors = mapped(answer.results, lambda o: CONN.map.to_contact(o.id, o.properties or {},
                                                                                 o.updated_at))
        history = {str(o.id): CONN.map.from_history(str(o.id), {
            name: [{"value": v.value, "timestamp": v.timestamp} for v in versions]
            for name, versions in (o.properties_with_history or {}).items()}) for o in answer.results}
        return contacts, [(e.record_id, e.reason) for e in errors], history
    if kind == "events":
        answer = CLIENTS["events"].deserialize(_Answer(body), "CollectionResponseExternalUnifiedEvent")
        return [(str(e.object_id), a) for e in answer.results
                if (a := CONN.map.event(e.event_type, e.id, e.occurred_at, e.properties or {})) is not None]
    answer = CLIENTS["associations"].deserialize(_Answer(body),
                                                 "BatchResponsePublicAssociationMultiWithLabelWithErrors")
    return [(str(r._from.id), str(t.to_object_id)) for r in answer.results for t in r.to or []]


def _new(kind: str, body: bytes) -> Any:
    """What the connector maps from `_parsed` (its own methods for each read)."""
    answer = _parsed(body, JSON_TYPE, {"contacts": OBJECTS, "events": EVENTS}.get(kind, ASSOCIATIONS))
    if kind == "contacts":
        page = CONN._mapped(answer["results"])
        return page.contacts, [(e.record_id, e.reason) for e in page.errors], CONN._histories(answer["results"])
    if kind == "events":
        return list(CONN._events(answer["results"]))
    return [(str(r["from"]["id"]), str(t["toObjectId"])) for r in answer["results"] for t in r.get("to") or []]


def _outcome(read: Any, kind: str, body: bytes) -> Any:
    try:
        return "mapped", read(kind, body)
    except Exception:  # the connector classifies any failure of reading a 2xx answer as a malformed answer
        return "refused", None


def _same(kind: str, body: bytes) -> Any:
    new, old = _outcome(_new, kind, body), _outcome(_oracle, kind, body)
    assert new == old
    return new


# --- recorded answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [
    ("search_contacts_p1.json", "contacts"), ("search_contacts_p2.json", "contacts"),
    ("batch_read_contacts.json", "contacts"), ("list_contacts.json", "contacts"),
    ("events_e_visited_page.json", "events"), ("assoc_v4_contacts_to_companies.json", "associations"),
])
def test_recorded_answers_map_as_through_the_client_models(name: str, kind: str) -> None:
    answer = json.loads(need_shared("recorded", "hubspot", name).read_text())
    answer.setdefault("status", "COMPLETE")  # the batch model wants these (a search or list answer has none)
    answer.setdefault("startedAt", "2026-05-21T23:20:54.333Z")
    answer.setdefault("completedAt", "2026-05-21T23:20:54.374Z")
    outcome, found = _same(kind, json.dumps(answer).encode())
    assert outcome == "mapped" and found and (kind != "contacts" or found[0])


# --- timestamps: HubSpot's form by fromisoformat, the same value (and offset) as dateutil gives -------------


def _iso(moment: datetime, digits: int, zone: str) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits] if digits <= 6 else "." + f"{moment.microsecond:06d}123"
    return text + zone


ZONES = st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-05:30", "+14:00", "-23:59", "", "+0100", " UTC"])
STAMPS = st.one_of(
    st.builds(_iso, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
              st.sampled_from([0, 1, 3, 6, 9]), ZONES),
    st.sampled_from(["2026-11-25T12:00:00Z", "2026-11-25T12:00:00.000Z", "2026-02-30T12:00:00Z",
                     "2026-13-01T00:00:00Z", "2026-11-25T24:00:00Z", "10000-01-01T00:00:00Z",
                     "9999-12-31T23:59:59-01:00", "2026-11-25", "2026-11-25 12:00:00", "not a date", "",
                     "1764072000000"]),
    st.text(max_size=25), st.integers(), st.none(),
)


@settings(max_examples=scaled(ci=300, nightly=3000), deadline=None)
@given(STAMPS)
def test_a_timestamp_reads_as_dateutil_reads_it(value: Any) -> None:
    try:
        expected = dateutil_parse(value)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 - whatever dateutil raises, the answer is refused
            _timestamp(value)
        return
    found = _timestamp(value)
    assert (found, found.utcoffset()) == (expected, expected.utcoffset())


def test_hubspot_s_own_forms_take_the_fast_path() -> None:
    """With and without fractions, Z or an offset: datetime.fromisoformat (Python 3.11 reads "Z")."""
    assert _timestamp("2026-11-25T12:00:00.123Z") == datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
    assert _timestamp("2020-01-24T16:27:59Z") == datetime(2020, 1, 24, 16, 27, 59, tzinfo=UTC)
    assert _timestamp("2026-11-25T12:00:00+01:00").utcoffset() == timedelta(hours=1)
    assert _timestamp("2026-11-25T12:00:00Z").tzinfo is UTC  # fromisoformat's, not dateutil's tzutc()
    assert isinstance(_timestamp("2026-11-25T12:00:00.1-05:30").tzinfo, timezone)


# --- generated answers ------------------------------------------------------------------------------------

HUBSPOT_FORM = st.builds(_iso, st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
                         st.sampled_from([3, 3, 0, 6]), st.sampled_from(["Z", "Z", "+00:00", "-05:00"]))
# most generated answers are read (one stamp in 40 from anywhere, so some are refused)
MOSTLY_READ = st.integers(0, 39).flatmap(lambda n: STAMPS if n == 0 else HUBSPOT_FORM)
VALUES = st.one_of(st.text(max_size=12), st.none(), st.integers(-5, 5), st.booleans(), STAMPS)
STAGES = st.sampled_from(["lead", "marketingqualifiedlead", "salesqualifiedlead", "customer", "nonsense", ""])
PROPERTIES = st.fixed_dictionaries({}, optional={
    "email": VALUES, "firstname": VALUES, "industry": VALUES, "lifecyclestage": STAGES,
    "lastmodifieddate": STAMPS, "createdate": STAMPS, "num_associated_deals": VALUES, "crmsync_mql_at": STAMPS})
VERSION = st.fixed_dictionaries({"value": st.one_of(st.text(min_size=1, max_size=12), VALUES),
                                 "timestamp": MOSTLY_READ,
                                 "sourceType": st.sampled_from(["API", None])})
HISTORY = st.dictionaries(st.sampled_from([*EMAIL_HISTORY, *PAGE_AND_FORM_HISTORY]), st.lists(VERSION, max_size=3),
                          max_size=4)
OBJECT = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(1, 10**12).map(str), st.integers(1, 99), st.sampled_from(["", None])),
     "properties": st.one_of(PROPERTIES, st.none()), "createdAt": MOSTLY_READ, "updatedAt": MOSTLY_READ},
    optional={"propertiesWithHistory": HISTORY, "archivedAt": MOSTLY_READ, "archived": st.booleans()})
EVENT = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=8), "objectId": st.one_of(st.integers(1, 10**9), st.text(max_size=5)),
     "objectType": st.just("CONTACT"), "eventType": st.sampled_from(["e_visited_page", "e_form_submission", "x"]),
     "occurredAt": MOSTLY_READ},
    optional={"properties": st.dictionaries(st.sampled_from(["hs_url", "hs_page_title", "hs_form_title"]), VALUES)})
ENVELOPE = {"status": "COMPLETE", "startedAt": "2026-11-25T12:00:00.000Z", "completedAt": "2026-11-25T12:00:01.000Z"}


# Sizes: each generated answer runs the same mapping code; what varies is shapes and stamps, and stamps alone
# get 300 examples above (one in 40 generated here is from anywhere, so some answers are refused). 50 answers
# of up to 4 contacts with history cover the shapes in CI (the oracle, dateutil, is the slow part); nightly more.
@settings(max_examples=scaled(ci=50, nightly=1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OBJECT, max_size=4))
def test_generated_contact_answers_map_as_through_the_client_models(results: list[dict[str, Any]]) -> None:
    _same("contacts", json.dumps({**ENVELOPE, "results": results}).encode())


@settings(max_examples=scaled(ci=40, nightly=1000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, max_size=4), st.one_of(st.none(), st.fixed_dictionaries({"next": st.fixed_dictionaries(
    {}, optional={"after": st.text(max_size=4)})})))
def test_generated_event_answers_map_as_through_the_client_models(results: list[dict[str, Any]],
                                                                  paging: Any) -> None:
    answer: dict[str, Any] = {"results": results, **({"paging": paging} if paging is not None else {})}
    _same("events", json.dumps(answer).encode())


@settings(max_examples=scaled(ci=30, nightly=1000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({
    "from": st.fixed_dictionaries({"id": st.one_of(st.integers(1, 10**9).map(str), st.integers(1, 99))}),
    "to": st.lists(st.fixed_dictionaries({"toObjectId": st.one_of(st.integers(1, 10**12), st.text(max_size=4)),
                                          "associationTypes": st.just([])}), max_size=3)}), max_size=3))
def test_generated_association_answers_map_as_through_the_client_models(results: list[dict[str, Any]]) -> None:
    _same("associations", json.dumps({**ENVELOPE, "results": results}).encode())


@pytest.mark.parametrize("body", [b"", b"<html>", b'{"results": [', b"[]", b"\xff\xfe{}",
                                  b'{"results": [{"id": "1", "properties": []}]}'])
def test_a_body_the_client_could_not_read_is_refused(body: bytes) -> None:
    assert _outcome(_new, "contacts", body) == ("refused", None) == _outcome(_oracle, "contacts", body)


@pytest.mark.parametrize("body", [b'{"total": 1}', b'{"results": null}', b'{"results": ["1"]}'])
def test_an_answer_without_a_list_of_results_is_refused_never_read_as_no_data(body: bytes) -> None:
    """Stricter than the client's models, which made `results` None (the connector read no data) or an
    object of nothing: such a 2xx answer is malformed (retried), as an empty or cut-short one is."""
    assert _outcome(_new, "contacts", body) == ("refused", None)
    assert _outcome(_new, "events", body) == ("refused", None)


def test_a_read_takes_the_whole_body_and_gives_the_connection_back_to_the_pool() -> None:
    """`_preload_content=False` leaves the body on the socket: `_raw` reads all of it, so urllib3 puts the
    connection back in the client's pool and the next call on the same API object reuses it."""
    with hubspot(3) as (app, url):
        conn = connector(url)
        api = conn.client.crm.contacts.batch_api  # kept by the connector (`_Apis`), with its pool
        ids = sorted(app.portal.records["contacts"])
        body = {"inputs": [{"id": i} for i in ids], "properties": ["email"], "propertiesWithHistory": []}
        for _ in range(3):
            answer = conn._read("read contacts", api.read, OBJECTS, batch_read_input_simple_public_object_id=body)
            assert sorted(o["id"] for o in answer["results"]) == ids
            assert api.api_client.last_response.isclosed()
        (pool,) = api.api_client.rest_client.pool_manager.pools._container.values()
        assert (pool.num_connections, pool.num_requests) == (1, 3)
