"""Deleting contacts in the HubSpot sandbox: archive (restorable) and GDPR delete (permanent), with the
deletion webhooks HubSpot sends for each.

- `DELETE /crm/v3/objects/{objectType}/{id}` -> 204: "Delete a contact by ID. Deleted contacts can be
  restored within 90 days of deletion" (contacts-v3 spec, ../shared/specs/hubspot/contacts-v3.json,
  "Archive a contact"). The record is archived: gone from reads and search, listed by
  `GET /crm/v3/objects/contacts?archived=true` with `archivedAt` (SimplePublicObject, same spec). A deal
  archives the same way ("Move an Object identified by `{dealId}` to the recycling bin", listed by
  `GET /crm/v3/objects/deals?archived=true`: HubSpot-public-api-spec-collection
  PublicApiSpecs/CRM/Deals/Rollouts/424/v3/deals.json), with no webhook here (crmsync subscribes to
  contact events only).
- `POST /crm/v3/objects/contacts/gdpr-delete` {objectId} -> 204: "Permanently delete a contact and all
  associated content to follow GDPR" (same spec, PublicGdprDeleteInput). The record is gone, not archived.
- Webhooks (when configured): a delete sends `contact.deletion`; a GDPR delete sends
  `contact.privacyDeletion` and also `contact.deletion` ("The privacyDeletion event will also trigger
  the normal contact.delete event":
  https://developers.hubspot.com/changelog/now-live-webhooks-now-support-privacy-compliant-contact-deletions).
  The event body of these two is unconfirmed beyond the common fields (docs/hubspot.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmsync.crms.hubspot.sandbox.state import to_ms
from crmsync.sandbox.http import HttpError, Request, Response

if TYPE_CHECKING:
    from crmsync.crms.hubspot.sandbox.api import HubSpotApp

DELETION = "contact.deletion"
PRIVACY_DELETION = "contact.privacyDeletion"


def deletion_routes(app: HubSpotApp) -> None:
    portal = app.portal

    def found(object_type: str, record_id: str) -> None:
        record = portal.records.get(object_type, {}).get(record_id)
        if record is None or record.archived:
            raise HttpError(404, f"Object not found.  objectId are usually numeric.  ID: {record_id}")

    @app.route("DELETE", "/crm/v3/objects/{object_type}/{record_id}", "objects.archive")
    def archive(request: Request, object_type: str, record_id: str) -> Response:
        found(object_type, record_id)
        record = portal.records[object_type][record_id]
        record.archived, record.archived_at = True, to_ms(portal.clock())
        if object_type == "contacts":
            notify(app, record_id, DELETION)
        return Response(204, None)

    @app.route("POST", "/crm/v3/objects/contacts/gdpr-delete", "objects.gdpr_delete")
    def gdpr_delete(request: Request) -> Response:
        body = request.json()
        record_id = str(body.get("objectId") or "") if isinstance(body, dict) else ""
        if not record_id:
            raise HttpError(400, "objectId is required")
        if record_id not in portal.records["contacts"]:
            raise HttpError(404, f"Object not found.  objectId are usually numeric.  ID: {record_id}")
        del portal.records["contacts"][record_id]
        for linked in portal.associations.values():
            linked.pop(record_id, None)
        portal.events = [e for e in portal.events if e["objectId"] != record_id]
        notify(app, record_id, PRIVACY_DELETION, DELETION)
        return Response(204, None)


def notify(app: HubSpotApp, record_id: str, *subscription_types: str) -> None:
    sender = app.webhook_sender
    if sender is not None:
        for subscription_type in subscription_types:
            sender.deleted(record_id, subscription_type)
