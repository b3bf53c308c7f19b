"""`/__sandbox/` endpoints of the Salesforce sandbox: seed, reset, act as a person, counts, switches."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.crms.salesforce.sandbox.oauth import ConnectedApp
from crmsync.crms.salesforce.sandbox.org import FieldError
from crmsync.crms.salesforce.sandbox.seeding import install_custom_fields, seed_org
from crmsync.sandbox.http import HttpError, Request, Response

if TYPE_CHECKING:
    from crmsync.crms.salesforce.sandbox.api import SalesforceApp


def control_routes(app: SalesforceApp) -> None:
    org = app.org

    def lead(rid: str) -> dict[str, Any]:
        found = org.records["Lead"].get(rid)
        if found is None:
            raise HttpError(404, f"no lead {rid}")
        return found

    def edit(sobject: str, rid: str, values: dict[str, Any]) -> None:
        try:
            org.update(sobject, rid, values)
        except FieldError as exc:
            raise HttpError(400, exc.message, errorCode=exc.code) from None

    @app.route("POST", "/__sandbox/reset", internal=True)
    def reset(request: Request) -> Response:
        org.reset()
        if request.json().get("custom_fields", False):
            install_custom_fields(org)
        app.reset_counts()
        return Response(200, {"reset": True})

    @app.route("POST", "/__sandbox/seed", internal=True)
    def seed(request: Request) -> Response:
        body = request.json()
        ids = seed_org(org, int(body.get("leads", 100)), seed=int(body.get("seed", 42)),
                       custom=bool(body.get("custom_fields", True)))
        return Response(200, {"leads": len(ids)})

    app.control_routes()

    @app.route("POST", "/__sandbox/settings", internal=True)
    def settings(request: Request) -> Response:
        """Switch the built-in validation rule and validation on conversion, shorten sessions, expire
        them, set the daily limit, the OAuth host rule and the connected app, or start over as an org
        of another shape."""
        body = request.json()
        if "validation_rule" in body:
            org.validation_rule = bool(body["validation_rule"])
        if "require_validation_on_convert" in body:  # Lead Settings: "Require Validation for Converted Leads"
            org.require_validation_on_convert = bool(body["require_validation_on_convert"])
        if "session_seconds" in body:
            org.session_seconds = float(body["session_seconds"])
        if body.get("expire_sessions"):
            org.sessions.clear()
        if "api_limit" in body:
            org.api_limit = int(body["api_limit"])
        if "failing_bulk_jobs" in body:
            org.failing_bulk_jobs = int(body["failing_bulk_jobs"])
        if "concurrent_refusals" in body:
            org.concurrent_refusals = int(body["concurrent_refusals"])
        if "login_host" in body:  # play login.salesforce.com: the client-credentials flow is refused
            org.login_host = bool(body["login_host"])
        if "connected_app" in body:  # {client_id, public_key, audience?, preauthorized: [user ids]}
            spec = dict(body["connected_app"])
            org.connected_app = ConnectedApp(str(spec["client_id"]), str(spec["public_key"]),
                                             str(spec.get("audience") or "https://login.salesforce.com"),
                                             set(spec.get("preauthorized") or []))
        if "multicurrency" in body:  # the multicurrency feature: Opportunity.CurrencyIsoCode (org.py)
            org.multicurrency = bool(body["multicurrency"])
            if org.multicurrency:
                org.fields["Opportunity"]["CurrencyIsoCode"] = "picklist"
            else:
                org.fields["Opportunity"].pop("CurrencyIsoCode", None)
        if "shape" in body:  # a new org of that shape: records, fields and permissions start over
            org.shape = str(body["shape"])
            org.reset()
        return Response(200, {"ok": True})

    @app.route("POST", "/__sandbox/users", internal=True)
    def add_user(request: Request) -> Response:
        """A user (`username`), e.g. an integration user on the "Minimum Access - API Only Integrations"
        profile (`minimum_access`: no object access until a permission set grants it, org.object_access);
        `token` answers a session of that user (as its own JWT login would)."""
        body = request.json()
        rid = org.add_user(str(body["username"]), minimum_access=bool(body.get("minimum_access")),
                           active=bool(body.get("active", True)))
        return Response(200, {"id": rid, **({"token": org.issue_token(rid)} if body.get("token") else {})})

    @app.route("GET", "/__sandbox/leads/{rid}", internal=True)
    def read(request: Request, rid: str) -> Response:
        return Response(200, dict(lead(rid)))

    @app.route("PATCH", "/__sandbox/leads/{rid}", internal=True)
    def human_edit(request: Request, rid: str) -> Response:
        lead(rid)
        edit("Lead", rid, request.json())
        return Response(200, {"id": rid})

    @app.route("POST", "/__sandbox/leads/{rid}/sql", internal=True)
    def set_sql(request: Request, rid: str) -> Response:
        """A rep asking for SQL by hand, with whatever BANT they typed: Status "Qualified" where the org
        has it (the rich shape), else the SQL-request checkbox `crmsync setup` creates."""
        lead(rid)
        bant = request.json().get("bant") or {}
        ask = {"Status": "Qualified"} if "Qualified" in org.statuses() else {"CRMSync_SQL_Requested__c": True}
        edit("Lead", rid, {**{f"BANT_{k.title()}__c": v for k, v in bant.items()}, **ask})
        return Response(200, {"id": rid})

    @app.route("POST", "/__sandbox/leads/{rid}/convert", internal=True)
    def convert(request: Request, rid: str) -> Response:
        """A rep converting the lead (Account, Contact, Opportunity and the contact's role on it; activities
        move to the contact and the opportunity)."""
        lead(rid)
        try:
            converted = org.convert(rid)
        except FieldError as exc:
            raise HttpError(400, exc.message, errorCode=exc.code) from None
        return Response(200, {name: converted[name] for name in
                              ("Id", "ConvertedContactId", "ConvertedAccountId", "ConvertedOpportunityId")})

    @app.route("POST", "/__sandbox/leads/{rid}/tasks", internal=True)
    def log_call(request: Request, rid: str) -> Response:
        record = lead(rid)
        body = request.json()
        at = datetime.fromisoformat(body["at"]) if body.get("at") else org.clock()
        task = org.create("Task", {"WhoId": rid, "OwnerId": record.get("OwnerId"),
                                   "Subject": body.get("subject", "Call"), "Type": "Call", "TaskSubtype": "Call",
                                   "Status": "Completed", "ActivityDate": at.date().isoformat()}, at=at)
        return Response(201, {"id": task["Id"]})  # the lead moves only with its LastActivityDate (org.py)
