"""Record content (an email, a name, BANT text) in CRM error messages reaches neither Sentry, nor
the logs, nor the store; and each error is one Sentry event, not two."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.utils import event_from_exception

from crmsync import observability
from crmsync.errors import RecordError, RetriableError
from crmsync.logs import configure
from crmsync.redact import register_secrets, scrub_text
from crmsync.store import Store
from tests.conftest import SQLITE_ONLY

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
EMAIL = "ada.lovelace@analytical-engines.co.uk"
NAME = "Ada Lovelace"
BANT = "Inbound demo requests sit for days and they lose a third to slow follow-up"
PERSONAL = (EMAIL, NAME, BANT, TOKEN, "ada.lovelace", "Lovelace")

HUBSPOT_BATCH_ERROR = (  # the shape of a HubSpot batch error (category: message with the refused values)
    f'VALIDATION_ERROR: Property values were not valid: [{{"isValid":false,"message":"{EMAIL} is not a valid '
    f'email","error":"INVALID_EMAIL","name":"email"}},{{"isValid":false,"message":"\'{BANT}\' is longer than '
    f'allowed","error":"INVALID_LENGTH","name":"crmsync_bant_need"}}]')
SALESFORCE_ERROR = (f"Salesforce: FIELD_CUSTOM_VALIDATION_EXCEPTION: Bad value for restricted picklist field: "
                    f"{NAME}; fields [\"LastName\"]")
OUR_OWN = f"lifecyclestage {NAME!r} has no stage in the definitions' HubSpot mapping (token {TOKEN})"


class FakeTransport(Transport):
    """sentry_sdk's `transport` option: keeps the events instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def sentry() -> Iterator[FakeTransport]:
    transport = FakeTransport()
    observability.init_sentry("https://publickey@o1.ingest.sentry.io/1", [TOKEN], release="crmsync@0.1.0",
                              transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    observability._enabled = False
    register_secrets([])


def test_an_error_logged_and_captured_is_one_event_without_record_content(sentry: FakeTransport) -> None:
    log = logging.getLogger("crmsync.daemon")
    for message in (HUBSPOT_BATCH_ERROR, SALESFORCE_ERROR, OUR_OWN):
        error = RecordError("17", message)
        log.error("sync failed, needs attention", extra={"crm": "hubspot", "error": str(error)})  # as the daemon
        observability.capture(error)
    observability.capture(RetriableError(f"HubSpot answered 503 for {EMAIL} (Bearer {TOKEN})"))
    sentry_sdk.flush(2)
    assert len(sentry.events) == 4  # one per capture; the ERROR log lines are no events
    payload = json.dumps(sentry.events)
    for leaked in PERSONAL:
        assert leaked not in payload
    assert "RecordError" in payload and "INVALID_EMAIL" in payload and "crmsync_bant_need" in payload
    assert sentry.events[0]["release"] == "crmsync@0.1.0"


def test_the_sdk_itself_collects_no_local_variables_or_source(sentry: FakeTransport) -> None:
    """Before `scrub_event` runs: the event sentry-sdk builds from a raised error has frames, without their
    local variables or source lines (data_collection, not the deprecated send_default_pii)."""
    def failing(email: str) -> None:
        raise RecordError("17", "refused")
    try:
        failing(EMAIL)
    except RecordError:
        event, _hint = event_from_exception(sys.exc_info(), client_options=sentry_sdk.get_client().options)
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames and not any({"vars", "pre_context", "context_line"} & frame.keys() for frame in frames)
    assert EMAIL not in json.dumps(event)


def test_log_lines_carry_no_record_content(capsys: pytest.CaptureFixture[str]) -> None:
    register_secrets([TOKEN])
    try:
        configure("json", "INFO")
        log = logging.getLogger("crmsync.sync")
        log.warning("write refused for %s", EMAIL, extra={"error": HUBSPOT_BATCH_ERROR, "count": 2})
        log.error(SALESFORCE_ERROR)
        configure("console", "INFO")
        log.warning("quarantined", extra={"reason": OUR_OWN})
        err = capsys.readouterr().err
    finally:
        register_secrets([])
    lines = err.splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["count"] == 2
    for leaked in PERSONAL:
        assert leaked not in err
    assert "INVALID_EMAIL" in err and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in err


# SQLite only (scrubbing is before the store); PostgreSQL's run errors, quarantine: test_run_closing, test_store
@SQLITE_ONLY
def test_stored_errors_carry_no_record_content(database_url: str) -> None:
    store = Store.open(database_url)
    run_id = store.start_run("hubspot", "incremental", "enforce", None)
    store.finish_run(run_id, "failed", {}, SALESFORCE_ERROR)
    with store.transaction() as c:
        store.quarantine(c, "hubspot", "17", "write", HUBSPOT_BATCH_ERROR)
    stored = json.dumps([store.runs(1), store.quarantined()], default=str)
    for leaked in PERSONAL:
        assert leaked not in stored
    assert "INVALID_EMAIL" in stored


@pytest.mark.parametrize("text", [
    "it's the owner's call", "HTTP 429: rate limit, retry after 10 s", "record 17: no id", "hs_lead_status",
    'fields ["CRM_Stage__c"] and code "INVALID_OPTION"', "release crmsync 0.1.0 on 2026-11-26T12:00:00Z",
])
def test_scrubbing_keeps_what_says_what_failed(text: str) -> None:
    assert scrub_text(text) == text


def test_scrubbing_bounds_long_texts() -> None:
    assert len(scrub_text("x" * 1_000_000)) < 4100
    assert scrub_text("'" + "a" * 3000).startswith("'aaa")  # an unclosed quote is left alone
