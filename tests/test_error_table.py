"""The one error table (crmsync/connectors/calls.py): each row, and the invariants over all answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from crmsync.connectors.calls import Answer, SessionExpired, classify, quota_reset, shape
from crmsync.connectors.retry import RetryPolicy
from crmsync.errors import AuthError, FatalError, QuotaError, RecordError, RetriableError, StreamRefused

NOW = datetime(2026, 11, 26, 22, 41, 7, tzinfo=UTC)
SF_LOCK = [{"message": "unable to obtain exclusive access to this record", "errorCode": "UNABLE_TO_LOCK_ROW"}]
HS_DAILY = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "policyName": "DAILY"}  # specs/hubspot/NOTES.md, Rate limits / 429


@pytest.mark.parametrize(("answer", "expected"), [
    (Answer("HubSpot", "search", 429, json.dumps({"category": "RATE_LIMITS"}), retry_after=3.0), RetriableError),
    (Answer("HubSpot", "search", 502, "<html><body>Bad Gateway</body></html>"), RetriableError),
    (Answer("HubSpot", "search", None, exception=urllib3.exceptions.ProtocolError("reset")), RetriableError),
    (Answer("HubSpot", "search", None, exception=urllib3.exceptions.ReadTimeoutError(None, "/", "slow")),
     RetriableError),
    (Answer("HubSpot", "search", 200, ""), RetriableError),
    (Answer("HubSpot", "search", 200, "<!DOCTYPE html><html>Please sign in to the Wi-Fi</html>"), RetriableError),
    (Answer("HubSpot", "search", 404, "<html>Not Found</html>"), FatalError),
    (Answer("HubSpot", "search", 200, '{"results": [{"id": "1"'), RetriableError),
    (Answer("HubSpot", "search", 200, "{}", unreadable=True), RetriableError),
    (Answer("Salesforce", "update", 400, SF_LOCK), RetriableError),
    (Answer("Salesforce", "query", 401, [{"errorCode": "INVALID_SESSION_ID"}]), SessionExpired),
    (Answer("HubSpot", "search", 401, json.dumps({"category": "INVALID_AUTHENTICATION"})), AuthError),
    (Answer("HubSpot", "search", 403, json.dumps({"category": "MISSING_SCOPES"})), AuthError),
    (Answer("HubSpot", "search", 403, json.dumps({"category": "MISSING_SCOPES", "errors": [
        {"context": {"requiredScopes": ["contacts"]}}]})), StreamRefused),
    (Answer("HubSpot", "search", 429, json.dumps(HS_DAILY)), QuotaError),
    (Answer("Salesforce", "query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]), QuotaError),
    (Answer("Salesforce", "query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                          "message": "TotalRequests Limit exceeded."}]), QuotaError),
    (Answer("Salesforce", "query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                          "message": "ConcurrentPerOrgLongTxn Limit exceeded."}]), RetriableError),
    (Answer("Salesforce", "query", 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message":
                                          "ConcurrentRequests (Concurrent API Requests) Limit exceeded"}]),
     RetriableError),
    (Answer("HubSpot", "update contacts", 400, json.dumps({"category": "VALIDATION_ERROR"}), write=True,
            record_id="51"), RecordError),
    (Answer("Salesforce", "update", 400, [{"errorCode": "CANNOT_UPDATE_CONVERTED_LEAD"}], write=True), RecordError),
    (Answer("Salesforce", "create", 400, [{"errorCode": "DUPLICATES_DETECTED"}], write=True), RecordError),
    (Answer("HubSpot", "search", 400, json.dumps({"category": "VALIDATION_ERROR"})), FatalError),
    (Answer("Salesforce", "query", 400, [{"errorCode": "MALFORMED_QUERY"}]), FatalError),
    (Answer("Salesforce", "query", None, exception=requests.exceptions.InvalidURL("x")), FatalError),
    (Answer("Salesforce", "login", 400, json.dumps({"error": "invalid_grant"}), login=True), AuthError),
    (Answer("Salesforce", "login", 503, "<html>down</html>", login=True), RetriableError),
    (Answer("Salesforce", "login", 200, "", login=True), RetriableError),
    (Answer("Salesforce", "login", 200, '{"access_token": "00D', login=True), RetriableError),
    (Answer("Salesforce", "login", 200, '{"token_type": "Bearer"}', login=True,
            required=("access_token", "instance_url")), RetriableError),
    (Answer("Salesforce", "login", 404, "<html>Not Found</html>", login=True), FatalError),
], ids=lambda v: "" if not isinstance(v, Answer) else f"{v.crm}-{v.status}-{v.shape}")
def test_each_row_of_the_table(answer: Answer, expected: type[Exception]) -> None:
    error = classify(answer, now=NOW)
    assert type(error) is expected, error
    text = error.reason if isinstance(error, RecordError) else str(error)
    assert text.startswith(f"{answer.crm} {answer.what}: ") and "\n" not in text


def test_a_403_naming_the_scope_it_needs_is_a_refused_stream_that_says_what_to_grant() -> None:
    """HubSpot's MISSING_SCOPES names the scopes in errors[].context: requiredGranularScopes (the sandbox's
    deal answer) or requiredScopes (HubSpot/hubspot-api-nodejs#268). Still an AuthError: it stops any call
    but an object stream's pull (crmsync.sync.pull)."""
    body = json.dumps({"status": "error", "category": "MISSING_SCOPES", "message": "This app hasn't been granted "
                       "all required scopes to make this call.", "errors": [{"message": "One or more of the "
                       "following scopes are required.", "context": {"requiredGranularScopes": [
                           "crm.objects.deals.read"]}}]})
    error = classify(Answer("HubSpot", "search deals", 403, body), now=NOW)
    assert isinstance(error, StreamRefused) and isinstance(error, AuthError)
    assert (error.crm, error.crm_object, error.missing, error.fix) == (
        "HubSpot", "deals", "the token lacks crm.objects.deals.read", "add the scope to read deals")
    assert "it needs crm.objects.deals.read (check CRMSYNC_HUBSPOT__ACCESS_TOKEN" in str(error)
    assert type(classify(Answer("HubSpot", "search", 401, body), now=NOW)) is AuthError  # a bad token is not a scope


def test_a_daily_quota_says_when_it_resumes() -> None:
    error = classify(Answer("HubSpot", "search", 429, json.dumps(HS_DAILY)), now=NOW)
    assert isinstance(error, QuotaError) and error.resume_at == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    assert "paused until 2026-11-26 23:00 UTC" in str(error)
    assert quota_reset(NOW, retry_after=120).minute == 43


def test_a_quota_error_is_not_retried_within_the_pass() -> None:
    tries: list[int] = []

    def call() -> None:
        tries.append(1)
        raise QuotaError("used up", NOW)

    with pytest.raises(QuotaError):
        RetryPolicy(attempts=5, sleep=lambda _s: None).run(call)
    assert len(tries) == 1


def test_the_login_refusal_names_the_oauth_error() -> None:
    body = json.dumps({"error": "invalid_grant", "error_description": "authentication failure"})
    error = classify(Answer("Salesforce", "login", 400, body, login=True))
    assert "invalid_grant" in str(error) and "authentication failure" in str(error)


@given(st.integers(200, 299), st.binary(max_size=200))
def test_a_2xx_body_that_is_not_a_json_object_or_list_is_never_data(status: int, body: bytes) -> None:
    answer = Answer("HubSpot", "read", status, body)
    if shape(body) == "json":
        return
    assert isinstance(classify(answer), RetriableError)


@given(st.integers(100, 599), st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=80)),
       st.booleans(), st.booleans(), st.sampled_from(["HubSpot", "Salesforce"]))
def test_every_answer_with_a_status_has_exactly_one_class(status: int, body: object, login: bool, write: bool,
                                                          crm: str) -> None:
    answer = Answer(crm, "call", status, body, login=login, write=write)
    if 200 <= status < 300 and shape(body) == "json":
        return  # well-formed: read, not classified
    error = classify(answer)
    assert isinstance(error, RetriableError | FatalError | RecordError)


def test_an_answer_the_client_library_cannot_read_is_a_classified_malformed_answer() -> None:
    """hubspot-api-client raises ApiException(status=0) for a date it cannot parse in a 2xx answer."""
    from tests.hubspot_fixtures import connector, hubspot

    with hubspot(6, tier="enterprise") as (app, url):  # the events API is Enterprise only
        assert app.portal.events
        app.portal.events[0]["occurredAt"] = "not a date"
        conn = connector(url, retry=RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.001, sleep=lambda _s: None))
        with pytest.raises(RetriableError, match="HTTP 200 with an incomplete answer"):
            list(conn.events(datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)))
