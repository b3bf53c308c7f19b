"""Batches as HubSpot answers them: a whole batch refused for one invalid value, associations paged
per contact, search limited per second without headers, custom lifecycle stages in the portal's order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from crmsync.definitions import load_definitions
from crmsync.model import WriteBack
from tests.builders import DEFAULT_DEFINITIONS, EPOCH, LATER
from tests.hubspot_fixtures import TOKEN, connector, hubspot, need_shared
from tests.test_sync_e2e import post


def recorded(name: str) -> Any:
    return json.loads(need_shared("recorded", "hubspot", name).read_text())


def raw_client(url: str) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))


# --- a batch refused as a whole ------------------------------------------------------------------


def test_one_invalid_value_refuses_the_whole_batch_as_recorded_and_nothing_is_written() -> None:
    real = recorded("batch_update_400_invalid_property.json")
    with hubspot(3) as (app, url):
        ids = list(app.portal.records["contacts"])
        with pytest.raises(ApiException) as raised:
            raw_client(url).crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={"inputs": [
                {"id": ids[0], "properties": {"jobtitle": "CFO"}},
                {"id": ids[1], "properties": {"first000name": "x"}}]})
        assert raised.value.status == 400
        body = json.loads(raised.value.body)
        assert set(body) == set(real)  # status, message, correlationId, errors, category
        assert body["category"] == real["category"] and body["status"] == real["status"]
        assert body["message"].startswith("Property values were not valid: [")
        assert [set(e) for e in body["errors"]] == [set(real["errors"][0])]
        assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
        assert app.portal.records["contacts"][ids[0]].properties.get("jobtitle") != "CFO"  # nothing updated


def test_unknown_ids_are_still_per_record_errors_in_a_207_as_recorded() -> None:
    real = recorded("batch_update_207_not_found.json")
    with hubspot(1) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        response = raw_client(url).crm.contacts.batch_api.update_with_http_info(
            batch_input_simple_public_object_batch_input={"inputs": [
                {"id": cid, "properties": {"jobtitle": "CFO"}}, {"id": "999999", "properties": {"jobtitle": "x"}}]})
        assert response[1] == 207
        error = response[0].errors[0]
        assert error.category == real["errors"][0]["category"] and error.context == {"ids": ["999999"]}


def test_the_connector_isolates_the_bad_records_and_writes_the_others() -> None:
    with hubspot(100) as (app, url):
        ids = list(app.portal.records["contacts"])
        bad = {ids[17], ids[80]}
        writes = [WriteBack(i, {"crmsync_sla_state": "on_track",
                                **({"hs_lead_status": "NOT_A_STATUS"} if i in bad else {})}) for i in ids]
        app.reset_counts()
        results = connector(url).write(writes)
        assert [r.record_id for r in results] == ids  # one result per write, in order
        failed = {r.record_id: r for r in results if not r.ok}
        assert set(failed) == bad
        assert all(not r.retriable and "NOT_A_STATUS" in r.error and "HTTP 400" in r.error for r in failed.values())
        records = app.portal.records["contacts"]
        assert all(records[i].properties.get("crmsync_sla_state") == "on_track" for i in ids if i not in bad)
        assert all("crmsync_sla_state" not in records[i].properties for i in bad)
        assert app.call_counts()["objects.batch_update"] <= 1 + 2 * 2 * 7  # halving: about 2·log2(100) per bad one


# --- associations paged per contact --------------------------------------------------------------


def test_a_contact_with_500_calls_gets_all_500() -> None:
    with hubspot(2, association_page=100) as (app, url):
        busy, quiet = list(app.portal.records["contacts"])
        app.portal.associations["calls"].pop(busy, None)
        for n in range(500):
            call = app.portal.create("calls", {"hs_call_title": f"call {n}", "hs_call_direction": "OUTBOUND",
                                               "hs_timestamp": "2026-11-01T10:00:00.000Z"})
            app.portal.associate("calls", busy, call.id)
        conn = connector(url, engagement_types=("calls",))
        conn.capabilities()
        app.reset_counts()
        found = conn.activities([busy, quiet])
        assert len([a for a in found[busy] if a.kind == "call"]) == 500
        assert app.call_counts()["associations.batch_read"] == 5  # 100 a page, only the busy contact asked again


def test_association_reads_answer_the_recorded_shapes() -> None:
    real = recorded("assoc_v4_contacts_to_companies.json")
    with hubspot(2) as (app, url):
        linked, lonely = list(app.portal.records["contacts"])
        app.portal.associations["meetings"].pop(lonely, None)
        call = app.portal.create("meetings", {"hs_meeting_title": "Intro"})
        app.portal.associate("meetings", linked, call.id)
        body = post_json(url, "/crm/v4/associations/contacts/meetings/batch/read",
                         {"inputs": [{"id": linked}, {"id": lonely}]})
        assert body["status_code"] == 207
        answer = body["json"]
        assert isinstance(answer["results"][0]["to"][0]["toObjectId"], int)  # a number, as recorded
        assert isinstance(real["results"][0]["to"][0]["toObjectId"], int)
        error = answer["errors"][0]
        assert set(error) == set(real["errors"][0])
        assert error["subCategory"] == real["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
        assert error["context"]["fromObjectId"] == [lonely]


def post_json(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {"status_code": response.status, "json": json.loads(response.read())}


# --- search: 5 per second, no headers ------------------------------------------------------------


def test_search_is_limited_per_second_without_rate_limit_headers() -> None:
    with hubspot(3, rate_limit="100/10s") as (_app, url):
        client = raw_client(url)
        search = client.crm.contacts.search_api
        statuses, headers = [], []
        for _ in range(8):
            try:
                _, status, answer_headers = search.do_search_with_http_info(public_object_search_request={"limit": 1})
                statuses.append(status)
                headers.append(dict(answer_headers))
            except ApiException as exc:
                statuses.append(exc.status)
                headers.append(dict(exc.headers or {}))
        assert statuses[:4] == [200] * 4 and 429 in statuses[4:]  # HubSpot's published 4/s
        assert not any(name.startswith("X-HubSpot-RateLimit") for h in headers for name in h)
        _, _, other = client.crm.contacts.basic_api.get_page_with_http_info(limit=1)
        assert "X-HubSpot-RateLimit-Max" in other  # the burst limit's headers stay on other endpoints


def test_a_pull_of_many_pages_is_paced_and_gets_no_429() -> None:
    with hubspot(1400) as (app, url):  # 7 pages of 200
        conn = connector(url)
        pages = list(conn.pull_changed(EPOCH, LATER))
        assert sum(len(p.contacts) for p in pages) == 1400
        statuses = {(row["endpoint"], row["status"]) for row in app.call_counts_by_status()}
        assert statuses == {("objects.search", 200)}
        assert conn.search_pace is not None and conn.search_pace.waited > 0  # it had to wait, and did


# --- custom lifecycle stages ---------------------------------------------------------------------


def definitions_with_sal(tmp_path: Path, value: str) -> Any:
    text = DEFAULT_DEFINITIONS.read_text()
    old = "      sal: marketingqualifiedlead"
    assert old in text
    path = tmp_path / "definitions.yaml"
    path.write_text(text.replace(old, f'      sal: "{value}"  #', 1))
    return load_definitions(path)


def test_a_revert_to_a_custom_stage_is_cleared_then_set_and_not_sent_again(tmp_path: Path) -> None:
    with hubspot(1) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        custom = post(url, "/__sandbox/lifecycle-stages", {"label": "Sales accepted", "before": "salesqualifiedlead"})
        value = custom["value"]
        assert value.isdigit()  # custom stages have numeric internal ids
        prop = raw_client(url).crm.properties.core_api.get_by_name("contacts", "lifecyclestage")
        order = [o.value for o in sorted(prop.options, key=lambda o: o.display_order)]
        assert order.index("marketingqualifiedlead") < order.index(value) < order.index("salesqualifiedlead")
        app.portal.update("contacts", cid, {"lifecyclestage": "salesqualifiedlead"})

        conn = connector(url, definitions=definitions_with_sal(tmp_path, value))
        assert not conn.map.moves_lifecycle_back("salesqualifiedlead", value)  # HubSpot's default order misses it
        (contact,) = conn.read([cid]).contacts
        change = conn.changes(contact, {"stage": "sal"})
        assert change is not None and change.properties["lifecyclestage"] == value
        app.reset_counts()
        assert all(r.ok for r in conn.write([change]))
        assert app.call_counts() == {"properties.get": 1, "objects.batch_update": 2}  # order, clear, set
        assert app.portal.records["contacts"][cid].properties["lifecyclestage"] == value

        (again,) = conn.read([cid]).contacts
        assert again.stage == "sal"
        assert conn.changes(again, {"stage": "sal"}) is None  # nothing to send on the next pass


def test_the_sandbox_keeps_custom_stages_forward_only() -> None:
    with hubspot(1) as (app, url):
        cid = next(iter(app.portal.records["contacts"]))
        value = app.portal.add_lifecycle_stage("Sales accepted", before="salesqualifiedlead")
        update = raw_client(url).crm.contacts.basic_api.update
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": "salesqualifiedlead"}})
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": value}})
        assert app.portal.records["contacts"][cid].properties["lifecyclestage"] == "salesqualifiedlead"  # ignored
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": ""}})
        update(cid, simple_public_object_input={"properties": {"lifecyclestage": value}})
        assert app.portal.records["contacts"][cid].properties["lifecyclestage"] == value


# --- batch answers matched to records ------------------------------------------------------------


def test_batch_errors_are_matched_to_records_however_they_name_them() -> None:
    from types import SimpleNamespace as Obj

    from crmsync.crms.hubspot.connector import _per_record

    ids = ["101", "102", "103", "104"]
    response = Obj(results=[Obj(id="101")], errors=[
        Obj(category="OBJECT_NOT_FOUND", message="gone", context={"ids": ["102"]}),
        Obj(category="VALIDATION_ERROR", message="bad value", context={"objectId": ["103"]}),
        Obj(category="VALIDATION_ERROR", message="Property values were not valid for 104", context={}),
    ])
    by_id = {r.record_id: r for r in _per_record(ids, response)}
    assert by_id["101"].ok
    assert [by_id[i].ok for i in ("102", "103", "104")] == [False, False, False]
    assert not by_id["104"].retriable and "104" in by_id["104"].error
    unnamed = _per_record(["201", "202"], Obj(results=[Obj(id="201")], errors=[
        Obj(category="INTERNAL_ERROR", message="something failed", context={})]))
    assert unnamed[0].ok and not unnamed[1].ok and unnamed[1].retriable  # no result, an error: not written


def test_a_non_numeric_id_stops_the_pull_with_a_clear_error() -> None:
    from crmsync.crms.hubspot.connector import _keyset_id
    from crmsync.errors import FatalError

    assert _keyset_id("103107104018") == 103107104018  # 12-digit ids, as recorded
    with pytest.raises(FatalError, match="id 'abc', which is not a number"):
        _keyset_id("abc")
