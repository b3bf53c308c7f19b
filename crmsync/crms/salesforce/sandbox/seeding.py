"""Turn CRM-neutral seed leads into Salesforce Leads, Tasks, Events and campaign responses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crmsync.crms.salesforce.mapping import contact_fields, custom_fields, picklist_values
from crmsync.crms.salesforce.sandbox.org import INTEGRATION_USER, Org, sf_time
from crmsync.definitions import default_definitions
from crmsync.definitions.schema import CrmMapping
from crmsync.sandbox.seed import SeedLead, generate

OWNERS = ["0055g00000A1", "0055g00000A2", "0055g00000A3", "0055g00000A4", "0055g00000A5"]
STATUS = {"lead": "Open - Not Contacted", "mql": "Open - Not Contacted", "sal": "Working - Contacted",
          "sql": "Qualified", "opportunity": "Closed - Converted", "customer": "Closed - Converted"}
NEUTRAL_STATUS = {"in_progress": "Working - Contacted", "unqualified": "Closed - Not Converted"}
SOURCE = {"organic": "Web", "paid_search": "Advertisement", "email": "Email", "social": "Social",
          "referral": "Partner Referral", "partner": "Partner Referral", "direct": "Web", "event": "Trade Show"}
DEFAULT_SOURCE = {"organic": "Web", "direct": "Web", "referral": "Partner Referral", "partner": "Partner Referral",
                  "paid_search": "Other", "email": "Other", "social": "Other", "event": "Other"}
"""A default org's LeadSource picklist has Web, Phone Inquiry, Partner Referral, Purchased List and
Other (the recorded describe, describe_lead.json)."""
DEFAULT_INDUSTRY = {"Financial Services": "Finance", "Logistics": "Transportation",
                    "Information Technology": "Technology", "Software": "Technology",
                    "Management Consulting": "Consulting", "Computer Software": "Technology", "E-commerce": "Retail",
                    "Media Production": "Media"}
"""The seed's industries as a default org's standard Industry picklist has them (describe_lead.json);
values already standard (Healthcare, Insurance, Retail, Banking, ...) stay."""
KINDS = {"DateTime": "datetime", "Number": "double", "Checkbox": "boolean", "LongTextArea": "textarea",
         "Picklist": "picklist"}


def install_custom_fields(org: Org, mapping: CrmMapping | None = None, *, grant: bool = True) -> None:
    """The fields `crmsync setup` creates, as if it had run (and, with `grant`, its permission set)."""
    if mapping is None:
        from crmsync.crms.salesforce.crm import CRM  # the registration reads the mapping

        mapping = CRM.mapping(default_definitions().definitions)
    on = [("Lead", field) for field in custom_fields(mapping)] + \
        [("Contact", field) for field in contact_fields(mapping)]
    wanted = [f"{sobject}.{name}" for sobject, (name, _) in on] + ["Task.CRMSync_Task_Key__c"]
    for sobject, (name, kind) in on:
        org.add_custom_field(sobject, name, KINDS.get(kind, "string"),
                             picklist_values(mapping, name) if kind == "Picklist" else None)
    org.add_custom_field("Activity", "CRMSync_Task_Key__c", "string")
    if grant:
        org.grant(INTEGRATION_USER, wanted, name="CRMSync_Integration")


def seed_org(org: Org, count: int, seed: int = 42, now: datetime | None = None, *, custom: bool = True,
             mapping: CrmMapping | None = None) -> list[str]:
    now = now or org.clock()
    if custom:
        install_custom_fields(org, mapping)
    campaigns: dict[str, str] = {}
    ids = []
    for lead in generate(count, seed=seed, owners=len(OWNERS)):
        ids.append(_add(org, lead, now, campaigns, custom=custom))
    return ids


def _add(org: Org, lead: SeedLead, now: datetime, campaigns: dict[str, str], *, custom: bool) -> str:
    created = now - timedelta(days=lead.created_days_ago)
    rich = org.shape == "rich"
    status = STATUS[lead.stage] if lead.stage in ("sql", "opportunity", "customer") \
        else NEUTRAL_STATUS.get(lead.lead_status or "", STATUS[lead.stage])
    sql_by_checkbox = status == "Qualified" and not rich
    values: dict[str, Any] = {
        "FirstName": lead.first_name, "LastName": lead.last_name, "Email": lead.email,
        "Company": lead.company or "[not provided]", "Title": lead.title,
        "Industry": lead.industry if rich else DEFAULT_INDUSTRY.get(lead.industry or "", lead.industry),
        "NumberOfEmployees": lead.employees, "Country": lead.country,
        "LeadSource": (SOURCE if rich else DEFAULT_SOURCE).get(lead.source or ""),
        "Status": "Working - Contacted" if sql_by_checkbox else status, "OwnerId": OWNERS[lead.owner],
    }
    if custom and sql_by_checkbox:
        values["CRMSync_SQL_Requested__c"] = True  # how a rep asks for SQL on a default org
    if custom:
        values.update({f"BANT_{k.title()}__c": v for k, v in lead.bant.items()})
        values["CRMSync_DQ_Reason__c"] = lead.dq_reason
        if lead.stage in ("opportunity", "customer"):
            values["CRMSync_Stage__c"] = lead.stage.title()
    record = org.create("Lead", {k: v for k, v in values.items() if v is not None}, at=created)
    last = created
    for activity in lead.activities:
        at = max(created, now - timedelta(days=activity.days_ago))
        last = max(last, at)
        if activity.kind in ("call", "email"):
            org.create("Task", {"WhoId": record["Id"], "OwnerId": record["OwnerId"], "Subject": activity.detail,
                                "Type": "Call" if activity.kind == "call" else "Email", "Status": "Completed",
                                "TaskSubtype": "Call" if activity.kind == "call" else "Email",
                                "ActivityDate": at.date().isoformat()}, at=at)
        elif activity.kind == "meeting":
            org.create("Event", {"WhoId": record["Id"], "OwnerId": record["OwnerId"], "Subject": activity.detail,
                                 "StartDateTime": sf_time(at)}, at=at)
        elif activity.kind in ("form_submission", "webinar", "email_click", "campaign_response"):
            name = activity.detail or "Campaign"
            cid = campaigns.get(name)
            if cid is None:
                cid = campaigns[name] = org.new_id("Campaign")
                org.records["Campaign"][cid] = {"Id": cid, "Name": name, "Type": "Web Form"
                                                if activity.kind == "form_submission" else "Webinar"}
            member = org.create("CampaignMember", {"LeadId": record["Id"], "CampaignId": cid, "Status": "Responded",
                                                   "HasResponded": True, "FirstRespondedDate": at.date().isoformat()},
                                at=at)
            member["Campaign"] = {"Name": name, "Type": org.records["Campaign"][cid]["Type"]}  # the relationship
        # page views and email opens have no Salesforce object: web analytics live in the marketing tool
    if lead.stage in ("opportunity", "customer"):
        # converted as Salesforce converts (a Contact and an Account; activities moved to the Contact): a
        # converted lead always has its ConvertedContactId. No Opportunity: the seed's deals are the demo's
        # and the tests' own (convertLead's doNotCreateOpportunity)
        org.convert(record["Id"], at=last, opportunity=False)
    org.touch("Lead", record["Id"], last)
    return str(record["Id"])
