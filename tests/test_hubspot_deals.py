"""The HubSpot deal stream: reps act through hubspot-api-client on the sandbox, `pull_deals` reads what they did.

Deals are searched by `hs_lastmodifieddate` on the contact pull's keyset window, their contacts come from the
v4 batch associations read (paged per deal), and `hs_is_closed` / `hs_is_closed_won` are HubSpot's own flags,
calculated from the stage's metadata in the pipeline.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import AssociationSpec, PublicAssociationsForObject, PublicObjectId
from hubspot.crm.deals import SimplePublicObjectInput as DealInput
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.deals.exceptions import ApiException
from urllib3.util.retry import Retry

from crmsync.connectors.base import ObjectStreams
from crmsync.model import Deal, ObjectType
from tests.hubspot_fixtures import SEED_NOW, TOKEN, connector, hubspot

DEAL_TO_CONTACT = 3  # HUBSPOT_DEFINED deal -> contact (HubSpot associations v4 type ids)
BEFORE, AFTER = SEED_NOW - timedelta(days=1), SEED_NOW + timedelta(days=1)


def rep(url: str) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))


def create_deal(client: HubSpot, contact_ids: list[str], **properties: str) -> str:
    body = {"dealname": "Acme renewal", "pipeline": "default", "dealstage": "appointmentscheduled", **properties}
    deal = client.crm.deals.basic_api.create(DealCreate(properties=body, associations=[
        PublicAssociationsForObject(to=PublicObjectId(id=cid), types=[
            AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_CONTACT)])
        for cid in contact_ids]))
    return str(deal.id)


def pulled(url: str, **options: object) -> tuple[list[Deal], list[str], list[str | None]]:
    """Every deal of the window, the errors' ids and each page's resume key."""
    deals, errors, keys = [], [], []
    for page in connector(url).pull_deals(BEFORE, AFTER, **options):  # type: ignore[arg-type]
        deals += page.objects
        errors += [e.record_id for e in page.errors]
        keys.append(page.resume_key)
    return deals, errors, keys


def test_a_rep_creates_a_deal_and_wins_it_and_the_pull_sees_both_steps() -> None:
    with hubspot(4) as (app, url):
        first, second = list(app.portal.records["contacts"])[:2]
        client = rep(url)
        deal_id = create_deal(client, [second, first], amount="24000.50", deal_currency_code="EUR",
                              closedate="2026-12-31T00:00:00Z", hubspot_owner_id="77")
        assert isinstance(connector(url), ObjectStreams)

        (deal,), errors, _ = pulled(url)
        assert errors == [] and deal.id == deal_id and deal.crm == "hubspot"
        assert (deal.name, deal.stage, deal.pipeline) == ("Acme renewal", "appointmentscheduled", "default")
        assert (deal.amount, deal.currency, deal.owner_id) == ("24000.50", "EUR", "77")
        assert deal.contact_ids == tuple(sorted((first, second), key=int))
        assert (deal.is_closed, deal.is_won) == (False, False)
        assert deal.created_at == app.portal.records["deals"][deal_id].properties["createdate"]
        assert deal.close_date == "2026-12-31T00:00:00Z"

        client.crm.deals.basic_api.update(deal_id, DealInput(properties={"dealstage": "closedwon"}))
        (won,), _, _ = pulled(url)
        assert (won.stage, won.is_closed, won.is_won) == ("closedwon", True, True)
        # HubSpot's lifecycle sync moved the contacts along (state.deal_lifecycle_sync)
        assert app.portal.records["contacts"][first].properties["lifecyclestage"] == "customer"


def test_closed_lost_is_closed_and_not_won_and_the_flags_are_hubspots_not_the_reps() -> None:
    with hubspot(1) as (app, url):
        contact = next(iter(app.portal.records["contacts"]))
        client = rep(url)
        deal_id = create_deal(client, [contact], dealstage="closedlost")
        (deal,), _, _ = pulled(url)
        assert (deal.is_closed, deal.is_won) == (True, False)
        with pytest.raises(ApiException) as refused:  # calculated by HubSpot: read-only for an API write
            client.crm.deals.basic_api.update(deal_id, DealInput(properties={"hs_is_closed_won": "true"}))
        assert refused.value.status == 400


def test_the_pull_pages_by_id_resumes_after_a_page_and_reads_only_the_window() -> None:
    with hubspot(3) as (app, url):
        contact = next(iter(app.portal.records["contacts"]))
        client = rep(url)
        ids = [create_deal(client, [contact], dealname=f"Deal {i}") for i in range(205)]
        deals, errors, keys = pulled(url)
        assert errors == [] and [d.id for d in deals] == ids  # two pages of 200 and 5, in id order
        assert keys == [ids[199], ids[204]]
        rest, _, _ = pulled(url, after_key=ids[199])
        assert [d.id for d in rest] == ids[200:]
        calls = app.call_counts()
        assert calls["objects.search"] >= 3 and calls["associations.batch_read"] >= 3
        outside = list(connector(url).pull_deals(AFTER, AFTER + timedelta(days=1)))
        assert [p.objects for p in outside] == [[]]


def test_a_deal_with_many_contacts_gets_them_all_through_association_paging() -> None:
    with hubspot(7, association_page=3) as (app, url):
        contacts = list(app.portal.records["contacts"])
        create_deal(rep(url), contacts)
        (deal,), _, _ = pulled(url)
        assert deal.contact_ids == tuple(sorted(contacts, key=int))
        assert app.call_counts()["associations.batch_read"] == 3  # 3 + 3 + 1


def test_a_deal_without_contacts_has_none_and_is_still_pulled() -> None:
    with hubspot(0) as (_app, url):
        deal_id = create_deal(rep(url), [])
        (deal,), errors, _ = pulled(url)
        assert deal.id == deal_id and deal.contact_ids == () and errors == []


def test_archived_deals_are_listed_apart_from_archived_contacts_100_a_call() -> None:
    """Search never returns an archived deal: `deleted()` lists them (`GET /crm/v3/objects/deals?archived=true`,
    paged by `paging.next.after` like the contacts' list), each page named by its object type."""
    with hubspot(3) as (app, url):
        client = rep(url)
        contact = next(iter(app.portal.records["contacts"]))
        deals = [create_deal(client, []) for _ in range(102)]
        client.crm.contacts.basic_api.archive(contact)
        for deal_id in deals[:101]:
            client.crm.deals.basic_api.archive(deal_id)
        app.reset_counts()
        listed = list(connector(url).deleted())
        assert app.call_counts()["objects.list"] == 3  # contacts: 1 page; deals: 100 + 1
    assert [(kind, len(ids)) for kind, ids in listed] == [(ObjectType.CONTACT, 1), (ObjectType.DEAL, 100),
                                                          (ObjectType.DEAL, 1)]
    assert listed[0][1] == [contact] and sorted(listed[1][1] + listed[2][1]) == sorted(deals[:101])
    assert deals[101] not in listed[1][1] + listed[2][1]  # a live deal is not listed


def test_a_garbage_amount_is_kept_loose_and_garbage_flags_quarantine_the_deal_not_the_page() -> None:
    """The model keeps CRM values loosely typed: an amount HubSpot would never accept (a portal whose data
    came through an import or a changed property type) is kept for whoever totals amounts to judge; a closed
    flag that is neither true nor false cannot become the model's bool, so that deal is a RecordError."""
    with hubspot(1) as (app, url):
        contact = next(iter(app.portal.records["contacts"]))
        client = rep(url)
        loose, broken, fine = (create_deal(client, [contact], dealname=n) for n in ("loose", "broken", "fine"))
        app.portal.records["deals"][loose].properties["amount"] = "12k"  # a stored value, not an API write
        app.portal.records["deals"][broken].properties["hs_is_closed"] = "maybe"
        deals, errors, _ = pulled(url)
        assert [d.id for d in deals] == [loose, fine] and errors == [broken]
        assert deals[0].amount == "12k"


def test_the_pipeline_says_which_stages_are_closed_and_won() -> None:
    with hubspot(0) as (_app, url):
        (pipeline,) = rep(url).crm.pipelines.pipelines_api.get_all("deals").results
        closed = {s.id: s.metadata for s in pipeline.stages if s.metadata["isClosed"] == "true"}
        assert pipeline.id == "default" and closed == {"closedwon": {"isClosed": "true", "probability": "1.0"},
                                                        "closedlost": {"isClosed": "true", "probability": "0.0"}}


@pytest.mark.parametrize(("tier", "status"), [("enterprise", 200), ("professional", 403)])
def test_the_date_versioned_events_path_answers_as_the_v3_path(tier: str, status: int) -> None:
    import json
    import urllib.error
    import urllib.request

    def get(path: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(f"{url}{path}?objectType=contact&eventType=e_visited_page&limit=5",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    with hubspot(10, tier=tier) as (_app, url):
        dated, v3 = get("/events/event-occurrences/2026-03"), get("/events/v3/events")
        assert dated[0] == v3[0] == status
        if status == 200:
            assert dated[1] == v3[1] and dated[1]["results"]
