"""The Salesforce REST API over an Org: what simple-salesforce and the connector use.

OAuth token endpoint (password, client-credentials and JWT bearer flows: oauth.py), UserInfo, query / queryAll with
nextRecordsUrl paging, sobject describe, single-record PATCH (204), composite/sobjects PATCH and
POST (up to 200 records, allOrNone, per-record results), Tooling API CustomField creation, the
`Sforce-Limit-Info` header, INVALID_SESSION_ID after the session lifetime, REQUEST_LIMIT_EXCEEDED
past the daily limit. Errors have Salesforce's shape: a list of {message, errorCode, fields}.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crmsync.crms.salesforce.sandbox import oauth, soql
from crmsync.crms.salesforce.sandbox.formula import FormulaError
from crmsync.crms.salesforce.sandbox.org import INTEGRATION_USER, PREFIX, FieldError, Org
from crmsync.sandbox.http import HttpError, Request, Response, SandboxApp

COMPOSITE_MAX = 200
COMPOSITE_CHUNKS = 10
DEFAULT_BATCH = 2000
PK_CHUNK = 25_000


class SalesforceApp(SandboxApp):
    def __init__(self, *, token: str | None = None, org: Org | None = None, shape: str = "default",
                 **options: Any) -> None:
        super().__init__(**options)
        self.token = token
        self.org = org or Org(shape=shape)
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pk_chunk = PK_CHUNK
        _routes(self)

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization") or request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token and (token == self.token or self.org.session_valid(token)):
            self.org.api_used += 1
            if self.org.api_used > self.org.api_limit:
                return self.error(403, "TotalRequests Limit exceeded.", errorCode="REQUEST_LIMIT_EXCEEDED")
            if self.org.concurrent_refusals > 0:
                # Too many long-running requests at once: the same errorCode as the daily limit, another
                # message; it clears in seconds (Salesforce Developer Limits, "Concurrent API Request
                # Limits"; the message text as integrations report it, unconfirmed)
                self.org.concurrent_refusals -= 1
                return self.error(403, "ConcurrentPerOrgLongTxn Limit exceeded.", errorCode="REQUEST_LIMIT_EXCEEDED")
            return None
        return self.error(401, "Session expired or invalid", errorCode="INVALID_SESSION_ID")

    def caller(self, request: Request) -> str:
        """The user a request acts as: its session's user (the fixed token is the integration user's)."""
        header = request.headers.get("Authorization") or request.headers.get("authorization") or ""
        token = header.partition(" ")[2]
        return self.org.session_users.get(token, INTEGRATION_USER)

    def error(self, status: int, message: str, **extra: Any) -> Response:
        code = extra.pop("errorCode", {400: "MALFORMED_QUERY", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
                         .get(status, "UNKNOWN_EXCEPTION"))
        return Response(status, [{"message": message, "errorCode": code, **extra}], self.limit_headers())

    def extra_counts(self) -> dict[str, Any]:
        return {"api_usage": self.org.api_used}

    def limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.org.api_used}/{self.org.api_limit}"}

    def fault_response(self, status: int) -> Response:
        if status == 429:  # Salesforce has no 429: a busy org answers 503
            status = 503
        return self.error(status, "Server unavailable (injected by the sandbox)", errorCode="SERVER_UNAVAILABLE")

    def url(self, version: str, sobject: str, rid: str) -> str:
        return f"/services/data/{version}/sobjects/{sobject}/{rid}"

    def shape(self, version: str, sobject: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject, "url": self.url(version, sobject, record["Id"])}}
        for name in fields:
            if "." in name:
                relation, leaf = name.split(".", 1)
                value = soql._get(record, name)
                out.setdefault(relation, {"attributes": {"type": relation}})[leaf] = value
            else:
                out[name] = record.get(name)
        return out


def _routes(app: SalesforceApp) -> None:
    org = app.org

    @app.route("POST", "/services/oauth2/token", "oauth.token", internal=True)
    def token(request: Request) -> Response:
        return oauth.token(app, request)

    def run_query(request: Request, version: str, *, include_deleted: bool) -> Response:
        text = request.arg("q")
        if not text:
            raise HttpError(400, "query parameter q is required")
        try:
            query = soql.parse(text)
        except soql.MalformedQuery as exc:
            raise HttpError(400, f"{exc}", errorCode="MALFORMED_QUERY") from None
        user = app.caller(request)
        if query.sobject not in org.fields or "read" not in org.object_access(user, query.sobject):
            raise HttpError(400, _unsupported(query.sobject), errorCode="INVALID_TYPE")
        # A field the user cannot see does not exist for them: INVALID_FIELD, worded as the recorded
        # answer (../shared/recorded/salesforce/error_invalid_field.json)
        known = org.visible(user, query.sobject)
        for name in query.fields:
            if name.split(".")[0] not in known and not name.startswith("Campaign."):
                raise HttpError(400, f"No such column '{name}' on sobject of type {query.sobject}",
                                errorCode="INVALID_FIELD")
        rows = [r for r in org.records[query.sobject].values()
                if (include_deleted or not r.get("IsDeleted")) and (query.where is None or query.where(r))]
        for name, descending in reversed(query.order):
            rows.sort(key=_by(name), reverse=descending)
        if query.limit is not None:
            rows = rows[:query.limit]
        if not query.fields:  # SELECT COUNT()
            return Response(200, {"totalSize": len(rows), "done": True, "records": []}, app.limit_headers())
        shaped = [app.shape(version, query.sobject, r, query.fields) for r in rows]
        return _page(app, version, shaped, _batch_size(request), len(shaped))

    @app.route("GET", "/services/data/{version}/query", "query")
    def query(request: Request, version: str) -> Response:
        return run_query(request, version, include_deleted=False)

    @app.route("GET", "/services/data/{version}/queryAll", "queryAll")
    def query_all(request: Request, version: str) -> Response:
        return run_query(request, version, include_deleted=True)

    @app.route("POST", "/services/data/{version}/composite", "composite")
    def composite(request: Request, version: str) -> Response:
        """Subrequests run in order, their answers in one body, the whole counted as one call: "The
        entire series of requests counts as a single call toward your API limits"; at most 25
        subrequests, 5 of them queries (REST API Developer Guide, "Send Multiple Requests Using
        Composite"). The sandbox runs query and queryAll subrequests (all the connector sends)."""
        body = request.json()
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            raise HttpError(400, "compositeRequest is required", errorCode="JSON_PARSER_ERROR")
        if len(subs) > 5:  # every subrequest the sandbox runs is a query (25 subrequests, 5 queries)
            raise HttpError(400, "a composite request may hold 5 queries at most", errorCode="LIMIT_EXCEEDED")
        answers = []
        for sub in subs:
            url = urlsplit(str(sub.get("url") or ""))
            found = re.fullmatch(r"/services/data/([^/]+)/(query|queryAll)/?", url.path)
            if sub.get("method") != "GET" or found is None:
                raise HttpError(400, f"the sandbox runs query subrequests only, not {sub.get('url')}",
                                errorCode="NOT_FOUND")
            inner = Request("GET", url.path, parse_qs(url.query), request.headers, b"")
            try:
                answer = run_query(inner, found.group(1), include_deleted=found.group(2) == "queryAll")
            except HttpError as exc:
                answer = app.error(exc.status, exc.message, **exc.extra)
            answers.append({"body": answer.body, "httpHeaders": {}, "httpStatusCode": answer.status,
                            "referenceId": sub.get("referenceId")})
        return Response(200, {"compositeResponse": answers}, app.limit_headers())

    @app.route("GET", "/services/data/{version}/query/{locator}", "query.more")
    def query_more(request: Request, version: str, locator: str) -> Response:
        key, _, offset = locator.rpartition("-")
        rows = app.cursors.get(key)
        if rows is None or not offset.isdigit():
            raise HttpError(400, "invalid query locator", errorCode="INVALID_QUERY_LOCATOR")
        return _page(app, version, rows, _batch_size(request), len(rows), key, int(offset))

    @app.route("POST", "/services/data/{version}/jobs/query", "bulk2.create")
    def bulk_create(request: Request, version: str) -> Response:
        body = request.json()
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise HttpError(400, "operation must be query or queryAll", errorCode="INVALIDJOB")
        try:
            query = soql.parse(str(body.get("query") or ""))
        except soql.MalformedQuery as exc:
            raise HttpError(400, str(exc), errorCode="MALFORMED_QUERY") from None
        if query.sobject not in org.fields or not query.fields:
            raise HttpError(400, "Bulk queries need an object and fields", errorCode="INVALIDJOB")
        if "read" not in org.object_access(app.caller(request), query.sobject):  # as a REST query (unconfirmed)
            raise HttpError(400, _unsupported(query.sobject), errorCode="INVALID_TYPE")
        known = org.visible(app.caller(request), query.sobject)
        hidden = [name for name in query.fields if name.split(".")[0] not in known]
        if hidden:
            raise HttpError(400, f"No such column '{hidden[0]}' on sobject of type {query.sobject}",
                            errorCode="INVALID_FIELD")
        rows = [r for r in org.records[query.sobject].values()
                if (operation == "queryAll" or not r.get("IsDeleted")) and (query.where is None or query.where(r))]
        for name, descending in reversed(query.order):
            rows.sort(key=_by(name), reverse=descending)
        if not query.order:
            # Without ORDER BY the job is PK-chunked and its chunks finish in parallel: the rows come in
            # no particular order (Bulk API 2.0, "Troubleshooting Query Timeouts"; the chunk order is
            # unconfirmed). The sandbox returns its chunks last first.
            size = app.pk_chunk
            chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
            rows = [row for chunk in reversed(chunks) for row in chunk]
        if query.limit is not None:
            rows = rows[:query.limit]
        job_id = "750" + secrets.token_hex(7)
        failed = app.org.failing_bulk_jobs > 0
        app.org.failing_bulk_jobs -= failed
        app.jobs[job_id] = {"fields": query.fields, "rows": rows, "polls": 0, "object": query.sobject,
                            "operation": operation, "query": body.get("query"),
                            "final": "Failed" if failed else "JobComplete"}
        return Response(200, _job(job_id, app.jobs[job_id], "UploadComplete"), app.limit_headers())

    @app.route("GET", "/services/data/{version}/jobs/query/{job_id}", "bulk2.status")
    def bulk_status(request: Request, version: str, job_id: str) -> Response:
        job = app.jobs.get(job_id)
        if job is None:
            raise HttpError(404, f"job {job_id} not found", errorCode="NOT_FOUND")
        job["polls"] += 1  # the first poll finds it in progress, as a real job would be
        answer = _job(job_id, job, "InProgress" if job["polls"] == 1 else job["final"])
        if answer["state"] == "Failed":
            # A failed job: state Failed and an errorMessage (Bulk API 2.0, "Get Information About a
            # Query Job"); the message text is unconfirmed
            answer["errorMessage"] = "QUERY_TIMEOUT: the query took too long (injected by the sandbox)"
        return Response(200, answer, app.limit_headers())

    @app.route("GET", "/services/data/{version}/jobs/query/{job_id}/results", "bulk2.results")
    def bulk_results(request: Request, version: str, job_id: str) -> Response:
        job = app.jobs.get(job_id)
        if job is None or job["polls"] < 2 or job["final"] != "JobComplete":
            raise HttpError(400 if job else 404, "job not complete", errorCode="INVALIDJOB")
        start = int(request.arg("locator") or 0)
        size = min(int(request.arg("maxRecords") or 50_000), 100_000)
        chunk = job["rows"][start:start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job["fields"])
        for row in chunk:
            writer.writerow([_csv(soql._get(row, name)) for name in job["fields"]])
        following = start + size
        headers = {**app.limit_headers(), "Sforce-NumberOfRecords": str(len(chunk)),
                   "Sforce-Locator": str(following) if following < len(job["rows"]) else "null"}
        return Response(200, out.getvalue(), headers, content_type="text/csv")

    @app.route("GET", "/services/data/{version}/sobjects", "describe.global")
    def describe_global(request: Request, version: str) -> Response:
        """Describe Global: "the objects available in your org and available to the logged-in user" (REST
        API Developer Guide, "Get a List of Objects", dome_describeglobal), each with `queryable`,
        `createable`, `updateable` (SOAP API, DescribeGlobalSObjectResult); one call. An object the user
        cannot read is left out (that "available" means readable is the sandbox's reading, unconfirmed)."""
        user = app.caller(request)
        listed = []
        for name in org.fields:
            access = org.object_access(user, name)
            if "read" in access:
                listed.append({"name": name, "label": name, "custom": False, "keyPrefix": PREFIX.get(name),
                               "queryable": True, "retrieveable": True, "createable": "create" in access,
                               "updateable": "edit" in access, "deletable": False,
                               "urls": {"sobject": f"/services/data/{version}/sobjects/{name}",
                                        "describe": f"/services/data/{version}/sobjects/{name}/describe"}})
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": listed}, app.limit_headers())

    @app.route("GET", "/services/data/{version}/sobjects/{sobject}/describe", "describe")
    def describe(request: Request, version: str, sobject: str) -> Response:
        access = org.object_access(app.caller(request), sobject)
        if sobject not in org.fields or "read" not in access:
            # An object the user cannot read is not available to them: the same 404 as an unknown one
            # (unconfirmed, docs/salesforce.md)
            raise HttpError(404, f"The requested resource does not exist: {sobject}", errorCode="NOT_FOUND")
        fields = []
        # describe lists only the fields the user can see (field-level security)
        for name, kind in org.visible(app.caller(request), sobject).items():
            entry: dict[str, Any] = {"name": name, "type": "id" if name == "Id" else kind,
                                     "custom": name.endswith("__c"),
                                     "label": name, "updateable": kind not in ("system", "readonly"),
                                     "nillable": True, "picklistValues": [],
                                     "externalId": name in org.external_ids}
            entry["picklistValues"] = [{"value": v, "label": v, "active": True, "defaultValue": False}
                                       for v in org.picklist(sobject, name)]
            fields.append(entry)
        return Response(200, {"name": sobject, "label": sobject, "custom": False, "fields": fields,
                              "updateable": "edit" in access, "createable": "create" in access,
                              "queryable": True}, app.limit_headers())

    @app.route("POST", "/services/data/{version}/sobjects/{sobject}", "sobject.create")
    def create_one(request: Request, version: str, sobject: str) -> Response:
        """Create a record: 201 with {id, success, errors} (REST API Developer Guide, "Create a Record");
        simple-salesforce's `sf.Task.create(...)` posts here."""
        if sobject not in org.fields:
            raise HttpError(404, f"The requested resource does not exist: {sobject}", errorCode="NOT_FOUND")
        try:
            saved = org.create(sobject, request.json(), user=app.caller(request))
        except FieldError as exc:
            raise HttpError(400, exc.message, errorCode=exc.code, fields=exc.fields) from None
        return Response(201, {"id": saved["Id"], "success": True, "errors": []}, app.limit_headers())

    @app.route("PATCH", "/services/data/{version}/sobjects/{sobject}/{rid}", "sobject.update")
    def update_one(request: Request, version: str, sobject: str, rid: str) -> Response:
        if sobject not in org.records:
            raise HttpError(404, f"The requested resource does not exist: {sobject}", errorCode="NOT_FOUND")
        try:
            org.update(sobject, rid, request.json(), user=app.caller(request))
        except FieldError as exc:
            raise HttpError(400, exc.message, errorCode=exc.code, fields=exc.fields) from None
        return Response(204, None, app.limit_headers())

    @app.route("DELETE", "/services/data/{version}/sobjects/{sobject}/{rid}", "sobject.delete")
    def delete_one(request: Request, version: str, sobject: str, rid: str) -> Response:
        """Delete a record: 204 and no body ("204 No Content" for DELETE, REST API Developer Guide,
        "Status Codes and Error Responses"). It goes to the Recycle Bin: `IsDeleted` true, hidden from
        query, returned by queryAll ("QueryAll returns records that are soft deleted due to a merge or
        delete", REST API Developer Guide, "QueryAll"), its SystemModstamp moved (org.delete)."""
        record = org.records.get(sobject, {}).get(rid)
        if record is None or record.get("IsDeleted"):
            raise HttpError(404, "The requested resource does not exist", errorCode="NOT_FOUND")
        org.delete(sobject, rid)
        return Response(204, None, app.limit_headers())

    @app.route("PATCH", "/services/data/{version}/composite/sobjects", "composite.update", batch=True)
    def composite_update(request: Request, version: str) -> Response:
        return _composite(app, request, create=False)

    @app.route("POST", "/services/data/{version}/composite/sobjects", "composite.create", batch=True)
    def composite_create(request: Request, version: str) -> Response:
        return _composite(app, request, create=True)

    @app.route("POST", "/services/data/{version}/tooling/sobjects/CustomField", "tooling.customfield")
    def custom_field(request: Request, version: str) -> Response:
        body = request.json()
        full = str(body.get("FullName") or "")
        sobject, _, name = full.partition(".")
        kind = str((body.get("Metadata") or {}).get("type") or "Text")
        if sobject in ("Task", "Event"):
            # Custom fields for tasks and events are created on Activity (Salesforce Help, "Activity
            # Custom Fields": https://help.salesforce.com/s/articleView?id=sf.activity_custom_fields.htm);
            # the error code and text are unconfirmed
            raise HttpError(400, f"Cannot create custom fields on {sobject}: create them on Activity",
                            errorCode="INVALID_TYPE")
        if (sobject not in org.fields and sobject != "Activity") or not name.endswith("__c"):
            raise HttpError(400, f"Invalid FullName {full!r}: use Object.Field__c", errorCode="INVALID_FIELD")
        # A restricted picklist's values: Metadata.valueSet.valueSetDefinition.value[].fullName (Metadata
        # API, CustomField and ValueSet)
        value_set = (body.get("Metadata") or {}).get("valueSet") or {}
        values = [str(v.get("fullName")) for v in (value_set.get("valueSetDefinition") or {}).get("value") or []]
        if not org.add_custom_field(sobject, name, {"Text": "string", "LongTextArea": "textarea",
                                                    "DateTime": "datetime", "Number": "double",
                                                    "Checkbox": "boolean", "Picklist": "picklist"}.get(kind, "string"),
                                    values if kind == "Picklist" and value_set.get("restricted") else None):
            raise HttpError(400, f"There's already a field named {name} on {sobject}.",
                            errorCode="DUPLICATE_DEVELOPER_NAME")
        if (body.get("Metadata") or {}).get("externalId"):
            org.external_ids.add(name)
        return Response(201, {"id": org.new_id("CustomField"), "success": True, "errors": []}, app.limit_headers())

    @app.route("POST", "/services/data/{version}/tooling/sobjects/ValidationRule", "tooling.validationrule")
    def create_rule(request: Request, version: str) -> Response:
        body = request.json()
        saved = _save_rule(org, str(body.get("FullName") or ""), body.get("Metadata"))
        return Response(201, {"id": saved["Id"], "success": True, "errors": []}, app.limit_headers())

    @app.route("GET", "/services/data/{version}/tooling/sobjects/ValidationRule/{rid}", "tooling.validationrule")
    def read_rule(request: Request, version: str, rid: str) -> Response:
        """One rule with its Metadata (Tooling API ValidationRule: Metadata is read one record at a time)."""
        found = org.records["ValidationRule"].get(rid)
        if found is None:
            raise HttpError(404, "The requested resource does not exist", errorCode="NOT_FOUND")
        return Response(200, {"attributes": {"type": "ValidationRule"}, "Id": rid,
                              **{k: v for k, v in found.items() if k != "EntityDefinition"}},
                        app.limit_headers())

    @app.route("PATCH", "/services/data/{version}/tooling/sobjects/ValidationRule/{rid}", "tooling.validationrule")
    def update_rule(request: Request, version: str, rid: str) -> Response:
        if rid not in org.records["ValidationRule"]:
            raise HttpError(404, "The requested resource does not exist", errorCode="NOT_FOUND")
        _save_rule(org, "", request.json().get("Metadata"), rid)
        return Response(204, None, app.limit_headers())

    @app.route("GET", "/services/data/{version}/tooling/query", "tooling.query")
    def tooling_query(request: Request, version: str) -> Response:
        """Tooling SOQL over CustomField (DeveloperName, TableEnumOrId): the fields that exist, whoever
        can see them (Tooling API object reference, CustomField); and over ValidationRule (Id,
        ValidationName, Active, filtered on EntityDefinition.QualifiedApiName, a filter shown working in
        github.com/afawcett/apex-toolingapi/issues/41)."""
        try:
            query = soql.parse(request.arg("q") or "")
        except soql.MalformedQuery as exc:
            raise HttpError(400, str(exc), errorCode="MALFORMED_QUERY") from None
        if query.sobject not in ("CustomField", "ValidationRule"):
            raise HttpError(400, f"sObject type '{query.sobject}' is not supported.", errorCode="INVALID_TYPE")
        rows = [r for r in org.records[query.sobject].values() if query.where is None or query.where(r)]
        shaped = [{"attributes": {"type": query.sobject}, **{f: r.get(f) for f in query.fields}}
                  for r in rows] if query.sobject == "ValidationRule" else \
            [app.shape(version, "CustomField", r, query.fields) for r in rows]
        return Response(200, {"size": len(shaped), "totalSize": len(shaped), "done": True, "records": shaped,
                              "entityTypeName": query.sobject}, app.limit_headers())

    @app.route("GET", "/services/oauth2/userinfo", "oauth.userinfo")
    def userinfo(request: Request) -> Response:
        """The OpenID Connect UserInfo endpoint: who this session is (user_id, organization_id)."""
        user = app.caller(request)
        return Response(200, {"user_id": user, "organization_id": "00D5g0000000001AAA",
                              "preferred_username": org.records["User"].get(user, {}).get("Username")})

    from crmsync.crms.salesforce.sandbox.control import control_routes

    control_routes(app)


def _save_rule(org: Org, full_name: str, metadata: Any, rid: str | None = None) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise HttpError(400, "Metadata is required", errorCode="JSON_PARSER_ERROR")
    try:
        return org.save_rule(full_name, metadata, rid)
    except FieldError as exc:
        raise HttpError(400, exc.message, errorCode=exc.code) from None
    except FormulaError as exc:
        # Salesforce refuses a formula it cannot compile when the rule is saved; the error code for
        # that through the Tooling API is unconfirmed (docs/salesforce.md)
        raise HttpError(400, f"Error in errorConditionFormula: {exc}", errorCode="FIELD_INTEGRITY_EXCEPTION") from None


def _unsupported(sobject: str) -> str:
    """A query of an object that does not exist for this user, as Salesforce words it: INVALID_TYPE "sObject
    type 'X' is not supported. If you are attempting to use a custom object, ..." (the text as integrations
    quote it: github.com/gravityplus/Gravity-Forms-Salesforce/issues/156, salesforce-python-client/pyforce
    issues/25). The same answer when the user lacks Read on the object: "the running user lacks permission
    to see the object" is one of its causes (salesforcedictionary.com/errors/invalid-type-cannot-find-sobject;
    "When a user doesn't have access to a required object an error like INVALID_TYPE on query",
    support.marketsharp.com/hc/en-us/articles/4413201388951); the API "respects object-level ... security"
    (object reference, "Factors that Affect Data Access", obj_ref_data_access.htm)."""
    return (f"sObject type '{sobject}' is not supported. If you are attempting to use a custom object, be sure to "
            "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.")


def _job(job_id: str, job: dict[str, Any], state: str) -> dict[str, Any]:
    return {"id": job_id, "operation": job["operation"], "object": job["object"], "state": state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": 60.0, "lineEnding": "LF",
            "columnDelimiter": "COMMA", "numberRecordsProcessed": len(job["rows"]) if state == "JobComplete" else 0}


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _by(name: str) -> Any:
    return lambda record: soql.sort_key(record, name)


def _batch_size(request: Request) -> int:
    options = request.headers.get("Sforce-Query-Options") or request.headers.get("sforce-query-options") or ""
    for part in options.split(","):
        name, _, value = part.strip().partition("=")
        if name == "batchSize" and value.isdigit():
            return max(200, min(2000, int(value)))
    return DEFAULT_BATCH


def _page(app: SalesforceApp, version: str, rows: list[dict[str, Any]], size: int, total: int,
          key: str | None = None, offset: int = 0) -> Response:
    chunk = rows[offset:offset + size]
    body: dict[str, Any] = {"totalSize": total, "done": offset + size >= len(rows), "records": chunk}
    if not body["done"]:
        key = key or "01g5g" + secrets.token_hex(6)
        app.cursors[key] = rows
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{key}-{offset + size}"
    return Response(200, body, app.limit_headers())


def _composite(app: SalesforceApp, request: Request, *, create: bool) -> Response:
    org = app.org
    body = request.json()
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise HttpError(400, "records is required", errorCode="JSON_PARSER_ERROR")
    if len(records) > COMPOSITE_MAX:
        raise HttpError(400, f"Exceeded max limit of {COMPOSITE_MAX} records", errorCode="EXCEEDED_ID_LIMIT")
    types = [(r.get("attributes") or {}).get("type") if isinstance(r, dict) else None for r in records]
    if sum(1 for i, t in enumerate(types) if i == 0 or t != types[i - 1]) > COMPOSITE_CHUNKS:
        # "If the request body includes objects of more than one type, they are processed as chunks ... A
        # single request can process up to 10 chunks" (REST API Developer Guide, "Update Records Using sObject
        # Collections"); the error code and text for more are unconfirmed
        raise HttpError(400, f"a request can process up to {COMPOSITE_CHUNKS} chunks of one object type",
                        errorCode="INVALID_BATCH_REQUEST")
    all_or_none = bool(body.get("allOrNone"))
    results: list[dict[str, Any]] = []
    snapshot = {name: {rid: dict(rec) for rid, rec in recs.items()} for name, recs in org.records.items()} \
        if all_or_none else None
    failed = False
    locked = request.partial_fault  # an injected 207 / lock fault: every other record is locked
    user = app.caller(request)
    for index, record in enumerate(records):
        sobject = (record.get("attributes") or {}).get("type")
        values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
        rid = record.get("id") or record.get("Id")
        if locked and index % 2 == 1:
            results.append({"id": rid, "success": False, "errors": [
                {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record",
                 "fields": []}]})
            failed = True
            continue
        try:
            if sobject not in org.fields:
                raise FieldError("INVALID_TYPE", f"sObject type '{sobject}' is not supported", [])
            saved = org.create(sobject, values, user=user) if create else \
                org.update(sobject, str(rid), values, user=user)
            results.append({"id": saved["Id"], "success": True, "errors": []})
        except FieldError as exc:
            failed = True
            results.append({"id": rid, "success": False,
                            "errors": [{"statusCode": exc.code, "message": exc.message, "fields": exc.fields}]})
    if all_or_none and failed and snapshot is not None:
        org.records = snapshot
        results = [r if not r["success"] else {"id": r["id"], "success": False, "errors": [
            {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all "
             "records were valid and the request was using AllOrNone header", "fields": []}]} for r in results]
    return Response(200, results, app.limit_headers())
