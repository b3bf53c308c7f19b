"""The one error table: what a CRM answer (or the lack of one) means, for both connectors.

Every call either connector makes ends here when it does not return a well-formed answer. The
connector describes what came back as an `Answer` (status, error codes, body, the exception the
client library raised); `classify` looks it up in `TABLE`, first matching row wins, and returns the
one crmsync error the caller acts on:

- retriable (`RetriableError`): retried with backoff, jitter and Retry-After (retry.py); if it
  persists, the pass fails with that message. An empty, HTML or unparseable body is here: it is
  never read as "no data".
- refresh-then-retry (`SessionExpired`): Salesforce renews the session and makes the call again,
  at most once; a second refusal is fatal.
- record-level (`RecordError`): the record is quarantined, no retry.
- quota (`QuotaError`): the daily quota is used up; the CRM is paused until `resume_at`.
- fatal (`FatalError`, `AuthError`): stop with one line for the person who can fix it. A 403 that names
  the scopes the call needs (HubSpot's MISSING_SCOPES) is a `StreamRefused`: an object stream's pull
  refused so is turned off instead (crmsync.sync.pull); any other call refused so still stops.

In the spirit of airbyte-python-cdk's `DEFAULT_ERROR_MAPPING` (airbytehq/airbyte,
airbyte-cdk/python/airbyte_cdk/sources/streams/http/error_handlers/default_error_mapping.py: status
or exception type -> RETRY / FAIL with a failure type), extended with the CRMs' error codes and the
body's shape. How the client libraries raise, which `Answer` is built from:

- simple-salesforce (simple_salesforce/util.py `exception_handler`): any status >= 300 raises by
  status alone, 300 SalesforceMoreThanOneRecord, 400 SalesforceMalformedRequest, 401
  SalesforceExpiredSession, 403 SalesforceRefusedRequest, 404 SalesforceResourceNotFound, anything
  else SalesforceGeneralError; `content` is the parsed JSON, or the text when it is not JSON. A 2xx
  body is parsed with `result.json()` (api.py `parse_result_to_json`), which raises requests'
  JSONDecodeError (a RequestException) on an empty or truncated body; `restful` returns None for a
  204 or an empty JSON body.
- hubspot-api-client (HubSpot/hubspot-api-python, hubspot/crm/contacts/rest.py and api_client.py,
  the same in every API package): a status outside 2xx raises that package's ApiException with
  status, body and headers; `last_response` is set before the body is read; a 2xx body that is not
  JSON is handed, as a string, to the model deserializer (`deserialize`: `json.loads`, falling back
  to the raw data), which then raises TypeError/ValueError or, for models without required fields,
  returns an object with no results; a date it cannot parse raises ApiException with status 0. So
  the connector checks the raw body of every answer itself (`shape`), and a status-0 ApiException
  is an unreadable 2xx answer.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import requests
import urllib3

from crmsync.errors import AuthError, CrmsyncError, FatalError, QuotaError, RecordError, RetriableError, StreamRefused


class SessionExpired(RetriableError):
    """The session token was refused (401): renew it and make the same call again, once."""


class Action(Enum):
    RETRY = "retriable"
    REFRESH = "refresh-then-retry"
    RECORD = "record-level"
    QUOTA = "quota"
    AUTH = "fatal (credentials)"
    FATAL = "fatal"


# Body shapes. "json" is the only one a caller may read; the others are malformed answers.
EMPTY, HTML, UNPARSEABLE, INCOMPLETE, JSON, NONE = "empty", "html", "unparseable", "incomplete", "json", "no answer"

# Exceptions that mean the answer never (fully) arrived: connection refused or reset, before or
# during the answer, and timeouts. urllib3 wraps its own (hubspot-api-client), requests its own.
NO_ANSWER: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, requests.ConnectionError,
                                              requests.Timeout, requests.exceptions.ChunkedEncodingError,
                                              http.client.HTTPException, ConnectionError, TimeoutError)
BAD_CONFIG: tuple[type[BaseException], ...] = (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                                               requests.exceptions.MissingSchema)

# Sources of the codes: Salesforce REST "Status Codes and Error Responses"
# (developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm: 401 session,
# 403 REQUEST_LIMIT_EXCEEDED; bodies [{message, errorCode, fields}]); UNABLE_TO_LOCK_ROW and
# DUPLICATES_DETECTED as restforce's ErrorCode classes (rubydoc.info/gems/restforce) and the UI API's
# record exception (DUPLICATES_DETECTED); CANNOT_UPDATE_CONVERTED_LEAD: Salesforce help article
# 000384333. HubSpot: `category` in every error body (recorded/hubspot/batch_update_400_*.json);
# a duplicate is 409 `CONFLICT` "Contact already exists" (HubSpot/hubspot-api-python#51,
# HubSpot/hubspot-api-nodejs#545); the daily limit is a 429 with policyName DAILY (specs/hubspot/NOTES.md).
LOCKED = frozenset({"UNABLE_TO_LOCK_ROW"})  # Salesforce lock contention: retry
RECORD_LEVEL = frozenset({
    # HubSpot (error `category`/`code`)
    "VALIDATION_ERROR", "OBJECT_NOT_FOUND", "PROPERTY_DOESNT_EXIST", "INVALID_OPTION", "CONFLICT",
    # Salesforce (`errorCode` / per-record `statusCode`)
    "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_FIELD",
    "INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "STRING_TOO_LONG", "REQUIRED_FIELD_MISSING", "INVALID_TYPE",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "CANNOT_UPDATE_CONVERTED_LEAD", "DUPLICATE_VALUE", "DUPLICATES_DETECTED",
    "FIELD_INTEGRITY_EXCEPTION", "INVALID_EMAIL_ADDRESS", "NUMBER_OUTSIDE_VALID_RANGE",
    "INVALID_FIELD_FOR_INSERT_UPDATE",  # a read-only field, or one the user may read but not edit (errorcodes page)
})
DAILY_QUOTA = frozenset({"REQUEST_LIMIT_EXCEEDED", "DAILY"})  # Salesforce errorCode; HubSpot 429 policyName
# OAuth token endpoint answers that mean the credentials themselves are wrong (RFC 6749 §5.2 codes;
# Salesforce answers {error, error_description}, e.g. invalid_grant: specs/salesforce/NOTES.md)
BAD_CREDENTIALS = frozenset({"invalid_grant", "invalid_client", "invalid_client_id", "invalid_client_credentials",
                             "unauthorized_client", "inactive_user", "inactive_org", "INVALID_LOGIN",
                             "INVALID_AUTHENTICATION"})
FORBIDDEN = frozenset({"MISSING_SCOPES", "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY",
                       "API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"})


@dataclass(frozen=True)
class Answer:
    """What came back from one call, in the terms the table matches on."""

    crm: str
    what: str
    status: int | None = None
    body: Any = None
    """The raw text, or what the library already parsed (simple-salesforce's `content`)."""
    exception: BaseException | None = None
    retry_after: float | None = None
    login: bool = False
    required: tuple[str, ...] = ()
    """Keys a well-formed JSON answer has (an answer without them is incomplete)."""
    record_id: str = "?"
    write: bool = False
    """A create or update: a record-level refusal quarantines the record instead of stopping."""
    unreadable: bool = False
    """The client library could not read this 2xx answer (e.g. valid JSON of the wrong shape)."""

    @property
    def shape(self) -> str:
        if self.status is None:
            return NONE
        found = shape(self.body, self.required)
        return INCOMPLETE if found == JSON and self.unreadable else found

    @property
    def codes(self) -> frozenset[str]:
        return error_codes(self.body)


def shape(body: Any, required: tuple[str, ...] = ()) -> str:
    """empty / html / unparseable / incomplete / json: only "json" may be read."""
    data = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if not text.strip():
            return EMPTY
        if text.lstrip()[:1] == "<":
            return HTML
        try:
            data = json.loads(text)
        except ValueError:
            return UNPARSEABLE
    if data is None:
        return EMPTY
    if not isinstance(data, dict | list):
        return UNPARSEABLE
    if required and not (isinstance(data, dict) and all(k in data for k in required)):
        return INCOMPLETE
    return JSON


def error_codes(body: Any) -> frozenset[str]:
    """Every error code an answer names: HubSpot `category`, `policyName`, `errors[].code`;
    Salesforce `[].errorCode`; OAuth `error`."""
    data = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            return frozenset()
    items = data if isinstance(data, list) else [data]
    if isinstance(data, dict):
        items += [e for e in data.get("errors") or [] if isinstance(e, dict)]
    codes = {str(item[key]) for item in items if isinstance(item, dict)
             for key in ("category", "policyName", "errorCode", "error", "code", "statusCode") if item.get(key)}
    return frozenset(codes)


def error_message(body: Any) -> str:
    data = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            return ""
    first = data[0] if isinstance(data, list) and data else data
    if not isinstance(first, dict):
        return ""
    return str(first.get("message") or first.get("error_description") or "")[:300]


@dataclass(frozen=True)
class Rule:
    action: Action
    why: str
    when: Callable[[Answer], bool] = field(compare=False)


def _concurrent(answer: Answer) -> bool:
    """Salesforce's concurrent-request limits share REQUEST_LIMIT_EXCEEDED with the daily limit and
    differ only in the message: "ConcurrentPerOrgLongTxn Limit exceeded" or "ConcurrentRequests
    (Concurrent API Requests) Limit exceeded" (Salesforce Help 000389067; the errorcodes page), where
    the daily one says "TotalRequests Limit exceeded". They clear when a running request ends."""
    return (answer.status == 403 and "REQUEST_LIMIT_EXCEEDED" in answer.codes
            and error_message(answer.body).lower().startswith("concurrent"))


def _code(codes: frozenset[str]) -> Callable[[Answer], bool]:
    return lambda a: bool(a.codes & codes)


TABLE: tuple[Rule, ...] = (
    Rule(Action.FATAL, "the URL is not usable (check the base/instance/login URL setting)",
         lambda a: isinstance(a.exception, BAD_CONFIG)),
    Rule(Action.RETRY, "no answer: connection refused or reset, or slower than the timeout",
         lambda a: a.status is None and isinstance(a.exception, NO_ANSWER)),
    Rule(Action.AUTH, "login refused, the credentials are wrong",
         lambda a: a.login and bool(a.codes & BAD_CREDENTIALS)),
    Rule(Action.REFRESH, "the session expired", lambda a: a.crm == "Salesforce" and not a.login and a.status == 401),
    Rule(Action.AUTH, "the token is missing, wrong or revoked", lambda a: not a.login and a.status == 401),
    Rule(Action.RETRY, "too many long-running requests at once (clears in seconds)", _concurrent),
    Rule(Action.QUOTA, "the daily API quota is used up",
         lambda a: a.status in (403, 429) and bool(a.codes & DAILY_QUOTA)),
    Rule(Action.AUTH, "the integration user or token lacks a scope or permission",
         lambda a: not a.login and (a.status == 403 or bool(a.codes & FORBIDDEN))),
    Rule(Action.RETRY, "rate limited, or the CRM or a gateway failed",
         lambda a: a.status is not None and (a.status in (408, 429) or a.status >= 500)),
    Rule(Action.RETRY, "the record is locked by another update", _code(LOCKED)),
    Rule(Action.RECORD, "the CRM refused this record", lambda a: a.write and bool(a.codes & RECORD_LEVEL)),
    Rule(Action.RETRY, "the answer was empty, cut short or not JSON (never read as no data)",
         lambda a: a.status is not None and a.status < 300 and a.shape != JSON),
    Rule(Action.FATAL, "the login endpoint did not answer like an OAuth token endpoint (check the login URL)",
         lambda a: a.login),
    Rule(Action.FATAL, "the CRM refused the request", lambda a: a.status is not None),
)


def rule_for(answer: Answer) -> Rule | None:
    return next((rule for rule in TABLE if rule.when(answer)), None)


def classify(answer: Answer, now: datetime | None = None) -> CrmsyncError:
    """The error the caller acts on. An answer no row matches (an exception with no answer that is
    not a network failure) is a bug in crmsync, not a CRM fault: the caller re-raises it."""
    rule = rule_for(answer)
    if rule is None:
        raise TypeError(f"no error-table row for {answer!r}")  # pragma: no cover - guarded by callers
    text = f"{answer.crm} {answer.what}: {_describe(answer)}: {rule.why}"
    if rule.action is Action.RETRY:
        return RetriableError(text, retry_after=answer.retry_after)
    if rule.action is Action.REFRESH:
        return SessionExpired(text)
    if rule.action is Action.RECORD:
        return RecordError(answer.record_id, text)
    if rule.action is Action.QUOTA:
        resume_at = quota_reset(now or datetime.now(UTC), answer.retry_after)
        return QuotaError(f"{text}; paused until {resume_at:%Y-%m-%d %H:%M} UTC", resume_at)
    if rule.action is Action.AUTH:
        return _scope_refusal(answer, text, _AUTH_HINT.get(answer.crm, "")) or AuthError(
            text + _AUTH_HINT.get(answer.crm, ""))
    return FatalError(text)


def is_known(answer: Answer) -> bool:
    return rule_for(answer) is not None


def quota_reset(now: datetime, retry_after: float | None = None) -> datetime:
    """When to try again after a daily-quota refusal: the server's Retry-After when it gives one;
    otherwise the next full hour. HubSpot's daily limit resets at midnight in the account's time
    zone (specs/hubspot/NOTES.md, Rate limits), which crmsync does not know, and every such
    midnight is a full UTC hour for whole-hour zones; Salesforce's is a rolling 24 hours."""
    if retry_after is not None:
        return now + timedelta(seconds=retry_after)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


_AUTH_HINT = {"HubSpot": " (check CRMSYNC_HUBSPOT__ACCESS_TOKEN and its scopes)",
              "Salesforce": " (check the CRMSYNC_SALESFORCE__* credentials and the integration user's permissions)"}


_OBJECT_SCOPE = re.compile(r"crm\.objects\.([\w-]+)\.read")


def required_scopes(body: Any) -> tuple[str, ...]:
    """The scopes a 403 says the call needs: HubSpot's MISSING_SCOPES body names them in
    `errors[].context.requiredGranularScopes` (the shape the sandbox answers, docs/hubspot.md) or
    `errors[].context.requiredScopes` (a live answer quoted in HubSpot/hubspot-api-nodejs#268)."""
    data = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            return ()
    errors = data.get("errors") if isinstance(data, dict) else None
    contexts = [e["context"] for e in errors or [] if isinstance(e, dict) and isinstance(e.get("context"), dict)]
    found = [str(scope) for context in contexts for key in ("requiredGranularScopes", "requiredScopes")
             if isinstance(context.get(key), list) for scope in context[key]]
    return tuple(dict.fromkeys(found))


def _scope_refusal(answer: Answer, text: str, hint: str) -> StreamRefused | None:
    """A 403 naming the scopes the call needs is a refused stream (`StreamRefused`), its message naming them:
    the object is the one the read scope names (`crm.objects.deals.read`: deals), else the scope itself
    (HubSpot's `tickets`)."""
    scopes = required_scopes(answer.body) if answer.status == 403 else ()
    if not scopes:
        return None
    grant = ", ".join(scopes)
    objects = [m.group(1) for scope in scopes if (m := _OBJECT_SCOPE.fullmatch(scope))] or list(scopes)
    return StreamRefused(f"{text}; it needs {grant}{hint}", crm=answer.crm, crm_object=objects[0],
                         missing=f"the token lacks {grant}", fix=f"add the scope to read {objects[0]}")


def _describe(answer: Answer) -> str:
    if answer.status is None:
        return type(answer.exception).__name__ if answer.exception else "no answer"
    parts = [f"HTTP {answer.status}"]
    body_shape = answer.shape
    if body_shape != JSON:
        parts.append({EMPTY: "with an empty body", HTML: "with an HTML page", UNPARSEABLE: "with a body that is not "
                      "JSON (cut short?)", INCOMPLETE: "with an incomplete answer"}.get(body_shape, ""))
    codes = sorted(answer.codes)
    if codes:
        parts.append(",".join(codes))
    message = error_message(answer.body)
    if message:
        parts.append(message)
    return " ".join(p for p in parts if p)


def retry_after(headers: Any) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is ignored)."""
    if not headers:
        return None
    found = dict(headers)
    value = found.get("Retry-After") or found.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def is_record_level(codes: set[str] | frozenset[str]) -> bool:
    """For per-record results of a batch (HubSpot 207 errors, Salesforce composite results)."""
    return bool(set(codes) & RECORD_LEVEL) and not set(codes) & LOCKED


def malformed(crm: str, what: str, why: str) -> RetriableError:
    """A 2xx answer whose JSON lacks what every such answer has (e.g. a composite answer with fewer
    results than records): retried like any other malformed answer."""
    return RetriableError(f"{crm} {what}: {why}: the answer was incomplete (never read as no data)")
