"""HubSpot shapes <-> the CRM-neutral model, in one place.

Reading: a contact's properties become a `Contact` (stage from `lifecyclestage` disambiguated by
`crmsync_stage`, lead status through the definitions' mapping, employees from the `numemployees`
buckets); engagements and web-analytics events become `Activity`s. Writing: a decision's
neutral `writes` become HubSpot properties, diffed against what was pulled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmsync.connectors.vocabulary import OWNED, TIMESTAMPS, Vocabulary
from crmsync.definitions.schema import CrmMapping
from crmsync.errors import RecordError
from crmsync.model import BANT_ITEMS, Activity, Contact, Deal, LeadStatus, PipelineRoute, Stage
from crmsync.rules.values import moment

LIFECYCLE_ORDER = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                   "customer", "evangelist", "other"]
LIFECYCLE_ALIASES = {"subscriber": Stage.LEAD, "evangelist": Stage.CUSTOMER}
SOURCE = {"ORGANIC_SEARCH": "organic", "PAID_SEARCH": "paid_search", "EMAIL_MARKETING": "email",
          "SOCIAL_MEDIA": "social", "REFERRALS": "referral", "OTHER_CAMPAIGNS": "partner",
          "DIRECT_TRAFFIC": "direct", "OFFLINE": "event", "PAID_SOCIAL": "social"}
CONTACT_PROPERTIES = ["email", "firstname", "lastname", "company", "jobtitle", "industry", "numemployees", "country",
                      "hs_analytics_source", "createdate", "lastmodifieddate", "hs_object_id",
                      "num_associated_deals"]
# num_associated_deals: HubSpot's default contact property "Count of deals associated with this
# contact" (knowledge.hubspot.com/contacts/hubspots-default-contact-properties); a contact with a deal
# came into pipeline through it (HubSpot's deal lifecycle stage sync, see docs/hubspot.md).
# Deal properties read by the deal stream. Names: the default properties a deal search returns (dealname,
# amount, closedate, pipeline, dealstage, createdate, hs_lastmodifieddate, hs_object_id: [DOC-SEARCH] in
# ../shared/specs/hubspot/NOTES.md, "Searchable CRM objects"), the owner (`hubspot_owner_id`, as on every CRM
# object), the currency of multi-currency portals (`deal_currency_code`) and HubSpot's calculated
# `hs_is_closed` / `hs_is_closed_won` ("Is Deal Closed?", "Is Closed Won": knowledge.hubspot.com
# "HubSpot's default deal properties"; a real portal's deal property list, hairsolutionsco/automations_hub
# hubspot/objects/deals/properties.md). No deals spec or recorded deal is in ../shared (docs/hubspot.md).
DEAL_PROPERTIES = ["dealname", "dealstage", "pipeline", "amount", "deal_currency_code", "closedate", "createdate",
                   "hs_lastmodifieddate", "hs_is_closed", "hs_is_closed_won", "hubspot_owner_id", "hs_object_id"]
BOOLEAN = {"true": True, "false": False, "": False}
ENGAGEMENT_PROPERTIES = {
    "calls": ["hs_timestamp", "hs_call_title", "hs_call_direction", "hubspot_owner_id"],
    "emails": ["hs_timestamp", "hs_email_subject", "hs_email_direction", "hubspot_owner_id"],
    "meetings": ["hs_timestamp", "hs_meeting_title", "hubspot_owner_id"],
}
# Web-analytics event types (events API, Enterprise only): page views are recorded
# (recorded/hubspot/events_e_visited_page.json); the form types are the ones seen on real portals
# (issue 17 §2). An activity's detail is the first of its properties that is set.
EVENT_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "e_visited_page": ("page_view", ("hs_url", "hs_page_title")),
    "e_form_submission_v2": ("form_submission", ("hs_form_title", "hs_page_title", "hs_form_id")),
    "e_form_submission": ("form_submission", ("hs_form_title", "hs_page_title", "hs_form_id")),
}
# Contact properties HubSpot sets on every tier, read with their history (each version is one
# occurrence): the last form submitted ("Recent conversion") and the last page seen (below Enterprise,
# where there is no events API), and the last marketing email open and click (every tier)
# (knowledge.hubspot.com "HubSpot's default contact properties"; docs/hubspot.md says what is unconfirmed).
# Property -> (activity kind, whether the value is the activity's detail).
PAGE_AND_FORM_HISTORY = {"recent_conversion_event_name": ("form_submission", True),
                         "hs_analytics_last_url": ("page_view", True)}
EMAIL_HISTORY = {"hs_email_last_open_date": ("email_open", False), "hs_email_last_click_date": ("email_click", False)}
HISTORY_KINDS = {**PAGE_AND_FORM_HISTORY, **EMAIL_HISTORY}


class HubSpotMapping(Vocabulary):
    def __init__(self, mapping: CrmMapping) -> None:
        super().__init__(mapping)
        self.industry_labels: dict[str, str] | None = None
        """The portal's `industry` options (value -> label), once read; empty for a text property."""
        self.stages_for: dict[str, list[Stage]] = {}
        for stage, value in self.stage_values.items():
            self.stages_for.setdefault(value, []).append(stage)

    # --- reading ------------------------------------------------------------------------------

    def contact_properties(self) -> list[str]:
        f = self.fields
        names = [*CONTACT_PROPERTIES, f.stage, f.lifecycle, f.lead_status, f.owner,
                 *(getattr(f, f"bant_{item}") for item in BANT_ITEMS), *(getattr(f, name) for name in OWNED)]
        return list(dict.fromkeys(names))

    def to_contact(self, record_id: Any, properties: dict[str, Any], updated_at: Any = None) -> Contact:
        """A HubSpot contact as the engine sees it; raises RecordError when it cannot be mapped."""
        f = self.fields
        rid, p, modified = _identified("contact", record_id, properties, "lastmodifieddate", updated_at)
        lifecycle = p.get(f.lifecycle, "")
        governed = _stage_or_none(p.get(f.stage))
        stage = self.stage_from(lifecycle, governed)
        if lifecycle and stage is None:
            raise RecordError(rid, f"{f.lifecycle} {lifecycle!r} has no stage in the definitions' HubSpot mapping")
        raw_status = p.get(f.lead_status, "")
        status = self.status_for.get(raw_status) if raw_status else None
        if raw_status and status is None:
            raise RecordError(rid, f"{f.lead_status} {raw_status!r} has no lead status in the definitions' "
                                   "HubSpot mapping (run `crmsync doctor`)")
        snapshot = {name: self.normal(name, p.get(name, "")) for name in self.owned_properties()}
        return Contact(
            id=rid, crm="hubspot", email=p.get("email"), first_name=p.get("firstname"), last_name=p.get("lastname"),
            company=p.get("company"), title=p.get("jobtitle"),
            industry=self.industry(p.get("industry"), self.industry_labels),
            employees=p.get("numemployees"), country=p.get("country"),
            source=self.source(p.get("hs_analytics_source"), SOURCE),
            owner_id=p.get(f.owner), stage=stage.value if stage else None,
            governed_stage=governed.value if governed else None, lead_status=status.value if status else None,
            dq_reason=p.get(f.dq_reason), bant={item: p.get(getattr(f, f"bant_{item}")) for item in BANT_ITEMS},
            mql_at=p.get(f.mql_at), sal_at=p.get(f.sal_at), sql_at=p.get(f.sql_at), recycled_at=p.get(f.recycled_at),
            created_at=p.get("createdate"), updated_at=modified, snapshot=snapshot,
            opportunity_at=p.get(f.opportunity_at), customer_at=p.get(f.customer_at),
            skipped_gate=p.get(f.skipped_gate), pipeline_route=_route(stage, p.get("num_associated_deals")),
        )

    @staticmethod
    def to_deal(record_id: Any, properties: dict[str, Any], updated_at: Any = None,
                contact_ids: list[str] | tuple[str, ...] = ()) -> Deal:
        """A HubSpot deal as the sync sees it; raises RecordError when it cannot be mapped (no id, a last
        modification that is not a date, closed/won flags that are not booleans). Other values stay as
        HubSpot sent them (the model keeps CRM values loosely typed): an `amount` of "12k" is kept, for
        whoever totals amounts to judge, not a reason to lose the deal."""
        rid, p, modified = _identified("deal", record_id, properties, "hs_lastmodifieddate", updated_at)
        flags = {}
        for name in ("hs_is_closed", "hs_is_closed_won"):
            value = str(p.get(name, "")).strip().lower()
            if value not in BOOLEAN:
                raise RecordError(rid, f"deal {name} {p.get(name)!r} is neither true nor false")
            flags[name] = BOOLEAN[value]
        won = flags["hs_is_closed_won"]
        return Deal(
            id=rid, crm="hubspot", name=p.get("dealname"), stage=p.get("dealstage"), pipeline=p.get("pipeline"),
            amount=p.get("amount"), currency=p.get("deal_currency_code"), close_date=p.get("closedate"),
            created_at=p.get("createdate"), updated_at=modified, is_closed=flags["hs_is_closed"] or won, is_won=won,
            owner_id=p.get("hubspot_owner_id"), contact_ids=tuple(sorted(set(contact_ids), key=numeric_key)),
        )

    def needs_industry_labels(self, properties: dict[str, Any]) -> bool:
        """Whether this contact's industry value is not in the mapping and the portal's labels are unread."""
        value = properties.get("industry")
        return self.industry_labels is None and isinstance(value, str) and value != "" \
            and value not in self.mapping.industries

    def stage_from(self, lifecycle: str, governed: Stage | None) -> Stage | None:
        if not lifecycle:
            return governed or Stage.LEAD
        candidates = self.stages_for.get(lifecycle)
        if not candidates:
            return LIFECYCLE_ALIASES.get(lifecycle)
        if governed in candidates:
            return governed
        return min(candidates, key=lambda s: (s.is_side_exit, s.rank))

    def engagement(self, object_type: str, record_id: str, properties: dict[str, Any]) -> Activity:
        p = properties
        if object_type == "calls":
            return Activity(record_id, "call", p.get("hs_timestamp"), p.get("hs_call_title") or "",
                            by_owner=p.get("hs_call_direction") != "INBOUND")
        if object_type == "emails":
            return Activity(record_id, "email", p.get("hs_timestamp"), p.get("hs_email_subject") or "",
                            by_owner=p.get("hs_email_direction") != "INCOMING_EMAIL")
        return Activity(record_id, "meeting", p.get("hs_timestamp"), p.get("hs_meeting_title") or "", by_owner=True)

    @staticmethod
    def event(event_type: Any, event_id: Any, occurred_at: Any, properties: dict[str, Any]) -> Activity | None:
        kind = EVENT_KINDS.get(event_type)
        if kind is None:
            return None
        p = properties or {}
        return Activity(event_id, kind[0], occurred_at, next((p[n] for n in kind[1] if p.get(n)), ""))

    @staticmethod
    def from_history(contact_id: str, history: dict[str, list[dict[str, Any]]]) -> list[Activity]:
        """Activities from the versions of HISTORY_KINDS properties (those asked for: `propertiesWithHistory`,
        each version's `value` and `timestamp`); the id is stable (property and time) so a version read
        again is the same activity."""
        found = []
        for name, (kind, detailed) in HISTORY_KINDS.items():
            for version in history.get(name) or []:
                value, at = version.get("value"), version.get("timestamp")
                if value and at is not None:
                    found.append(Activity(f"{contact_id}:{name}:{moment(at)}", kind, at, value if detailed else ""))
        return found

    # --- writing ------------------------------------------------------------------------------

    def owned_properties(self) -> list[str]:
        f = self.fields
        return list(dict.fromkeys([f.stage, f.lifecycle, f.lead_status, *(getattr(f, n) for n in OWNED)]))

    def changes(self, contact: Contact, writes: dict[str, str]) -> dict[str, str]:
        """The HubSpot properties to write for a decision: only those that differ from the pull."""
        f = self.fields
        wanted: dict[str, str] = {}
        for name, value in writes.items():
            if name == "stage":
                stage = Stage(value)
                wanted[f.stage] = stage.value
                wanted[f.lifecycle] = self.stage_values[stage]
            elif name == "governed_stage":  # crmsync's own stage only: lifecyclestage belongs to sales
                wanted[f.stage] = value
            elif name == "lead_status":
                mapped = self.status_values[LeadStatus(value)]
                if mapped is not None:
                    wanted[f.lead_status] = mapped
            else:
                wanted[getattr(f, name)] = value
        return {k: v for k, v in wanted.items() if not self.same(k, contact.snapshot.get(k, ""), v)}

    def moves_lifecycle_back(self, previous: str, new: str, order: list[str] | None = None) -> bool:
        """Backward in the portal's stage order (`order`: the lifecyclestage options by displayOrder,
        custom stages included), else in HubSpot's default order."""
        if not previous or not new:
            return False
        rank = {value: i for i, value in enumerate(order or LIFECYCLE_ORDER)}
        return rank.get(new, len(rank)) < rank.get(previous, len(rank))


def _route(stage: Stage | None, deals: Any) -> str | None:
    """How a contact in pipeline got there: through a deal when one is associated, else by hand."""
    if stage is None or not stage.is_sales_owned:
        return None
    try:
        with_deal = float(deals or 0) > 0
    except (TypeError, ValueError):
        with_deal = False
    return (PipelineRoute.DEAL if with_deal else PipelineRoute.MANUAL_STAGE).value


def _identified(kind: str, record_id: Any, properties: dict[str, Any], modified_name: str,
                updated_at: Any) -> tuple[str, dict[str, Any], Any]:
    """A record's id, its set properties and its last modification; RecordError without an id or a date."""
    if not record_id:
        raise RecordError("?", f"HubSpot returned a {kind} without an id")
    rid = str(record_id)
    p = {k: v for k, v in properties.items() if v is not None}
    modified = moment(p.get(modified_name) or updated_at)
    if modified is None:
        raise RecordError(rid, f"{kind} {modified_name} {p.get(modified_name)!r} is not a date")
    return rid, p, modified


def numeric_key(value: str) -> tuple[int, str]:
    """Sorts HubSpot ids (numbers as text) by number."""
    return (int(value), value) if value.isdigit() else (0, value)


def _stage_or_none(value: Any) -> Stage | None:
    try:
        return Stage(value) if value else None
    except ValueError:
        return None


def property_specs(mapping: CrmMapping, group: str) -> list[dict[str, Any]]:
    """The contact properties `crmsync setup` creates: BANT and reason (reps), and crmsync's own."""
    f = mapping.fields
    standard = {f.lifecycle, f.lead_status, f.owner}
    labels = {"stage": "crmsync stage", "bant_need": "BANT: need", "bant_authority": "BANT: authority",
              "bant_timeline": "BANT: timeline", "bant_budget": "BANT: budget",
              "dq_reason": "Disqualification reason code", "fit": "Fit (crmsync)", "fit_reasons": "Fit reasons",
              "engagement_score": "Engagement score", "mql_at": "Became MQL", "sal_at": "Became SAL",
              "sql_at": "Became SQL", "recycled_at": "Recycled at", "sql_blocked_reason": "Why SQL is blocked",
              "dq_reason_status": "Reason code check", "sla_state": "SLA state",
              "definitions_version": "Definitions version", "opportunity_at": "Became opportunity",
              "customer_at": "Became customer", "skipped_gate": "Skipped SQL gate (missing, route)"}
    specs = []
    for neutral, label in labels.items():
        name = getattr(f, neutral)
        if name in standard:
            continue
        spec: dict[str, Any] = {"name": name, "label": label, "groupName": group, "type": "string",
                                "fieldType": "text", "description": f"Managed by crmsync ({neutral})"}
        if neutral in TIMESTAMPS:
            spec.update(type="datetime", fieldType="date")
        elif neutral == "engagement_score":
            spec.update(type="number", fieldType="number")
        elif neutral == "fit":
            spec.update(type="enumeration", fieldType="booleancheckbox",
                        options=[{"label": "Yes", "value": "true", "hidden": False, "displayOrder": 0},
                                 {"label": "No", "value": "false", "hidden": False, "displayOrder": 1}])
        specs.append(spec)
    return specs


def epoch_ms(moment_: datetime) -> str:
    return str(int(moment_.timestamp() * 1000))
