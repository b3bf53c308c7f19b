"""Turn CRM-neutral seed leads into HubSpot contacts, engagements, events and owners."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crmsync.crms.hubspot.connector import TASK_KEY_SPEC
from crmsync.crms.hubspot.mapping import property_specs
from crmsync.crms.hubspot.sandbox.state import ENGAGEMENT_TYPES, Portal, iso, to_ms
from crmsync.definitions import default_definitions
from crmsync.definitions.schema import CrmMapping
from crmsync.sandbox.seed import SeedLead, generate

OWNERS = [("Maya", "Okonkwo"), ("Tom", "Becker"), ("Lena", "Hofmann"), ("Raj", "Iyer"), ("Sara", "Lindqvist")]
LIFECYCLE = {"lead": "lead", "mql": "marketingqualifiedlead", "sal": "marketingqualifiedlead",
             "sql": "salesqualifiedlead", "opportunity": "opportunity", "customer": "customer"}
STATUS = {"in_progress": "IN_PROGRESS", "unqualified": "UNQUALIFIED", "new": "NEW"}
SOURCE = {"organic": "ORGANIC_SEARCH", "paid_search": "PAID_SEARCH", "email": "EMAIL_MARKETING",
          "social": "SOCIAL_MEDIA", "referral": "REFERRALS", "partner": "OTHER_CAMPAIGNS", "direct": "DIRECT_TRAFFIC",
          "event": "OFFLINE"}
CRMSYNC_GROUP = "crmsync"
INDUSTRY = {"Financial Services": "FINANCIAL_SERVICES", "Healthcare": "HOSPITAL_HEALTH_CARE",
            "Logistics": "LOGISTICS_AND_SUPPLY_CHAIN", "Information Technology": "INFORMATION_TECHNOLOGY_AND_SERVICES",
            "Software": "COMPUTER_SOFTWARE", "Computer Software": "COMPUTER_SOFTWARE", "Insurance": "INSURANCE",
            "Retail": "RETAIL", "Management Consulting": "MANAGEMENT_CONSULTING", "Banking": "BANKING",
            "Telecommunications": "TELECOMMUNICATIONS", "E-commerce": "INTERNET"}
"""The seed's industries as HubSpot's internal industry values (state.INDUSTRY_OPTIONS): what a portal
stores when the value comes from its own industry options."""


def install_crmsync_properties(portal: Portal, mapping: CrmMapping | None = None) -> None:
    """What `crmsync setup` creates, as if an admin had run it (default definitions unless given)."""
    if mapping is None:
        from crmsync.crms.hubspot.crm import CRM  # the registration reads the mapping

        mapping = CRM.mapping(default_definitions().definitions)
    portal.groups["contacts"][CRMSYNC_GROUP] = {"name": CRMSYNC_GROUP, "label": "crmsync", "displayOrder": -1,
                                                "archived": False}
    portal.groups["tasks"][CRMSYNC_GROUP] = dict(portal.groups["contacts"][CRMSYNC_GROUP])
    for object_type, spec in [*(("contacts", s) for s in property_specs(mapping, CRMSYNC_GROUP)),
                              ("tasks", TASK_KEY_SPEC)]:
        portal.properties[object_type][spec["name"]] = {
            "options": [], **spec, "displayOrder": -1, "calculated": False, "externalOptions": False,
            "hasUniqueValue": False, "hidden": False, "hubspotDefined": False, "formField": False, "archived": False,
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
            "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
        }


def employees_bucket(count: int | None) -> str | None:
    if count is None:
        return None
    for bucket, top in (("1-5", 5), ("5-25", 25), ("25-50", 50), ("50-100", 100), ("100-500", 500),
                        ("500-1000", 1000), ("1000-5000", 5000), ("5000-10000", 10000)):
        if count < top or (top == 500 and count == 500):
            return bucket
    return "10000+"


def seed_portal(portal: Portal, count: int, seed: int = 42, now: datetime | None = None, *,
                crmsync_properties: bool = True, modified_at: datetime | None = None,
                mapping: CrmMapping | None = None) -> list[str]:
    """Fill the portal with `count` realistic contacts; returns their ids in seed order.

    `modified_at` stamps every contact with the same last-modified time (for window tests); `mapping`
    names the crmsync properties to install (the default definitions' unless given)."""
    now = now or portal.clock()
    if crmsync_properties:
        install_crmsync_properties(portal, mapping)
    if not portal.owners:
        for i, (first, last) in enumerate(OWNERS):
            portal.owners.append({"id": str(7001 + i), "email": f"{first.lower()}@example.com", "firstName": first,
                                  "lastName": last, "userId": 9001 + i, "type": "PERSON", "archived": False,
                                  "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z"})
    ids = []
    for lead in generate(count, seed=seed, owners=len(portal.owners)):
        ids.append(_add_lead(portal, lead, now, crmsync_properties=crmsync_properties, modified_at=modified_at))
    return ids


def _add_lead(portal: Portal, lead: SeedLead, now: datetime, *, crmsync_properties: bool,
              modified_at: datetime | None) -> str:
    created = now - timedelta(days=lead.created_days_ago)
    props: dict[str, Any] = {
        "email": lead.email, "firstname": lead.first_name, "lastname": lead.last_name, "company": lead.company,
        "jobtitle": lead.title, "industry": INDUSTRY.get(lead.industry or "", lead.industry), "country": lead.country,
        "numemployees": employees_bucket(lead.employees), "hs_analytics_source": SOURCE.get(lead.source),
        "lifecyclestage": LIFECYCLE[lead.stage], "hs_lead_status": STATUS.get(lead.lead_status or ""),
        "hubspot_owner_id": portal.owners[lead.owner]["id"],
    }
    if crmsync_properties:
        props.update({f"crmsync_bant_{k}": v for k, v in lead.bant.items()})
        props["crmsync_dq_reason"] = lead.dq_reason
    record = portal.create("contacts", {k: v for k, v in props.items() if v not in (None, "")}, at=created)
    last = created
    for activity in lead.activities:
        at = max(created, now - timedelta(days=activity.days_ago))
        last = max(last, at)
        if activity.kind == "page_view":
            portal.page_view(record.id, at, "https://www.example.com" + activity.detail,
                             activity.detail.strip("/") or "Home")
        elif activity.kind == "form_submission":
            portal.form_submission(record.id, at, activity.detail)
        elif activity.kind in ("email_open", "email_click"):
            portal.marketing_email(record.id, at, activity.detail, clicked=activity.kind == "email_click")
        elif activity.kind in ("call", "meeting", "email", "note"):
            _engagement(portal, record.id, activity.kind + "s", activity.detail, at, lead, by_owner=activity.by_owner)
    stamp = to_ms(modified_at or last)
    record.updated_at = stamp
    record.properties["lastmodifieddate"] = record.properties["hs_lastmodifieddate"] = iso(stamp)
    return record.id


def _engagement(portal: Portal, contact_id: str, object_type: str, detail: str, at: datetime, lead: SeedLead, *,
                by_owner: bool) -> None:
    assert object_type in ENGAGEMENT_TYPES
    owner = portal.owners[lead.owner]["id"]
    props = {
        "calls": {"hs_call_title": detail, "hs_call_direction": "OUTBOUND" if by_owner else "INBOUND",
                  "hs_call_status": "COMPLETED"},
        "meetings": {"hs_meeting_title": detail, "hs_meeting_start_time": iso(at)},
        "emails": {"hs_email_subject": detail, "hs_email_direction": "EMAIL" if by_owner else "INCOMING_EMAIL"},
        "notes": {"hs_note_body": detail},
    }[object_type]
    record = portal.create(object_type, {**props, "hs_timestamp": iso(at), "hubspot_owner_id": owner}, at=at)
    portal.associate(object_type, contact_id, record.id)
