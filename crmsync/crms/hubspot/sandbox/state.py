"""The HubSpot portal the sandbox emulates: records, properties, associations, events, owners.

Rules the real portal applies live here: property values are strings, unknown properties and
bad enumeration values are refused, `lifecyclestage` only moves forward (in the order of its
options' `displayOrder`, custom stages included) unless it is cleared first (a backward write is
silently ignored), every change bumps `lastmodifieddate` and `hs_lastmodifieddate` and is kept in
the property's history, and page views and form submissions set the contact's analytics and
conversion properties.

Sources: [SPEC] = /work/shared/specs/hubspot/*.json, [NOTES] = /work/shared/specs/hubspot/NOTES.md;
what no source confirms is listed under "Unconfirmed" in docs/hubspot.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The 8 default stages, in their default order [NOTES "Lifecycle stage", CL-LCS]; portals may add
# custom stages (numeric internal ids) and reorder them, so the order is the options' displayOrder.
LIFECYCLE_ORDER = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                   "customer", "evangelist", "other"]
LEAD_STATUSES = ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
                 "BAD_TIMING"]
EMPLOYEE_BUCKETS = ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000-5000", "5000-10000", "10000+"]
SOURCES = ["ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS", "OTHER_CAMPAIGNS",
           "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL"]
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
# HubSpot's industry options, (internal value, label), as a real portal defines them for the company
# `industry` enumeration (recorded/hubspot/properties_companies_subset.json: 148 options; the ones the
# seed and the default definitions use are kept here, tests/test_hubspot_industries.py checks each
# against the recording). A contact's `industry` is a single-line text by default (a real portal's
# property list: "Industry", string/text, "The Industry a contact is in"; hairsolutionsco/automations_hub
# hubspot/objects/contacts/properties.md); portals that make it a dropdown of these options store the
# internal values (`industry_dropdown`).
INDUSTRY_OPTIONS = [("BANKING", "Banking"), ("COMPUTER_SOFTWARE", "Computer Software"), ("INTERNET", "Internet"),
                    ("FINANCIAL_SERVICES", "Financial Services"), ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
                    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
                    ("INSURANCE", "Insurance"), ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
                    ("MANAGEMENT_CONSULTING", "Management Consulting"),
                    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"), ("MINING_METALS", "Mining & Metals"),
                    ("RETAIL", "Retail"), ("TELECOMMUNICATIONS", "Telecommunications")]
OBJECT_TYPES = ("contacts", *ENGAGEMENT_TYPES, "deals", "tickets")
# tickets: a standard object on the same object routes (`/crm/v3/objects/tickets`: developers.hubspot.com/docs/api/
# crm/tickets), kept bare (no ticket properties, pipelines or associations): listed, archived, restored, for a
# test's third object type (tests/test_object_type_registered.py)
# HUBSPOT_DEFINED association type ids: contact -> engagement, engagement -> contact
CONTACT_TO = {"calls": 193, "emails": 197, "meetings": 199, "notes": 201, "tasks": 203}
# deal -> contact 3, contact -> deal 4 (HUBSPOT_DEFINED; HubSpot's associations v4 guide, "Association type
# id values"; the sandbox's deal creation already uses type 3)
ASSOCIATION_TYPES = {**{("contacts", t): type_id for t, type_id in CONTACT_TO.items()},
                     ("deals", "contacts"): 3, ("contacts", "deals"): 4}
TO_CONTACT = {"calls": 194, "emails": 198, "meetings": 200, "notes": 202, "tasks": 204}
# Conversion, analytics and email properties HubSpot sets itself on every tier (knowledge.hubspot.com,
# "HubSpot's default contact properties": recent/first conversion, number of form submissions,
# last page seen, number of pageviews, last marketing email open/click date and name, emails
# opened/clicked); values recorded with source ANALYTICS (see docs/hubspot.md).
ANALYTICS = {"recent_conversion_event_name": "string", "recent_conversion_date": "datetime",
             "first_conversion_event_name": "string", "first_conversion_date": "datetime",
             "num_conversion_events": "number", "hs_analytics_last_url": "string",
             "hs_analytics_num_page_views": "number", "hs_email_last_open_date": "datetime",
             "hs_email_last_click_date": "datetime", "hs_email_last_email_name": "string",
             "hs_email_open": "number", "hs_email_click": "number"}
# Ids as real portals hand them out: 11-12 digits (recorded/hubspot/batch_read_contacts.json: "110338039632").
FIRST_ID = 110338039000
DEAL_CALCULATED = ("hs_is_closed", "hs_is_closed_won")
READ_ONLY = {*DEAL_CALCULATED, "hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate",
             *ANALYTICS, "num_associated_deals"}
PAGE_VIEW_EVENT = "e_visited_page"  # recorded: /work/shared/recorded/hubspot/events_e_visited_page.json
# Form submission event type seen on real portals (issue 17 §2; unconfirmed by a recording, see docs/hubspot.md).
FORM_EVENT = "e_form_submission_v2"


def to_ms(moment: datetime) -> datetime:
    """HubSpot keeps timestamps to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class PropertyError(Exception):
    """A write the portal refuses for one record: (error code, property name, message)."""

    def __init__(self, code: str, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


def _prop(name: str, label: str, type_: str, field_type: str, group: str, options: list[str] | None = None, *,
          hubspot_defined: bool = True) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": type_, "fieldType": field_type, "groupName": group,
        "description": "", "options": [
            {"label": o.replace("_", " ").title(), "value": o, "hidden": False, "displayOrder": i}
            for i, o in enumerate(options or [])
        ],
        "displayOrder": -1, "calculated": False, "externalOptions": False, "hasUniqueValue": name == "email",
        "hidden": False, "hubspotDefined": hubspot_defined, "formField": True, "archived": False,
        "createdAt": "2019-08-06T02:41:52.000Z", "updatedAt": "2019-08-06T02:41:52.000Z",
        "modificationMetadata": {"archivable": not hubspot_defined, "readOnlyDefinition": hubspot_defined,
                                 "readOnlyValue": name in READ_ONLY},
    }


def standard_contact_properties() -> dict[str, dict[str, Any]]:
    info = "contactinformation"
    props = [
        _prop("email", "Email", "string", "text", info),
        _prop("firstname", "First Name", "string", "text", info),
        _prop("lastname", "Last Name", "string", "text", info),
        _prop("company", "Company Name", "string", "text", info),
        _prop("jobtitle", "Job Title", "string", "text", info),
        _prop("industry", "Industry", "string", "text", info),
        _prop("country", "Country/Region", "string", "text", info),
        _prop("numemployees", "Number of Employees", "enumeration", "select", info, EMPLOYEE_BUCKETS),
        _prop("hs_analytics_source", "Original Source", "enumeration", "select", "analyticsinformation", SOURCES),
        _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", info, LIFECYCLE_ORDER),
        _prop("hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", LEAD_STATUSES),
        _prop("hubspot_owner_id", "Contact owner", "enumeration", "select", "sales_properties"),
        _prop("createdate", "Create Date", "datetime", "date", info),
        _prop("lastmodifieddate", "Last Modified Date", "datetime", "date", info),
        _prop("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date", info),
        _prop("hs_object_id", "Record ID", "number", "number", info),
        *(_prop(name, name, kind, "date" if kind == "datetime" else "text", "conversioninformation")
          for name, kind in ANALYTICS.items()),
        # "Count of deals associated with this contact", calculated by HubSpot (default contact properties,
        # knowledge.hubspot.com/contacts/hubspots-default-contact-properties)
        _prop("num_associated_deals", "Associated Deals", "number", "number", "deal_information"),
    ]
    return {p["name"]: p for p in props}


def industry_dropdown(portal: Portal) -> None:
    """Make the contact `industry` a dropdown of HubSpot's industry options (see INDUSTRY_OPTIONS)."""
    prop = portal.properties["contacts"]["industry"]
    prop.update(type="enumeration", fieldType="select", options=[
        {"label": label, "value": value, "hidden": False, "displayOrder": i}
        for i, (value, label) in enumerate(INDUSTRY_OPTIONS)])


def standard_engagement_properties(object_type: str) -> dict[str, dict[str, Any]]:
    group = f"{object_type[:-1]}information"
    names = {
        "calls": ["hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_status", "hs_call_disposition"],
        "emails": ["hs_email_subject", "hs_email_text", "hs_email_direction", "hs_email_status"],
        "meetings": ["hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time", "hs_meeting_outcome"],
        "notes": ["hs_note_body"],
        "tasks": ["hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority", "hs_task_type"],
    }[object_type]
    props = [_prop(n, n, "string", "text", group) for n in names]
    props += [_prop(n, n, "datetime", "date", group) for n in ("hs_timestamp", "hs_createdate", "hs_lastmodifieddate")]
    props += [_prop("hubspot_owner_id", "Owner", "enumeration", "select", group),
              _prop("hs_object_id", "Record ID", "number", "number", group)]
    return {p["name"]: p for p in props}


# The default sales pipeline ("default": "Every account initially contains a default pipeline with the
# pipelineId 'default'", developers.hubspot.com/docs/methods/pipelines/pipelines_overview) and its stages with
# their metadata as GET /crm/v3/pipelines/deals returns them: for deals `probability` is "between 0.0 and 1.0,
# 0.0 being Closed Lost and 1.0 being Closed Won" (developers.hubspot.com/docs/api/crm/pipelines), `isClosed`
# marks closedwon and closedlost. The stage ids and the open stages' probabilities are unconfirmed
# (docs/hubspot.md).
DEAL_PIPELINE = "default"
DEAL_STAGE_METADATA = [("appointmentscheduled", "Appointment Scheduled", "0.2"),
                       ("qualifiedtobuy", "Qualified To Buy", "0.4"),
                       ("presentationscheduled", "Presentation Scheduled", "0.6"),
                       ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
                       ("contractsent", "Contract Sent", "0.9"), ("closedwon", "Closed Won", "1.0"),
                       ("closedlost", "Closed Lost", "0.0")]
DEAL_STAGES = [stage for stage, _label, _p in DEAL_STAGE_METADATA]
CLOSED_STAGES = {"closedwon", "closedlost"}
# Currencies of the sandbox portal (a multi-currency portal lists its own; unconfirmed, docs/hubspot.md).
CURRENCIES = ["USD", "EUR", "GBP"]


def deal_pipeline() -> dict[str, Any]:
    """The default pipeline as the pipelines API answers it (stage `metadata` values are strings)."""
    created = "2019-08-06T02:41:52.000Z"
    return {"id": DEAL_PIPELINE, "label": "Sales Pipeline", "displayOrder": 0, "archived": False,
            "createdAt": created, "updatedAt": created,
            "stages": [{"id": stage, "label": label, "displayOrder": i, "archived": False, "createdAt": created,
                        "updatedAt": created, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                        "metadata": {"isClosed": str(stage in CLOSED_STAGES).lower(), "probability": probability}}
                       for i, (stage, label, probability) in enumerate(DEAL_STAGE_METADATA)]}


def deal_closed_flags(stage: str | None) -> dict[str, str]:
    """`hs_is_closed` / `hs_is_closed_won`, calculated by HubSpot from the stage's metadata: closed when the
    stage `isClosed`, won when it is closed with probability 1.0 (pipelines doc above)."""
    metadata = {s["id"]: s["metadata"] for s in deal_pipeline()["stages"]}.get(stage or "")
    closed = metadata is not None and metadata["isClosed"] == "true"
    won = closed and metadata is not None and float(metadata["probability"]) == 1.0
    return {"hs_is_closed": str(closed).lower(), "hs_is_closed_won": str(won).lower()}


def standard_deal_properties() -> dict[str, dict[str, Any]]:
    """The deal properties the sandbox knows: those a deal search returns by default (dealname, amount, closedate,
    pipeline, dealstage, createdate, hs_lastmodifieddate, hs_object_id: [NOTES DOC-SEARCH]), the owner, the
    currency of a multi-currency portal and the calculated closed/won flags (knowledge.hubspot.com "HubSpot's
    default deal properties"; names as on a real portal, hairsolutionsco/automations_hub
    hubspot/objects/deals/properties.md: "Is Deal Closed?", "Is Closed Won")."""
    info = "dealinformation"
    props = [
        _prop("dealname", "Deal Name", "string", "text", info),
        _prop("amount", "Amount", "number", "number", info),
        _prop("deal_currency_code", "Currency", "enumeration", "select", info, CURRENCIES),
        _prop("closedate", "Close Date", "datetime", "date", info),
        _prop("pipeline", "Pipeline", "enumeration", "select", info, [DEAL_PIPELINE]),
        _prop("dealstage", "Deal Stage", "enumeration", "radio", info, DEAL_STAGES),
        _prop("hubspot_owner_id", "Deal owner", "enumeration", "select", info),
        _prop("createdate", "Create Date", "datetime", "date", info),
        _prop("hs_createdate", "HubSpot Create Date", "datetime", "date", info),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", info),
        _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", info, ["true", "false"]),
        _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", info, ["true", "false"]),
        _prop("hs_object_id", "Record ID", "number", "number", info),
    ]
    found = {p["name"]: p for p in props}
    for name in DEAL_CALCULATED:
        found[name].update(calculated=True)
        found[name]["modificationMetadata"]["readOnlyValue"] = True
    return found


@dataclass
class Record:
    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None
    history: dict[str, list[tuple[str, datetime, str]]] = field(default_factory=dict)
    """Every value a property took as (value, time, source), newest first; `versions` gives them as
    `propertiesWithHistory` returns them [SPEC contacts-v3.json ValueWithTimestamp]."""

    def remember(self, name: str, value: str, at: datetime, source: str = "API") -> None:
        versions = self.history.get(name)
        if versions is None:  # the value it was created with is its first version (kept lazily)
            initial = self.properties.get(name)
            versions = self.history[name] = [(initial, self.created_at, "API")] if initial else []
        versions.insert(0, (value, at, source))
        if len(versions) > 1 and at < versions[1][1]:  # an older occurrence (seeding): keep newest first
            versions.sort(key=lambda v: v[1], reverse=True)

    def versions(self, name: str) -> list[dict[str, str]]:
        kept = self.history.get(name)
        if kept is None:
            value = self.properties.get(name)
            kept = [(value, self.created_at, "API")] if value else []
        return [{"value": value, "timestamp": iso(at), "sourceType": source} for value, at, source in kept]


@dataclass
class Portal:
    """All state of one emulated portal. Callers hold the app lock while using it."""

    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    records: dict[str, dict[str, Record]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    associations: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {t: {} for t in ENGAGEMENT_TYPES})
    events: list[dict[str, Any]] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    deal_contacts: dict[str, list[str]] = field(default_factory=dict)
    next_id: int = FIRST_ID
    on_change: list[Callable[[str, str, dict[str, str]], None]] = field(default_factory=list)
    _event_index: dict[str | None, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.properties:
            self.reset()

    def reset(self) -> None:
        self.records = {t: {} for t in OBJECT_TYPES}
        self.properties = {"contacts": standard_contact_properties()}
        self.properties.update({t: standard_engagement_properties(t) for t in ENGAGEMENT_TYPES})
        self.properties["deals"] = standard_deal_properties()
        self.properties["tickets"] = {}
        self.groups = {t: {} for t in OBJECT_TYPES}
        self.groups["contacts"] = {
            name: {"name": name, "label": label, "displayOrder": -1, "archived": False}
            for name, label in (("contactinformation", "Contact information"),
                                ("sales_properties", "Sales properties"),
                                ("analyticsinformation", "Web analytics history"),
                                ("deal_information", "Deal information"))
        }
        self.associations = {t: {} for t in ENGAGEMENT_TYPES}
        self.events = []
        self.owners = []
        self.deal_contacts = {}
        self.next_id = FIRST_ID

    def sorted_events(self, event_type: str | None) -> tuple[list[dict[str, Any]], list[datetime]]:
        """Events of a type in time order, and their times (for bisecting); rebuilt when events were added."""
        key = (event_type, len(self.events))
        cached = self._event_index.get(event_type)
        if cached is None or cached[0] != key:
            ordered = sorted((e for e in self.events if event_type is None or e["eventType"] == event_type),
                             key=lambda e: (e["_at"], e["id"]))
            cached = self._event_index[event_type] = (key, ordered, [e["_at"] for e in ordered])
        return cached[1], cached[2]

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    # --- records ------------------------------------------------------------------------------

    def create(self, object_type: str, properties: dict[str, Any], at: datetime | None = None,
               record_id: str | None = None) -> Record:
        now = to_ms(at or self.clock())
        rid = record_id or self.new_id()
        clean = self.validate(object_type, properties, creating=True)
        base = {"hs_object_id": rid, "createdate": iso(now), "lastmodifieddate": iso(now),
                "hs_lastmodifieddate": iso(now), "hs_createdate": iso(now)}
        if object_type != "contacts":
            base.pop("lastmodifieddate")
            if object_type != "deals":  # deals have `createdate` too [NOTES DOC-SEARCH default properties]
                base.pop("createdate")
        record = Record(rid, {**base, **{k: v for k, v in clean.items() if v != ""}}, now, now)
        if object_type == "deals":
            record.properties.setdefault("pipeline", DEAL_PIPELINE)  # "If a pipeline isn't specified, the
            # default pipeline will be used" (developers.hubspot.com/docs/api/crm/deals)
            record.properties.update(deal_closed_flags(record.properties.get("dealstage")))
        self.records[object_type][rid] = record
        return record

    def update(self, object_type: str, record_id: str, properties: dict[str, Any],
               at: datetime | None = None) -> Record:
        """Apply a write as HubSpot does; raises PropertyError for values it refuses."""
        record = self.records[object_type][record_id]
        clean = self.validate(object_type, properties)
        changed: dict[str, str] = {}
        for name, value in clean.items():
            current = record.properties.get(name, "")
            if name == "lifecyclestage" and value and current and self.rank(value) < self.rank(current):
                continue  # backward: ignored unless cleared first [NOTES "Forward-only", FORUM-LCS]
            if value != current:
                changed[name] = value
        if object_type == "deals" and "dealstage" in changed:
            changed.update({k: v for k, v in deal_closed_flags(changed["dealstage"]).items()
                            if v != record.properties.get(k)})
        if changed:
            now = to_ms(at or self.clock())
            for name, value in changed.items():
                record.remember(name, value, now)
                if value == "":
                    record.properties.pop(name, None)
                else:
                    record.properties[name] = value
            record.properties["hs_lastmodifieddate"] = iso(now)
            if object_type == "contacts":
                record.properties["lastmodifieddate"] = iso(now)
            record.updated_at = now
            for listener in self.on_change:
                listener(object_type, record_id, changed)
            if object_type == "deals" and "dealstage" in changed:
                self.deal_lifecycle_sync(record_id)
        return record

    def validate(self, object_type: str, properties: dict[str, Any], *, creating: bool = False) -> dict[str, str]:
        defined = self.properties[object_type]
        clean: dict[str, str] = {}
        for name, value in properties.items():
            definition = defined.get(name)
            if definition is None:
                raise PropertyError("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist')
            if name in READ_ONLY and (not creating or name in DEAL_CALCULATED):
                raise PropertyError("READ_ONLY_VALUE", name, f'Property "{name}" is read-only')
            text = "" if value is None else str(value)
            options = [o["value"] for o in definition["options"]]
            if definition["type"] == "enumeration" and options and text and text not in options:
                raise PropertyError(
                    "INVALID_OPTION", name,
                    f'{text} was not one of the allowed options: [{", ".join(options)}]',
                )
            if definition["type"] == "number" and text:
                try:
                    float(text)
                except ValueError:
                    raise PropertyError("INVALID_LONG", name, f'"{text}" is not a valid number') from None
            clean[name] = text
        return clean

    # --- deals: HubSpot's deal lifecycle stage sync ------------------------------------------------

    def associate_deal(self, deal_id: str, contact_id: str) -> None:
        """A deal associated with a contact: the contact's deal count goes up and its lifecycle stage
        follows the deal (below)."""
        deals = self.deal_contacts.setdefault(deal_id, [])
        if contact_id in deals or contact_id not in self.records["contacts"]:
            return
        deals.append(contact_id)
        contact = self.records["contacts"][contact_id]
        count = sum(contact_id in linked for linked in self.deal_contacts.values())
        contact.properties["num_associated_deals"] = str(count)
        self.touch(contact_id, self.clock())
        self.deal_lifecycle_sync(deal_id)

    def deal_lifecycle_sync(self, deal_id: str) -> None:
        """With the deals lifecycle stage sync on, HubSpot sets the associated contacts to Opportunity
        when a deal is created, and to Customer when it is closed won; never backward (as any lifecycle
        write). Source: knowledge.hubspot.com/crm-setup/manage-how-lifecycle-stages-sync-between-objects
        ("A deal's pipeline stage can automatically update the lifecycle stages of its associated
        companies and contacts") and knowledge.hubspot.com/articles/kcs_article/contacts/how-can-i-manage-
        the-automatic-syncing-of-lifecycle-stages-between-associated-records ("update the lifecycle stages
        of associated contacts and companies when a deal is created or closed as won"). The sandbox has the
        setting on, with the default pipeline's `closedwon` stage."""
        deal = self.records["deals"][deal_id]
        stage = "customer" if deal.properties.get("dealstage") == "closedwon" else "opportunity"
        for contact_id in self.deal_contacts.get(deal_id, []):
            self.update("contacts", contact_id, {"lifecyclestage": stage})

    def linked(self, from_type: str, to_type: str, record_id: str) -> list[str]:
        """Ids associated with a record, in the order the associations were made."""
        if from_type == "deals":
            return list(self.deal_contacts.get(record_id, []))
        if to_type == "deals":
            return [deal for deal, contacts in self.deal_contacts.items() if record_id in contacts]
        return list(self.associations[to_type].get(record_id, []))

    def associate(self, engagement_type: str, contact_id: str, engagement_id: str) -> None:
        self.associations[engagement_type].setdefault(contact_id, []).append(engagement_id)

    def add_event(self, contact_id: str, event_type: str, occurred_at: datetime, properties: dict[str, str]) -> None:
        self.events.append({
            "objectType": "CONTACT", "objectId": contact_id, "eventType": event_type,
            # ids as recorded (recorded/hubspot/events_e_visited_page.json): leviathan-<uuid>-<epoch ms>
            "occurredAt": iso(occurred_at),
            "id": f"leviathan-{uuid.UUID(int=len(self.events) + 1)}-{epoch_ms(occurred_at)}",
            "properties": properties, "_at": occurred_at,
        })
        self.touch(contact_id, occurred_at)

    def page_view(self, contact_id: str, at: datetime, url: str, title: str = "") -> None:
        """A tracked page view: an `e_visited_page` event (Enterprise API) and, on every tier, the
        contact's "last page seen" and page view count (with history)."""
        at = to_ms(at)
        self.add_event(contact_id, PAGE_VIEW_EVENT, at, {"hs_url": url, "hs_page_title": title})
        record = self.records["contacts"][contact_id]
        self._analytics(record, "hs_analytics_last_url", url, at)
        self._count(record, "hs_analytics_num_page_views", at)

    def form_submission(self, contact_id: str, at: datetime, form_title: str) -> None:
        """A form submitted: an `e_form_submission_v2` event (Enterprise API) and, on every tier, the
        contact's recent/first conversion properties and count (with history)."""
        at = to_ms(at)
        form_id = str(uuid.uuid5(uuid.NAMESPACE_URL, form_title))
        self.add_event(contact_id, FORM_EVENT, at, {"hs_form_title": form_title, "hs_form_id": form_id})
        record = self.records["contacts"][contact_id]
        self._analytics(record, "recent_conversion_event_name", form_title, at)
        self._analytics(record, "recent_conversion_date", iso(at), at)
        first = record.properties.get("first_conversion_date")
        if first is None or iso(at) < first:
            record.properties["first_conversion_event_name"] = form_title
            record.properties["first_conversion_date"] = iso(at)
        self._count(record, "num_conversion_events", at)

    def marketing_email(self, contact_id: str, at: datetime, name: str, *, clicked: bool = False) -> None:
        """A marketing email opened (or a link in it clicked): the last open/click date (with history),
        the last email's name and the counts; no event on any tier (the sandbox has no email events API)."""
        at = to_ms(at)
        record = self.records["contacts"][contact_id]
        prefix = "click" if clicked else "open"
        self._analytics(record, f"hs_email_last_{prefix}_date", iso(at), at)
        self._analytics(record, "hs_email_last_email_name", name, at)
        self._count(record, f"hs_email_{prefix}", at)
        self.touch(contact_id, at)

    @staticmethod
    def _analytics(record: Record, name: str, value: str, at: datetime) -> None:
        """Every occurrence is a version in the history; the current value is the newest one."""
        record.remember(name, value, at, source="ANALYTICS")
        record.properties[name] = record.history[name][0][0]

    @staticmethod
    def _count(record: Record, name: str, at: datetime) -> None:
        record.properties[name] = str(int(record.properties.get(name) or 0) + 1)

    # --- lifecycle stages ---------------------------------------------------------------------

    def lifecycle_options(self) -> list[dict[str, Any]]:
        """The lifecyclestage options in the portal's order (displayOrder) [CL-LCS: read them via the
        Properties API]."""
        return sorted(self.properties["contacts"]["lifecyclestage"]["options"], key=lambda o: o["displayOrder"])

    def rank(self, stage: str) -> int:
        order = [o["value"] for o in self.lifecycle_options()]
        return order.index(stage) if stage in order else len(order)

    def add_lifecycle_stage(self, label: str, before: str | None = None) -> str:
        """An admin adding a custom stage (before `before`, else last): it gets a numeric internal id,
        as custom stages do (issue 17 §4: `"lifecyclestage": "1020243823"`)."""
        options = self.lifecycle_options()
        value = str(1020243823 + len(options))
        at = next((i for i, o in enumerate(options) if o["value"] == before), len(options))
        options.insert(at, {"label": label, "value": value, "hidden": False, "displayOrder": 0, "description": ""})
        for i, option in enumerate(options):
            option["displayOrder"] = i
        self.properties["contacts"]["lifecyclestage"]["options"] = options
        return value

    def touch(self, contact_id: str, at: datetime) -> None:
        """A page view, a form or a logged activity updates the contact's analytics and
        last-activity properties, so the contact counts as modified."""
        record = self.records["contacts"][contact_id]
        at = to_ms(at)
        if at > record.updated_at:
            record.properties["lastmodifieddate"] = record.properties["hs_lastmodifieddate"] = iso(at)
            record.updated_at = at
            for listener in self.on_change:
                listener("contacts", contact_id, {})

