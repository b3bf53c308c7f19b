"""Batch reads with property history: HubSpot takes at most 50 inputs (seen on real portals: a 400
VALIDATION_ERROR "The maximum number of inputs supported in a batch request for property histories is
50"; PipedreamHQ/pipedream PR #8462). The sandbox refuses more; the connector reads 50 a call."""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from crmsync.crms.hubspot.connector import HISTORY_BATCH
from tests.hubspot_fixtures import TOKEN, connector, hubspot


def test_the_sandbox_refuses_more_than_50_inputs_with_history_as_hubspot_does() -> None:
    with hubspot(60) as (app, url):
        client = HubSpot(access_token=TOKEN, host=url, retry=Retry(total=0))
        ids = [{"id": i} for i in list(app.portal.records["contacts"])[:51]]
        with pytest.raises(ApiException) as refused:
            client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={
                "inputs": ids, "properties": ["email"], "propertiesWithHistory": ["hs_email_last_open_date"]})
        assert refused.value.status == 400
        body = json.loads(refused.value.body)
        assert body["category"] == "VALIDATION_ERROR" and "property histories is 50" in body["message"]
        plain = client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={
            "inputs": ids, "properties": ["email"]})  # without history 100 are allowed
        assert len(plain.results) == 51


def test_the_connector_reads_activity_history_50_contacts_a_call() -> None:
    with hubspot(120) as (app, url):
        conn = connector(url)
        ids = list(app.portal.records["contacts"])
        app.reset_counts()
        found = conn.activities(ids)
        assert set(found) == set(ids)
        statuses = {(row["endpoint"], row["status"]): row["count"] for row in app.call_counts_by_status()}
        assert ("objects.batch_read", 400) not in statuses  # 100 a call would be refused, and the read fail
        assert HISTORY_BATCH == 50
