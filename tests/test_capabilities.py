"""A CRM's optional parts are capabilities of their own (connectors/base.py), checked by the pass with
isinstance: a connector implements only what its CRM has, and a pass keeps state only for the streams its
CRM offers. Real connectors against the sandboxes, a real store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crmsync.connectors.base import ActivityStreams, Connector, DeletedList, EventStream, ObjectStreams
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.hubspot_fixtures import DEFS, SEED_NOW, connector, hubspot
from tests.salesforce_fixtures import salesforce, sf_connector

CAPABILITIES = (EventStream, DeletedList, ActivityStreams, ObjectStreams)


def has(conn: Connector) -> set[str]:
    return {c.__name__ for c in CAPABILITIES if isinstance(conn, c)}


def streams(store: Store, crm: str) -> set[str]:
    return {c["stream"] for c in store.cursors() if c["crm"] == crm}


def test_each_connector_has_only_the_capabilities_of_its_crm(tmp_path: Path) -> None:
    with hubspot(5) as (_, hubspot_url), salesforce(5) as (_, salesforce_url):
        assert has(connector(hubspot_url)) == {"EventStream", "DeletedList", "ObjectStreams"}
        assert has(sf_connector(salesforce_url)) == {"ActivityStreams", "ObjectStreams"}


def test_a_pass_keeps_cursors_only_for_the_streams_its_crm_offers(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    now = SEED_NOW + timedelta(minutes=1)
    with hubspot(5) as (_, url):
        report = SyncPass(store, connector(url), DEFS, clock=lambda: now).run()
        assert report.outcome == "ok" and report.counts["pulled"] == 5
    # the events stream stored first, the daily sweep of archived contacts and the rollout noted
    assert streams(store, "hubspot") == {"contacts", "contacts:events", "contacts:deleted", "contacts:rollout",
                                         "deals"}
    with salesforce(5) as (app, url):
        app.org.clock = lambda: SEED_NOW
        report = SyncPass(store, sf_connector(url), DEFS, clock=lambda: now).run()
        assert report.outcome == "ok" and report.counts["pulled"] == 5
    # no events cursor (its activities come with each lead) and no sweep (its pull finds deleted leads)
    assert streams(store, "salesforce") == {"contacts", "contacts:Task", "contacts:Event",
                                            "contacts:CampaignMember", "contacts:rollout", "deals"}
