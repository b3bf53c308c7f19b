"""The HubSpot HTTP API over a Portal: the paths, payloads, statuses and headers hubspot-api-client uses.

Shapes follow the official OpenAPI specs (CRM v3 objects, properties, owners; associations v4;
events v3) and the mapping in config/definitions.yaml (docs/hubspot.md); where a response recorded
from a real portal exists (/work/shared/recorded/hubspot, see its SOURCES.md) the sandbox answers like
the recording. `/__sandbox/` endpoints seed the portal, act as a human user and report call counts;
they need no token and are never counted.

A portal has a tier (starter, professional, enterprise): the sandbox refuses what the tier refuses.
"""

from __future__ import annotations

import bisect
import functools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crmsync.crms.hubspot.sandbox.state import (
    ASSOCIATION_TYPES,
    ENGAGEMENT_TYPES,
    FORM_EVENT,
    OBJECT_TYPES,
    PAGE_VIEW_EVENT,
    TO_CONTACT,
    Portal,
    PropertyError,
    Record,
    deal_pipeline,
    epoch_ms,
    iso,
)
from crmsync.sandbox.http import HttpError, Request, Response, Route, SandboxApp
from crmsync.sandbox.ratelimit import RateLimiter

# Search answers at most 10,000 results per query, 400 past it [NOTES "10,000-result cap"; secondary:
# docs.aws.amazon.com/glue/latest/dg/hubspot-connector-limitations.html; unconfirmed in docs/hubspot.md].
# `HubSpotApp(search_cap=...)` lowers it for a test that needs only "more records than the cap" (crmsync
# pages search by id, never by `after`); the served sandbox always keeps 10,000.
SEARCH_CAP = 10_000
SEARCH_PAGE_MAX = 200
BATCH_MAX = 100
ASSOCIATION_BATCH_MAX = 1000
DEFAULT_CONTACT_PROPERTIES = ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]
# Returned by default [NOTES DOC-SEARCH "Searchable CRM objects"]
DEFAULT_PROPERTIES = {"contacts": DEFAULT_CONTACT_PROPERTIES,
                      "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                                "hs_object_id", "pipeline"]}
ALWAYS = ("hs_object_id", "createdate", "lastmodifieddate")
TIERS = ("starter", "professional", "enterprise")
# events-v3.json: info.x-hubspot-product-tier-requirements is ENTERPRISE for every hub.
EVENTS_TIER = "enterprise"
# HubSpot's answer to a portal without the events API, as a user saw it on a free portal
# (github.com/PipedreamHQ/pipedream/issues/11810; the typo is HubSpot's). Status 403 [SPEC Error].
EVENTS_REFUSED = ("Your app doesn't the have scopes needed to make this call. Do you have access to the "
                  "'business-intelligence' scope?  Missing auth details: event-detail-read,web-analytics-api-access")
# Search: 4 requests per second per account, answered without X-HubSpot-RateLimit-* headers. 4/s is
# HubSpot's own published figure (changelogs "crm-search-api-rate-limit-increase" and "burst-limits-are-
# increasing-for-api-key-authenticated-calls": "the CRM Search API, which will remain limited to 4 requests
# per second"); a later 5/s and the missing headers are community reports [NOTES "Rate limits"]: the
# stricter, published figure is enforced; unconfirmed items in docs/hubspot.md.
SEARCH_RATE_LIMIT = "4/1s"
# A batch read with propertiesWithHistory takes at most 50 inputs; more is a 400 VALIDATION_ERROR "The maximum
# number of inputs supported in a batch request for property histories is 50" (seen on real portals: PipedreamHQ/
# pipedream PR #8462; activepieces' HubSpot piece chunks its history reads by 50 to "Avoid VALIDATION_ERROR"; not in
# the spec, which gives no limit: docs/hubspot.md).
HISTORY_BATCH = 50
# Association batch reads page per contact [SPEC associations-v4.json batch/read: "'paging' will only be
# present if there are more pages"]; the page size itself is not documented (unconfirmed).
ASSOCIATION_PAGE = 100
# Calls a day for private apps: Professional 650,000 and Enterprise 1,000,000 (changelog "Increasing our
# API limits"); Starter 250,000 (issue 17 §7; third-party pages only: unconfirmed). The day is the
# portal's (midnight in its time zone; the sandbox uses UTC) [NOTES "Rate limits", CL-RLH].
DAILY_LIMITS = {"starter": 250_000, "professional": 650_000, "enterprise": 1_000_000}
PORTAL_ID = 44237313  # the portal id in the recorded object urls (recorded/hubspot/batch_update_ok.json)
SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.read",
          "crm.schemas.contacts.write", "crm.objects.owners.read", "crm.objects.deals.read", "timeline",
          "oauth"]


class HubSpotApp(SandboxApp):
    def __init__(self, *, token: str | None = None, portal: Portal | None = None, tier: str = "professional",
                 search_rate_limit: str | None = SEARCH_RATE_LIMIT, association_page: int = ASSOCIATION_PAGE,
                 daily_limit: int | None = None, scopes: list[str] | None = None, search_cap: int = SEARCH_CAP,
                 **options: Any) -> None:
        super().__init__(**options)
        self.search_cap = search_cap
        self.scopes = list(SCOPES if scopes is None else scopes)  # what the token was granted
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        self.token = token
        self.tier = tier
        self.search_limiter = RateLimiter.parse(search_rate_limit) if search_rate_limit else None
        self.association_page = association_page
        self.daily_limit = daily_limit or DAILY_LIMITS[tier]
        self._daily: tuple[str, int] = ("", 0)
        self.portal = portal or Portal()
        self.search_pages_served = 0
        self.webhook_sender: Any = None
        _routes(self)

    # --- what every request gets ----------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith("/oauth/v1/"):  # no security on these [SPEC oauth-v1.json]: the token is in the path
            return None
        header = request.headers.get("Authorization") or request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token and (self.token is None or token == self.token):
            return None
        return self.error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                               "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                          category="INVALID_AUTHENTICATION")

    def error(self, status: int, message: str, **extra: Any) -> Response:
        category = extra.pop("category", _CATEGORY.get(status, "VALIDATION_ERROR"))
        body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
        body.update(extra)
        return Response(status, body)

    def rate_limit_headers(self, limit: int, remaining: int, window_ms: int) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(window_ms)}

    def rate_limited(self, retry_after: int) -> Response:
        response = self.error(429, "You have reached your ten_secondly_rolling limit.", category="RATE_LIMITS",
                              errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")
        response.headers["Retry-After"] = str(retry_after)
        return response

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return self.rate_limited(1)
        return self.error(status, "An internal error occurred (injected by the sandbox).", category="INTERNAL_ERROR")

    def _guarded(self, route: Route, request: Request, params: dict[str, str]) -> Response | None:
        """The daily limit first; search has its own per-second limit, and its answers carry no
        X-HubSpot-RateLimit-* headers (see SEARCH_RATE_LIMIT)."""
        if self.authenticate(request) is None and not self._within_daily_limit():
            # body quoted from HubSpot's usage-details doc [NOTES "Rate limits", COMM-429]
            return self.error(429, "You have reached your daily limit.", category="RATE_LIMITS",
                              errorType="RATE_LIMIT", policyName="DAILY")
        if params.get("object_type") == "deals" and "crm.objects.deals.read" not in self.scopes \
                and self.authenticate(request) is None:
            # a token without the scope: 403 MISSING_SCOPES naming it in errors[].context.requiredGranularScopes
            # (the shape integrations quote from live portals; unconfirmed for deals: docs/hubspot.md)
            return self.error(403, "This app hasn't been granted all required scopes to make this call.",
                              category="MISSING_SCOPES", errors=[{
                                  "message": "One or more of the following scopes are required.",
                                  "context": {"requiredGranularScopes": ["crm.objects.deals.read"]}}])
        if route.endpoint != "objects.search":
            return super()._guarded(route, request, params)
        if self.search_limiter is not None and self.authenticate(request) is None and not self.search_limiter.take()[0]:
            # body as HubSpot's secondly 429 [NOTES "Rate limits", COMM-429]; no Retry-After (unconfirmed)
            return self.error(429, "You have reached your secondly limit.", category="RATE_LIMITS",
                              errorType="RATE_LIMIT", policyName="SECONDLY")
        response = super()._guarded(route, request, params)
        if response is not None:
            for name in [h for h in response.headers if h.startswith("X-HubSpot-RateLimit")]:
                del response.headers[name]
        return response

    def _within_daily_limit(self) -> bool:
        today = self.portal.clock().astimezone(UTC).date().isoformat()
        with self.lock:
            day, used = self._daily
            used = used if day == today else 0
            if used >= self.daily_limit:
                return False
            self._daily = (today, used + 1)
            return True

    def enterprise_only(self) -> None:
        if self.tier != EVENTS_TIER:
            raise HttpError(403, EVENTS_REFUSED, category="MISSING_SCOPES")


_CATEGORY = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES", 404: "OBJECT_NOT_FOUND",
             405: "VALIDATION_ERROR", 409: "OBJECT_ALREADY_EXISTS", 429: "RATE_LIMITS"}


def _object(portal: Portal, object_type: str, record: Record, properties: list[str] | None,
            with_history: list[str] | None = None) -> dict[str, Any]:
    if properties is None:
        names = DEFAULT_PROPERTIES.get(object_type, ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"])
    else:
        names = list(dict.fromkeys([*properties, *ALWAYS])) if object_type == "contacts" else list(
            dict.fromkeys([*properties, "hs_object_id"]))
    body: dict[str, Any] = {
        "id": record.id,
        "properties": {n: record.properties.get(n) for n in names},
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
        "archived": record.archived,
        **({"archivedAt": iso(record.archived_at)} if record.archived_at else {}),
    }
    if object_type == "contacts":  # recorded objects carry their app url (recorded/hubspot/batch_read_contacts.json)
        body["url"] = f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-1/{record.id}"
    if with_history:  # newest first [SPEC contacts-v3.json propertiesWithHistory; order unconfirmed]
        body["propertiesWithHistory"] = {n: record.versions(n) for n in with_history}
    return body


def _batch_body(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: datetime,
                now: datetime) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(started),
                            "completedAt": iso(now)}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body)
    return Response(200, body)


def _refused(app: HubSpotApp, invalid: list[PropertyError]) -> Response:
    """The whole-batch 400, shaped as recorded: the top-level message lists every invalid value, `errors`
    names each property, no record id anywhere."""
    listed = [{"isValid": False, "message": e.message, "error": e.code, "name": e.name} for e in invalid]
    response = app.error(400, "Property values were not valid: " + json.dumps(listed, separators=(",", ":")),
                         category="VALIDATION_ERROR")
    response.body["errors"] = [{"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}}
                               for e in invalid]
    return response


def _standard_error(category: str, message: str, ids: list[str],
                    detail: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": "error", "category": category, "message": message,
                             "context": {"ids": ids}, "errors": [detail] if detail else [], "links": {}}
    return error


def _type(object_type: str) -> str:
    if object_type not in OBJECT_TYPES:
        raise HttpError(400, f"Unable to infer object type from: {object_type}")
    return object_type


def _inputs(request: Request, limit: int = BATCH_MAX) -> list[dict[str, Any]]:
    body = request.json()
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise HttpError(400, "Invalid input JSON on line 1: 'inputs' is required")
    if len(inputs) > limit:
        raise HttpError(400, f"Batch input length {len(inputs)} exceeds the maximum of {limit}",
                        subCategory="BATCH_TOO_LARGE")
    return inputs


def _routes(app: HubSpotApp) -> None:
    """Every HubSpot endpoint the sandbox speaks, in one place."""
    portal = app.portal

    @app.route("GET", "/crm/v3/objects/{object_type}", "objects.list")
    def list_objects(request: Request, object_type: str) -> Response:
        # `archived`: "Whether to return only results that have been archived" (contacts-v3 spec; the same
        # parameter on the deals list, "Read a page of deals": HubSpot-public-api-spec-collection
        # PublicApiSpecs/CRM/Deals/Rollouts/424/v3/deals.json, not copied to ../shared/specs)
        archived = (request.arg("archived") or "").lower() == "true"
        records = [r for r in portal.records[_type(object_type)].values() if r.archived is archived]
        limit = min(int(request.arg("limit", "10") or 10), 100)
        start = int(request.arg("after", "0") or 0)
        properties = request.args("properties") or None
        page = records[start:start + limit]
        body: dict[str, Any] = {"results": [_object(portal, object_type, r, properties) for r in page]}
        if start + limit < len(records):
            body["paging"] = {"next": {"after": str(start + limit), "link": ""}}
        return Response(200, body)

    @app.route("GET", "/crm/v3/objects/{object_type}/{record_id}", "objects.get")
    def get_object(request: Request, object_type: str, record_id: str) -> Response:
        record = portal.records[_type(object_type)].get(record_id)
        if record is None or record.archived:
            raise HttpError(404, f"Object not found.  objectId are usually numeric.  ID: {record_id}")
        return Response(200, _object(portal, object_type, record, request.args("properties") or None))

    @app.route("POST", "/crm/v3/objects/{object_type}", "objects.create")
    def create_object(request: Request, object_type: str) -> Response:
        body = request.json()
        record = _create(portal, _type(object_type), body.get("properties") or {}, body.get("associations") or [])
        return Response(201, _object(portal, object_type, record, list(body.get("properties") or {})))

    @app.route("PATCH", "/crm/v3/objects/{object_type}/{record_id}", "objects.update")
    def update_object(request: Request, object_type: str, record_id: str) -> Response:
        if record_id not in portal.records[_type(object_type)]:
            raise HttpError(404, f"Object not found. ID: {record_id}")
        properties = request.json().get("properties") or {}
        try:
            record = portal.update(object_type, record_id, properties)
        except PropertyError as exc:
            raise HttpError(400, f"Property values were not valid: {exc.message}", subCategory=exc.code) from None
        return Response(200, _object(portal, object_type, record, list(properties)))

    @app.route("POST", "/crm/v3/objects/{object_type}/batch/read", "objects.batch_read", batch=True)
    def batch_read(request: Request, object_type: str) -> Response:
        started = portal.clock()
        inputs = _inputs(request)
        properties = request.json().get("properties") or None
        with_history = request.json().get("propertiesWithHistory") or None
        if with_history and len(inputs) > HISTORY_BATCH:
            raise HttpError(400, "The maximum number of inputs supported in a batch request for property histories "
                                 f"is {HISTORY_BATCH}. Please reduce the number of items and try again")
        records = portal.records[_type(object_type)]
        results, missing = [], []
        for item in inputs:
            record = records.get(str(item.get("id")))
            if record is None or record.archived:
                missing.append(str(item.get("id")))
            else:
                results.append(_object(portal, object_type, record, properties, with_history))
        errors = [_standard_error("OBJECT_NOT_FOUND", f"Could not get some {object_type.upper()[:-1]} objects, they "
                                  "may be deleted or not exist. Check that ids are valid.", missing)] if missing else []
        return _batch_body(results, errors, started, portal.clock())

    @app.route("POST", "/crm/v3/objects/{object_type}/batch/update", "objects.batch_update", batch=True)
    def batch_update(request: Request, object_type: str) -> Response:
        """One invalid value refuses the whole batch with a 400 and nothing is updated (recorded:
        recorded/hubspot/batch_update_400_invalid_property.json; issue 17 §3); unknown ids are per-record
        errors in a 207 (recorded/hubspot/batch_update_207_not_found.json)."""
        started = portal.clock()
        inputs = _inputs(request)
        records = portal.records[_type(object_type)]
        invalid: list[PropertyError] = []
        for item in inputs:
            try:
                portal.validate(object_type, item.get("properties") or {})
            except PropertyError as exc:
                invalid.append(exc)
        if invalid:
            return _refused(app, invalid)
        results, errors, missing = [], [], []
        for index, item in enumerate(inputs):
            record_id = str(item.get("id"))
            if record_id not in records:
                missing.append(record_id)
                continue
            if request.partial_fault and index % 2 == 1:
                errors.append(_standard_error("INTERNAL_ERROR", "Internal error while updating (injected partial "
                                              "failure)", [record_id]))
                continue
            properties = item.get("properties") or {}
            record = portal.update(object_type, record_id, properties)
            results.append(_object(portal, object_type, record, list(properties)))
        if missing:
            errors.append(_standard_error("OBJECT_NOT_FOUND", f"Could not get some {object_type.upper()[:-1]} objects, "
                                          "they may be deleted or not exist. Check that ids are valid.", missing))
        return _batch_body(results, errors, started, portal.clock())

    @app.route("POST", "/crm/v3/objects/{object_type}/batch/create", "objects.batch_create", batch=True)
    def batch_create(request: Request, object_type: str) -> Response:
        started = portal.clock()
        results, errors = [], []
        for item in _inputs(request):
            try:
                record = _create(portal, _type(object_type), item.get("properties") or {},
                                 item.get("associations") or [])
            except HttpError as exc:
                errors.append(_standard_error("VALIDATION_ERROR", exc.message, []))
                continue
            results.append(_object(portal, object_type, record, list(item.get("properties") or {})))
        response = _batch_body(results, errors, started, portal.clock())
        if response.status == 200:
            response.status = 201
        return response

    @app.route("POST", "/crm/v3/objects/{object_type}/search", "objects.search")
    def search(request: Request, object_type: str) -> Response:
        return _search(app, _type(object_type), request.json())

    @app.route("GET", "/crm/v3/properties/{object_type}", "properties.list")
    def list_properties(request: Request, object_type: str) -> Response:
        return Response(200, {"results": list(portal.properties[_type(object_type)].values())})

    @app.route("GET", "/crm/v3/properties/{object_type}/groups", "properties.groups.list")
    def list_groups(request: Request, object_type: str) -> Response:
        return Response(200, {"results": list(portal.groups[_type(object_type)].values())})

    @app.route("POST", "/crm/v3/properties/{object_type}/groups", "properties.groups.create")
    def create_group(request: Request, object_type: str) -> Response:
        body = request.json()
        name = body.get("name")
        if not name or not body.get("label"):
            raise HttpError(400, "Property group name and label are required")
        groups = portal.groups[_type(object_type)]
        if name in groups:
            raise HttpError(409, f"A property group named '{name}' already exists.")
        groups[name] = {"name": name, "label": body["label"], "displayOrder": body.get("displayOrder", -1),
                        "archived": False}
        return Response(201, groups[name])

    @app.route("GET", "/crm/v3/properties/{object_type}/{name}", "properties.get")
    def get_property(request: Request, object_type: str, name: str) -> Response:
        found = portal.properties[_type(object_type)].get(name)
        if found is None:
            raise HttpError(404, f"Unable to find property {name}")
        return Response(200, found)

    @app.route("POST", "/crm/v3/properties/{object_type}", "properties.create")
    def create_property(request: Request, object_type: str) -> Response:
        body = request.json()
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise HttpError(400, f"Missing required fields: {', '.join(missing)}")
        defined = portal.properties[_type(object_type)]
        if body["name"] in defined:
            raise HttpError(409, f"Property named '{body['name']}' already exists.", category="OBJECT_ALREADY_EXISTS")
        if body["groupName"] not in portal.groups[object_type]:
            raise HttpError(400, f"Property group '{body['groupName']}' does not exist")
        created = {
            "name": body["name"], "label": body["label"], "type": body["type"], "fieldType": body["fieldType"],
            "groupName": body["groupName"], "description": body.get("description", ""),
            "options": [{"label": o.get("label"), "value": o.get("value"), "hidden": bool(o.get("hidden")),
                         "displayOrder": o.get("displayOrder", i)} for i, o in enumerate(body.get("options") or [])],
            "displayOrder": body.get("displayOrder", -1), "calculated": False, "externalOptions": False,
            "hasUniqueValue": bool(body.get("hasUniqueValue")), "hidden": bool(body.get("hidden")),
            "hubspotDefined": False, "formField": bool(body.get("formField")), "archived": False,
            "createdAt": iso(portal.clock()), "updatedAt": iso(portal.clock()),
            "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
        }
        defined[body["name"]] = created
        return Response(201, created)

    @app.route("POST", "/crm/v4/associations/{from_type}/{to_type}/batch/read", "associations.batch_read", batch=True)
    def associations(request: Request, from_type: str, to_type: str) -> Response:
        """Per record, a page of associated ids with `paging.next.after` when there are more (input
        `after` resumes) [SPEC associations-v4.json]; `toObjectId` is a number and a record without any
        is an error in a 207 (recorded/hubspot/assoc_v4_contacts_to_companies.json). Contacts to
        engagements, and deals to contacts and back."""
        started = portal.clock()
        pair = (from_type, to_type)
        if pair not in ASSOCIATION_TYPES:
            raise HttpError(400, f"Unsupported association {from_type} -> {to_type} in the sandbox")
        type_id = ASSOCIATION_TYPES[pair]
        results, errors = [], []
        for item in _inputs(request, ASSOCIATION_BATCH_MAX):
            from_id = str(item.get("id"))
            linked = portal.linked(from_type, to_type, from_id)
            if not linked:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                               "message": f"No {to_type[:-1]} is associated with {from_type[:-1]} {from_id}.",
                               "context": {"fromObjectId": [from_id], "fromObjectType": [from_type[:-1]],
                                           "toObjectType": [to_type[:-1]]}})
                continue
            start = int(item.get("after") or 0)
            end = start + app.association_page
            result: dict[str, Any] = {
                "from": {"id": from_id},
                "to": [{"toObjectId": int(target), "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]}
                    for target in linked[start:end]],
            }
            if end < len(linked):
                result["paging"] = {"next": {"after": str(end)}}  # `link` is deprecated [SPEC]
            results.append(result)
        return _batch_body(results, errors, started, portal.clock())

    @app.route("GET", "/crm/v3/pipelines/{object_type}", "pipelines.list")
    def pipelines(request: Request, object_type: str) -> Response:
        """The deal pipelines (the sandbox has the default one); deals exist on every tier, free included
        (developers.hubspot.com deals search reference: "Sales Hub Free"), so nothing here is tier-refused."""
        if object_type != "deals":
            raise HttpError(400, f"Unsupported pipeline object type {object_type} in the sandbox")
        return Response(200, {"results": [deal_pipeline()]})

    @app.route("GET", "/crm/v3/owners", "owners.list")
    def owners(request: Request) -> Response:
        email = request.arg("email")
        found = [o for o in portal.owners if email is None or o["email"] == email]
        return Response(200, {"results": found})

    @app.route("GET", "/events/v3/events", "events.list")
    def events(request: Request) -> Response:
        app.enterprise_only()
        return _events(app, request)

    @app.route("GET", "/events/event-occurrences/2026-03", "events.list_2026_03")
    def event_occurrences(request: Request) -> Response:
        """The date-versioned successor of /events/v3/events: same parameters and body (the recorded
        page view, recorded/hubspot/events_e_visited_page.json, was answered on this path); Enterprise
        only like the v3 path (unconfirmed for this path: no date-versioned events spec in ../shared)."""
        app.enterprise_only()
        return _events(app, request)

    @app.route("GET", "/events/v3/events/event-types", "events.types")
    def event_types(request: Request) -> Response:
        """The event types the portal has [SPEC events-v3.json VisibleExternalEventTypeNames]."""
        app.enterprise_only()
        return Response(200, {"eventTypes": sorted({PAGE_VIEW_EVENT, FORM_EVENT, *(e["eventType"]
                                                                             for e in portal.events)})})

    @app.route("GET", "/oauth/v1/access-tokens/{token}", "oauth.token_info")
    def token_info(request: Request, token: str) -> Response:
        if app.token is not None and token != app.token:
            raise HttpError(404, "Token not found", category="OBJECT_NOT_FOUND")
        return Response(200, {"token": token, "user": "sandbox@example.com", "hub_domain": "sandbox.hubspot.local",
                              "scopes": app.scopes, "hub_id": 1234567, "app_id": 1, "expires_in": 1800,
                              "user_id": 1, "token_type": "access"})

    from crmsync.crms.hubspot.sandbox.control import control_routes
    from crmsync.crms.hubspot.sandbox.deletion import deletion_routes

    control_routes(app)
    deletion_routes(app)


def _create(portal: Portal, object_type: str, properties: dict[str, Any], associations: list[Any]) -> Record:
    try:
        record = portal.create(object_type, properties)
    except PropertyError as exc:
        raise HttpError(400, f"Property values were not valid: {exc.message}", subCategory=exc.code) from None
    if object_type in ENGAGEMENT_TYPES:
        for association in associations:
            target = str((association.get("to") or {}).get("id"))
            if target in portal.records["contacts"]:
                portal.associate(object_type, target, record.id)
    if object_type == "deals":  # a deal created with its contacts (deal -> contact, HUBSPOT_DEFINED type 3)
        for association in associations:
            portal.associate_deal(record.id, str((association.get("to") or {}).get("id")))
    return record


# --- search --------------------------------------------------------------------------------------


def _search(app: HubSpotApp, object_type: str, body: Any) -> Response:
    portal = app.portal
    if not isinstance(body, dict):
        raise HttpError(400, "Invalid search request")
    limit = int(body.get("limit") or 10)
    if limit > SEARCH_PAGE_MAX:
        raise HttpError(400, f"limit must be at most {SEARCH_PAGE_MAX}")
    after = int(body.get("after") or 0)
    if after >= app.search_cap:
        raise HttpError(400, f"Search results are limited to {app.search_cap:,} results; 'after' of {after} is "
                             "past that. Narrow the query (for example by a date range).",
                        subCategory="SEARCH_LIMIT_EXCEEDED")
    groups = body.get("filterGroups") or []
    filters = [f for g in groups for f in g.get("filters") or []]
    if len(groups) > 5 or any(len(g.get("filters") or []) > 10 for g in groups) or len(filters) > 25:
        raise HttpError(400, "Too many filters: at most 5 filterGroups, 10 filters per group, 25 in total")
    defined = portal.properties[object_type]
    for f in filters:
        if f.get("propertyName") not in defined:
            raise HttpError(400, f"There was a problem with the request: property {f.get('propertyName')!r} "
                                 "does not exist")
    tests = [_compile_group(g, defined) for g in groups]
    matched = [r for r in portal.records[object_type].values()
               if not r.archived and (not tests or any(test(r) for test in tests))]
    for sort in reversed(body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]):
        name = sort if isinstance(sort, str) else sort.get("propertyName")
        descending = not isinstance(sort, str) and sort.get("direction") == "DESCENDING"
        kind = defined.get(name, {}).get("type", "string")
        matched.sort(key=_sorter(name, kind), reverse=descending)
    total = len(matched)
    end = min(after + limit, total)
    properties = body.get("properties") or None
    results = [_object(portal, object_type, r, properties) for r in matched[after:end]]
    page: dict[str, Any] = {"total": total, "results": results}
    if end < total:
        page["paging"] = {"next": {"after": str(end)}}  # no `link`, as recorded (search_contacts_p1.json)
    app.search_pages_served += 1
    return Response(200, page)


Predicate = Callable[[Record], bool]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: bool(a == b), "NEQ": lambda a, b: bool(a != b), "GT": lambda a, b: bool(a > b),
    "GTE": lambda a, b: bool(a >= b), "LT": lambda a, b: bool(a < b), "LTE": lambda a, b: bool(a <= b),
}


def _compile_group(group: dict[str, Any], defined: dict[str, dict[str, Any]]) -> Predicate:
    """All filters of a group AND-ed, each with its operand parsed once per request."""
    filters = sorted(group.get("filters") or [], key=lambda f: f["propertyName"] != "hs_object_id")  # cheapest first
    tests = [_compile_filter(f, defined[f["propertyName"]]["type"]) for f in filters]
    return lambda record: all(test(record) for test in tests)


def _compile_filter(f: dict[str, Any], kind: str) -> Predicate:
    op, name = f.get("operator", "EQ"), f["propertyName"]
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        wanted = op == "HAS_PROPERTY"
        return lambda r: (r.properties.get(name) not in (None, "")) is wanted
    missing_matches = op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
    test: Callable[[Any], bool]
    if op in ("IN", "NOT_IN"):
        options = {_comparable(v, kind) for v in f.get("values") or []}
        inside = op == "IN"
        test = lambda raw: (_comparable(raw, kind) in options) is inside  # noqa: E731
    elif op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token, contains = str(f.get("value", "")).lower().strip("*"), op == "CONTAINS_TOKEN"
        test = lambda raw: (token in str(raw).lower()) is contains  # noqa: E731
    elif op == "BETWEEN":
        low, high = _comparable(f.get("value"), kind), _comparable(f.get("highValue"), kind)
        test = lambda raw: bool(low <= _comparable(raw, kind) <= high)  # noqa: E731
    elif op in _COMPARE:
        target, compare = _comparable(f.get("value"), kind), _COMPARE[op]
        test = lambda raw: compare(_comparable(raw, kind), target)  # noqa: E731
    else:
        raise HttpError(400, f"Unknown operator {op}")

    def matches(record: Record) -> bool:
        raw = record.properties.get(name)
        if raw in (None, ""):
            return missing_matches
        try:
            return test(raw)
        except HttpError:  # a stored value that does not parse as its type matches nothing
            return False

    return matches


def _comparable(value: Any, kind: str) -> Any:
    if kind == "datetime":
        return _as_ms(value)
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise HttpError(400, f"{value!r} is not a valid number") from None
    return str(value).lower()


def _as_ms(value: Any) -> int:
    return _text_ms(str(value))


@functools.lru_cache(maxsize=500_000)
def _text_ms(text: str) -> int:
    """Parsed once per distinct value: a search over 25,000 contacts re-reads the same dates."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return epoch_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise HttpError(400, f"{text!r} is not a valid datetime (epoch milliseconds or ISO 8601)") from None


def _sorter(name: str, kind: str) -> Callable[[Record], tuple[int, Any]]:
    return lambda record: _sort_key(record.properties.get(name), kind)


def _sort_key(value: Any, kind: str) -> tuple[int, Any]:
    if value in (None, ""):
        return (1, 0)
    return (0, _comparable(value, kind))


# --- events --------------------------------------------------------------------------------------


def _events(app: HubSpotApp, request: Request) -> Response:
    object_type = (request.arg("objectType") or "").lower()
    if object_type not in ("contact", "contacts", "0-1"):
        raise HttpError(400, "objectType is required (e.g. contact)")
    event_type = request.arg("eventType")
    object_id = request.arg("objectId")
    after_time = _parse_time(request.arg("occurredAfter"))
    before_time = _parse_time(request.arg("occurredBefore"))
    limit = min(int(request.arg("limit", "100") or 100), 1000)
    start = int(request.arg("after", "0") or 0)
    ordered, times = app.portal.sorted_events(event_type)
    lo = bisect.bisect_right(times, after_time) if after_time else 0
    hi = bisect.bisect_right(times, before_time) if before_time else len(ordered)
    found = ordered[lo:hi]
    if object_id is not None:
        found = [e for e in found if e["objectId"] == object_id]
    if (request.arg("sort") or "").startswith("-"):
        found = found[::-1]
    page = found[start:start + limit]
    body: dict[str, Any] = {"results": [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]}
    if start + limit < len(found):
        body["paging"] = {"next": {"after": str(start + limit), "link": ""}}
    return Response(200, body)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"{value!r} is not a valid timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = ["TO_CONTACT", "HubSpotApp"]
