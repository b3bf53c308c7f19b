"""`/__sandbox/` endpoints: seed and reset the portal, act as a human user, read call counts.

These are the sandbox's own, not HubSpot's: no token, never counted, never faulted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.crms.hubspot.sandbox.seeding import install_crmsync_properties, seed_portal
from crmsync.crms.hubspot.sandbox.state import TO_CONTACT, PropertyError, iso
from crmsync.sandbox.http import HttpError, Request, Response

if TYPE_CHECKING:
    from crmsync.crms.hubspot.sandbox.api import HubSpotApp


def _when(value: Any, app: HubSpotApp) -> datetime:
    if not value:
        return app.portal.clock()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f"'at' must be ISO 8601, got {value!r}") from None


def control_routes(app: HubSpotApp) -> None:
    portal = app.portal

    def contact(contact_id: str) -> None:
        if contact_id not in portal.records["contacts"]:
            raise HttpError(404, f"no contact {contact_id}")

    def edit(contact_id: str, *changes: dict[str, Any]) -> Response:
        """A person's edit, applied as the portal applies writes (refusals become a 400)."""
        contact(contact_id)
        try:
            for properties in changes:
                portal.update("contacts", contact_id, properties)
        except PropertyError as exc:
            raise HttpError(400, exc.message) from None
        return Response(200, {"id": contact_id})

    @app.route("POST", "/__sandbox/reset", internal=True)
    def reset(request: Request) -> Response:
        portal.reset()
        if request.json().get("crmsync_properties", False):
            install_crmsync_properties(portal)
        app.reset_counts()
        return Response(200, {"reset": True})

    @app.route("POST", "/__sandbox/seed", internal=True)
    def seed(request: Request) -> Response:
        body = request.json()
        modified = body.get("modified_at")
        ids = seed_portal(portal, int(body.get("contacts", 100)), seed=int(body.get("seed", 42)),
                          crmsync_properties=bool(body.get("crmsync_properties", True)),
                          modified_at=_when(modified, app) if modified else None)
        return Response(200, {"contacts": len(ids), "first_id": ids[0] if ids else None})

    app.control_routes()

    @app.route("GET", "/__sandbox/contacts/{contact_id}", internal=True)
    def read_contact(request: Request, contact_id: str) -> Response:
        contact(contact_id)
        record = portal.records["contacts"][contact_id]
        return Response(200, {"id": record.id, "properties": dict(record.properties),
                              "updatedAt": iso(record.updated_at)})

    @app.route("POST", "/__sandbox/contacts", internal=True)
    def create_contact(request: Request) -> Response:
        try:
            record = portal.create("contacts", request.json().get("properties") or {})
        except PropertyError as exc:
            raise HttpError(400, exc.message) from None
        return Response(201, {"id": record.id})

    @app.route("PATCH", "/__sandbox/contacts/{contact_id}", internal=True)
    def human_edit(request: Request, contact_id: str) -> Response:
        """A person editing the record in the HubSpot UI (which may move lifecycle backward)."""
        properties = dict(request.json().get("properties") or {})
        clear = [{"lifecyclestage": ""}] if "lifecyclestage" in properties else []
        return edit(contact_id, *clear, properties)

    @app.route("POST", "/__sandbox/contacts/{contact_id}/sql", internal=True)
    def set_sql(request: Request, contact_id: str) -> Response:
        """A rep setting the lifecycle stage to SQL by hand, with whatever BANT they typed."""
        bant = request.json().get("bant") or {}
        return edit(contact_id, {**{f"crmsync_bant_{k}": v for k, v in bant.items()},
                                 "lifecyclestage": "salesqualifiedlead"})

    @app.route("POST", "/__sandbox/contacts/{contact_id}/calls", internal=True)
    def log_call(request: Request, contact_id: str) -> Response:
        contact(contact_id)
        body = request.json()
        at = _when(body.get("at"), app)
        owner = portal.records["contacts"][contact_id].properties.get("hubspot_owner_id", "")
        record = portal.create("calls", {
            "hs_call_title": body.get("title", "Call"), "hs_call_body": body.get("body", ""),
            "hs_call_direction": body.get("direction", "OUTBOUND"), "hs_call_status": "COMPLETED",
            "hs_timestamp": iso(at), "hubspot_owner_id": body.get("owner", owner)}, at=at)
        portal.associate("calls", contact_id, record.id)
        portal.touch(contact_id, at)
        return Response(201, {"id": record.id, "associationTypeId": TO_CONTACT["calls"]})

    @app.route("POST", "/__sandbox/contacts/{contact_id}/events", internal=True)
    def add_event(request: Request, contact_id: str) -> Response:
        contact(contact_id)
        body = request.json()
        at = _when(body.get("at"), app)
        if body.get("type") == "form_submission":
            portal.form_submission(contact_id, at, str(body.get("detail", "")))
        else:
            portal.page_view(contact_id, at, str(body.get("detail", "")))
        return Response(201, {"contact": contact_id})

    @app.route("POST", "/__sandbox/lifecycle-stages", internal=True)
    def add_stage(request: Request) -> Response:
        """An admin adding a custom lifecycle stage {label, before?}; answers its numeric internal id."""
        body = request.json()
        if not body.get("label"):
            raise HttpError(400, "label is required")
        before = body.get("before")
        return Response(201, {"value": portal.add_lifecycle_stage(str(body["label"]),
                                                                  str(before) if before else None)})

    @app.route("POST", "/__sandbox/webhooks", internal=True)
    def webhooks(request: Request) -> Response:
        """Send webhooks to `url`, signed with `secret`; `drop` and `duplicate` rates for testing."""
        from crmsync.crms.hubspot.sandbox.webhooks import WebhookSender

        body = request.json()
        if not body.get("url") or not body.get("secret"):
            raise HttpError(400, "url and secret are required")
        app.webhook_sender = WebhookSender(portal, str(body["url"]), str(body["secret"]),
                                           drop=float(body.get("drop", 0)), duplicate=float(body.get("duplicate", 0)))
        return Response(200, {"sending_to": body["url"]})

    @app.route("GET", "/__sandbox/tasks", internal=True)
    def tasks(request: Request) -> Response:
        linked = {tid: cid for cid, tids in portal.associations["tasks"].items() for tid in tids}
        return Response(200, {"results": [{"id": r.id, "properties": dict(r.properties), "contact": linked.get(r.id)}
                                          for r in portal.records["tasks"].values()]})
