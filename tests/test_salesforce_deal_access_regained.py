"""A refused deal stream leaves its cursor where it was: what changed while it was off is read once the
user may read Opportunity again (a reviewer's finding: the refused stream's empty pull moved the cursor)."""

from __future__ import annotations

from datetime import timedelta

from crmsync.connectors.calls import Answer
from crmsync.crms.salesforce.connector import _refused_object
from crmsync.model import ObjectType
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.conftest import SQLITE_ONLY
from tests.hubspot_fixtures import DEFS, SEED_NOW
from tests.salesforce_fixtures import salesforce
from tests.test_salesforce_integration_user import USERNAME, connector, set_up_without_opportunity_read


# SQLite only (a refused stream's cursor: the engine's); PostgreSQL's: test_stream_cursors, test_store_objects
@SQLITE_ONLY
def test_opportunities_are_read_once_opportunity_read_is_granted_after_the_deal_stream_was_off(
        database_url: str) -> None:
    """A pass with the deal stream off (no Read on Opportunity) must not move the `deals` cursor: once an admin
    grants Read and the daemon restarts, the Opportunities that already exist must be read. Before, the
    refused stream yielded no page, `Pull._objects` took that for an empty window and marked the cursor at
    the pass's upper bound, so every Opportunity not modified since was never read (until a manual backfill)."""
    with salesforce(30, custom_fields=False) as (app, url):
        _service, token = set_up_without_opportunity_read(app, url)
        app.org.clock = lambda: SEED_NOW - timedelta(days=2)  # Opportunities that exist before crmsync starts
        opportunities = {app.org.create("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting",
                                                        "CloseDate": "2026-12-01"})["Id"] for i in range(3)}
        app.org.clock = lambda: SEED_NOW
        store = Store.open(database_url)
        off = SyncPass(store, connector(url, token=token), DEFS, clock=lambda: SEED_NOW).run()
        assert off.outcome == "ok"
        assert store.objects("salesforce", object_type=ObjectType.DEAL) == []

        assert any("Opportunity" in line for line in connector(url, USERNAME).setup())  # Read granted again
        restarted = connector(url, token=token)  # the daemon restarted: the connector asks again
        later = SyncPass(store, restarted, DEFS, clock=lambda: SEED_NOW + timedelta(minutes=10)).run()
        assert later.outcome == "ok"
        kept = {row["object_id"] for row in store.objects("salesforce", object_type=ObjectType.DEAL)}
        assert kept == opportunities, f"{len(opportunities - kept)} of {len(opportunities)} Opportunities never read"


def test_only_salesforce_own_not_found_for_an_object_crmsync_reads_is_a_refused_object() -> None:
    """A describe's 404 means "this user may not read it" only with Salesforce's NOT_FOUND body and for an
    object crmsync reads: a gateway's bare 404 stays a failure of the pass (retried by the next one), and
    setup's describe of PermissionSet is not answered with "run crmsync setup"."""
    not_found = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    assert _refused_object(Answer("salesforce", "describe Opportunity", 404, not_found)) == "Opportunity"
    assert _refused_object(Answer("salesforce", "describe Opportunity", 404, "<html>Not Found</html>")) is None
    assert _refused_object(Answer("salesforce", "describe Opportunity", 404, "")) is None
    assert _refused_object(Answer("salesforce", "describe PermissionSet", 404, not_found)) is None
    invalid = [{"errorCode": "INVALID_TYPE", "message": "sObject type 'Lead' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the entity name."}]
    assert _refused_object(Answer("salesforce", "query", 400, invalid)) == "Lead"
