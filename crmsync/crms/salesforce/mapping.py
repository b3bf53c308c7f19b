"""Salesforce shapes <-> the CRM-neutral model, in one place; and SOQL literals, always escaped.

A rep asks for SQL by ticking the mapped `sql_request` checkbox (a default org has no "Qualified"
status) or by setting the Lead's Status to the mapped `qualified` value where the org has one;
crmsync's own stage is `CRMSync_Stage__c`. The org's Industry and LeadSource values are read through
the mapping's `industries` and `sources` tables (the admin's), so fit compares the definitions' words.
A converted lead is read-only in Salesforce (CANNOT_UPDATE_CONVERTED_LEAD): it is read (its converted
Contact/Account/Opportunity ids go in the snapshot) and never written; crmsync's stage and pipeline
stamps for it live on its converted Contact (`CONTACT_STAMPS`, same API names as on Lead), read with
the lead and written there. Tasks and Events on the Lead (WhoId) are the owner's
activities; campaign responses are the lead's (a web-form campaign counts as a form submission).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crmsync.connectors.vocabulary import OWNED, Vocabulary
from crmsync.definitions.schema import CrmMapping
from crmsync.errors import RecordError
from crmsync.model import BANT_ITEMS, Activity, Contact, Deal, LeadStatus, PipelineRoute, Stage
from crmsync.rules.values import moment

LEAD_FIELDS = ["Id", "IsDeleted", "FirstName", "LastName", "Email", "Company", "Title", "Industry", "NumberOfEmployees",
               "Country", "LeadSource", "Status", "OwnerId", "IsConverted", "CreatedDate", "SystemModstamp",
               "ConvertedContactId", "ConvertedAccountId", "ConvertedOpportunityId", "ConvertedDate"]
SOURCE = {"Web": "organic", "Advertisement": "paid_search", "Email": "email", "Social": "social",
          "Partner Referral": "referral", "Employee Referral": "referral", "External Referral": "referral",
          "Trade Show": "event", "Phone Inquiry": "direct"}
"""LeadSource values -> the definitions' source words; the mapping's `sources` override these."""
CONVERTED = ("ConvertedContactId", "ConvertedAccountId", "ConvertedOpportunityId")
"""Where a converted lead went (standard Lead fields; describe_lead.json): kept in the snapshot so a
later stream can follow the contact."""
OPPORTUNITY_FIELDS = ["Id", "IsDeleted", "Name", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "CreatedDate",
                      "SystemModstamp", "OwnerId"]
"""The Opportunity fields a deal is read from, each a standard field of the object reference
(developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_opportunity.htm):
StageName (picklist, required), IsClosed and IsWon (booleans set by the stage), Amount (currency,
nillable), CloseDate (date, required), CreatedDate and SystemModstamp (system), Name, OwnerId.
CurrencyIsoCode exists only in orgs with the multicurrency feature: asked for only when the org's
describe lists it (`SalesforceConnector._multicurrency`)."""
CURRENCY = "CurrencyIsoCode"
CONTACT_STAMPS = ("stage", "opportunity_at", "customer_at", "skipped_gate")
"""The crmsync fields a converted lead's Contact carries (created on Contact by setup, same API names as
on Lead): its stage and pipeline stamps. Lead status, BANT, the SQL request and the rest are Lead-only."""
STAMPS_READ = "ConvertedContactStamps"
"""Snapshot marker: the values of the CONTACT_STAMPS fields in this snapshot are the converted Contact's."""
TASK_KEY = "CRMSync_Task_Key__c"
"""The key crmsync puts on the reminder tasks it creates (an external id on Activity)."""


def to_deal(record: dict[str, Any], lead_ids: tuple[str, ...] = ()) -> Deal:
    """An Opportunity as a deal; `lead_ids`: the leads it belongs to (converted into it, or whose converted
    contact has a role on it). A record without an Id, a stage, a readable SystemModstamp, CreatedDate or
    CloseDate, or with an Amount that is not a number, is a RecordError (quarantined)."""
    rid = record.get("Id")
    if not rid:
        raise RecordError("?", "Salesforce returned an opportunity without an Id")
    modified = moment(record.get("SystemModstamp"))
    if modified is None or moment(record.get("CreatedDate")) is None:
        raise RecordError(str(rid), f"SystemModstamp {record.get('SystemModstamp')!r} or CreatedDate "
                                    f"{record.get('CreatedDate')!r} is not a date")
    if not isinstance(record.get("StageName"), str) or not record["StageName"]:
        raise RecordError(str(rid), "opportunity without a StageName")
    amount = record.get("Amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
        raise RecordError(str(rid), f"Amount {amount!r} is not a number")
    close = record.get("CloseDate")
    try:
        if close is not None:
            date.fromisoformat(close)
    except (TypeError, ValueError):
        raise RecordError(str(rid), f"CloseDate {close!r} is not a date") from None
    # dates stay as Salesforce sent them (the model keeps CRM values loosely typed, as for contacts)
    return Deal(id=str(rid), crm="salesforce", name=record.get("Name"), stage=record["StageName"],
                amount=amount, currency=record.get(CURRENCY), close_date=close, created_at=record["CreatedDate"],
                updated_at=modified, is_closed=record.get("IsClosed") is True, is_won=record.get("IsWon") is True,
                owner_id=record.get("OwnerId"), contact_ids=tuple(sorted(set(lead_ids))))


def custom_fields(mapping: CrmMapping) -> list[tuple[str, str]]:
    """(field, metadata type) of the custom Lead fields crmsync reads and writes."""
    f = mapping.fields
    kinds = {"mql_at": "DateTime", "sal_at": "DateTime", "sql_at": "DateTime", "recycled_at": "DateTime",
             "engagement_score": "Number", "fit_reasons": "LongTextArea",
             "sql_blocked_reason": "LongTextArea", "dq_reason_status": "LongTextArea", "sql_request": "Checkbox",
             "stage": "Picklist", "opportunity_at": "DateTime", "customer_at": "DateTime",
             "skipped_gate": "LongTextArea"}
    names = ["sql_request", "stage", "bant_need", "bant_authority", "bant_timeline", "bant_budget", "dq_reason",
             "fit", "fit_reasons", "engagement_score", "mql_at", "sal_at", "sql_at", "recycled_at",
             "sql_blocked_reason", "dq_reason_status", "sla_state", "definitions_version", "opportunity_at",
             "customer_at", "skipped_gate"]
    out: list[tuple[str, str]] = []
    for neutral in names:
        name = getattr(f, neutral)
        if name and name.endswith("__c") and name not in [n for n, _ in out]:
            out.append((name, kinds.get(neutral, "Text")))
    return out


def contact_fields(mapping: CrmMapping) -> list[tuple[str, str]]:
    """(field, metadata type) of the custom fields crmsync creates on Contact: the CONTACT_STAMPS ones."""
    names = {getattr(mapping.fields, neutral) for neutral in CONTACT_STAMPS}
    return [(name, kind) for name, kind in custom_fields(mapping) if name in names]


def picklist_values(mapping: CrmMapping, name: str) -> list[str]:
    """The values of a custom picklist crmsync creates: the stage field's are the mapping's stage values."""
    if name != mapping.fields.stage:
        return []
    return list(dict.fromkeys(getattr(mapping.stages, stage.value) for stage in Stage))


def quote(value: str) -> str:
    """A SOQL string literal: backslashes and quotes escaped, so record data never changes a query."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def soql_time(moment_: datetime) -> str:
    return moment_.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_list(ids: list[str]) -> str:
    return "(" + ", ".join(quote(i) for i in ids) + ")"


class SalesforceMapping(Vocabulary):
    def __init__(self, mapping: CrmMapping) -> None:
        super().__init__(mapping)
        self.stage_for = {value: stage for stage, value in self.stage_values.items()}
        self._on_contact = [name for name, _ in contact_fields(mapping)]

    def lead_fields(self) -> list[str]:
        f = self.fields
        names = [*LEAD_FIELDS, f.stage, f.dq_reason, *(getattr(f, f"bant_{i}") for i in BANT_ITEMS),
                 *(getattr(f, n) for n in OWNED), *([f.sql_request] if f.sql_request else [])]
        return list(dict.fromkeys(names))

    def owned_fields(self) -> list[str]:
        f = self.fields
        return list(dict.fromkeys([f.stage, f.lead_status, *(getattr(f, n) for n in OWNED),
                                   *([f.sql_request] if f.sql_request else [])]))

    def contact_fields(self) -> list[str]:
        """The crmsync fields on a converted lead's Contact (CONTACT_STAMPS)."""
        return list(self._on_contact)

    def sql_requested(self, record: dict[str, Any]) -> bool:
        name = self.fields.sql_request
        return bool(name and record.get(name) in (True, "true", "True"))

    def to_contact(self, record: dict[str, Any], stamps: dict[str, Any] | None = None) -> Contact:
        """A lead as a contact. `stamps`: a converted lead's Contact (its CONTACT_STAMPS fields), None when
        it was not read: crmsync's stage and stamps are then the Contact's, or where the Contact has none
        yet the lead's own from before its conversion (carried over by the next write, `changes`)."""
        rid = record.get("Id")
        if not rid:
            raise RecordError("?", "Salesforce returned a lead without an Id")
        converted = bool(record.get("IsConverted"))
        on_contact = self.contact_fields() if converted and stamps is not None else []
        lead = record
        record = {**record, **{n: stamps[n] for n in on_contact if stamps and stamps.get(n) not in (None, "")}}
        f = self.fields
        modified = moment(record.get("SystemModstamp"))
        if modified is None:
            raise RecordError(str(rid), f"SystemModstamp {record.get('SystemModstamp')!r} is not a date")
        raw_status = record.get(f.lead_status) or ""
        status = self.status_for.get(raw_status) if raw_status else None
        if raw_status and status is None:
            raise RecordError(str(rid), f"Status {raw_status!r} has no lead status in the definitions' Salesforce "
                                        "mapping (run `crmsync doctor`)")
        governed_raw = record.get(f.stage) or ""
        governed = self.stage_for.get(governed_raw)
        if governed_raw and governed is None:
            raise RecordError(str(rid), f"{f.stage} {governed_raw!r} is not a stage value of the mapping")
        stage = governed or Stage.LEAD
        route = PipelineRoute.MANUAL_STAGE if stage.is_sales_owned else None
        if record.get("IsConverted") or status is LeadStatus.CONVERTED:
            stage = governed if governed in (Stage.OPPORTUNITY, Stage.CUSTOMER) else Stage.OPPORTUNITY
            route = PipelineRoute.CONVERSION
        elif status is LeadStatus.QUALIFIED or self.sql_requested(record):
            stage = Stage.SQL  # a rep asked for SQL
        snapshot = {name: self.normal(name, lead.get(name)) for name in self.owned_fields()}
        if converted:
            snapshot["IsConverted"] = "true"
            snapshot.update({name: str(lead[name]) for name in CONVERTED if lead.get(name)})
        if on_contact and stamps is not None:  # what a write to the Contact replaces: the Contact's values
            snapshot.update({name: self.normal(name, stamps.get(name)) for name in on_contact})
            snapshot[STAMPS_READ] = "true"
        company = record.get("Company")
        return Contact(
            id=str(rid), crm="salesforce", email=record.get("Email"), first_name=record.get("FirstName"),
            last_name=record.get("LastName"), company=None if company == "[not provided]" else company,
            title=record.get("Title"), industry=self.industry(record.get("Industry")),
            employees=record.get("NumberOfEmployees"), country=record.get("Country"),
            source=self.source(record.get("LeadSource"), SOURCE),
            owner_id=record.get("OwnerId"), stage=stage.value, governed_stage=governed.value if governed else None,
            lead_status=status.value if status else None, dq_reason=record.get(f.dq_reason),
            bant={item: record.get(getattr(f, f"bant_{item}")) for item in BANT_ITEMS},
            mql_at=record.get(f.mql_at), sal_at=record.get(f.sal_at), sql_at=record.get(f.sql_at),
            recycled_at=record.get(f.recycled_at), created_at=record.get("CreatedDate"), updated_at=modified,
            snapshot=snapshot, opportunity_at=record.get(f.opportunity_at), customer_at=record.get(f.customer_at),
            skipped_gate=record.get(f.skipped_gate), pipeline_route=route.value if route else None,
            # the day the lead was converted (date, read-only: describe_lead.json), the backlog's evidence
            pipeline_entered_at=record.get("ConvertedDate") if route is PipelineRoute.CONVERSION else None,
        )

    @staticmethod
    def task(record: dict[str, Any]) -> Activity | None:
        """A call or an email a person logged; None for anything else: crmsync's own reminders (they
        carry its task key) and to-dos are not contact attempts. TaskSubtype (Call, Email, Task, ...)
        says what the task is; Type (Call, Email, Meeting, Other) where the subtype is a plain task."""
        if record.get(TASK_KEY):
            return None
        kind = record.get("TaskSubtype") if record.get("TaskSubtype") in ("Call", "Email") else record.get("Type")
        if kind not in ("Call", "Email"):
            return None
        return Activity(str(record.get("Id")), "email" if kind == "Email" else "call", record.get("CreatedDate"),
                        record.get("Subject") or "", by_owner=True)

    @staticmethod
    def event(record: dict[str, Any]) -> Activity:
        return Activity(str(record.get("Id")), "meeting", record.get("StartDateTime") or record.get("CreatedDate"),
                        record.get("Subject") or "", by_owner=True)

    def campaign_response(self, record: dict[str, Any]) -> Activity | None:
        """Only members who responded (HasResponded: a member can be merely sent a campaign); the kind
        comes from the campaign's Type through the mapping's `campaign_types`."""
        if record.get("HasResponded") is False:
            return None
        campaign = record.get("Campaign") or {}
        kind = self.mapping.campaign_types.get(str(campaign.get("Type") or ""), "campaign_response")
        return Activity(str(record.get("Id")), kind, record.get("CreatedDate"), campaign.get("Name") or "")

    def changes(self, contact: Contact, writes: dict[str, str]) -> dict[str, Any]:
        """The fields to write. A ticked SQL request is cleared when the SQL is not kept. A converted lead's
        go to its Contact (`contact_changes`)."""
        if contact.snapshot.get("IsConverted") == "true":
            return self.contact_changes(contact, writes)
        f = self.fields
        wanted: dict[str, Any] = {}
        if f.sql_request and "stage" in writes and writes["stage"] != Stage.SQL.value and \
                contact.snapshot.get(f.sql_request) in ("True", "true"):
            wanted[f.sql_request] = False
        for name, value in writes.items():
            if name in ("stage", "governed_stage"):  # on Salesforce crmsync's stage is its own field
                wanted[f.stage] = self.stage_values[Stage(value)]
            elif name == "lead_status":
                mapped = self.status_values[LeadStatus(value)]
                if mapped is not None:
                    wanted[f.lead_status] = mapped
            elif name == "engagement_score":
                wanted[f.engagement_score] = float(value)
            else:
                wanted[getattr(f, name)] = value if value != "" else None
        return {k: v for k, v in wanted.items() if not self.same(k, contact.snapshot.get(k, ""), v)}

    def contact_changes(self, contact: Contact, writes: dict[str, str]) -> dict[str, Any]:
        """A converted lead's writes, for its converted Contact: Salesforce refuses every update of a
        converted lead (CANNOT_UPDATE_CONVERTED_LEAD, Salesforce Help 000384333), so crmsync's stage and
        stamps go to the Contact, the fields it has (CONTACT_STAMPS); the Lead-only ones (lead status, SQL
        request, scores, SLA state, ...) are not written. Nothing when the Contact's fields were not read
        (no converted Contact, or setup has not created them). A stamp the lead had before its conversion
        is carried over to a Contact that has none."""
        if contact.snapshot.get(STAMPS_READ) != "true":
            return {}
        f = self.fields
        wanted: dict[str, Any] = {}
        for name, value in writes.items():
            if name in ("stage", "governed_stage"):
                wanted[f.stage] = self.stage_values[Stage(value)]
            elif name in CONTACT_STAMPS:
                wanted[getattr(f, name)] = value if value != "" else None
        for name in ("opportunity_at", "customer_at", "skipped_gate"):
            field, value = getattr(f, name), getattr(contact, name)
            if field not in wanted and value not in (None, "") and not contact.snapshot.get(field):
                wanted[field] = self.normal(field, value)
        allowed = set(self.contact_fields())
        return {k: v for k, v in wanted.items()
                if k in allowed and not self.same(k, contact.snapshot.get(k, ""), v)}
