"""The Salesforce org the sandbox emulates: Leads, Tasks, Events, CampaignMembers, LeadStatus,
Opportunities and their contact roles,
the fields each object has (standard and custom), sessions (each for a user), field-level security,
lead conversion, the daily API limit, and validation rules on Lead: the built-in switch (Status
'Qualified' needs the four BANT fields) and rules saved through the Tooling API (`ValidationRule`),
whose formulas formula.py evaluates.

Two shapes: "default" (a new org: the four standard Lead statuses, as the recorded describe of a
scratch org shows, ../shared/recorded/salesforce/describe_lead.json) and "rich" (an org whose admin
added "Qualified" and "Unqualified"). Every change bumps SystemModstamp and LastModifiedDate,
Salesforce's change cursor; an activity bumps its lead's SystemModstamp only when it moves the lead's
LastActivityDate (`_roll_up_activity`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.crms.salesforce.sandbox.formula import compile_formula

PREFIX = {"Lead": "00Q", "Task": "00T", "Event": "00U", "CampaignMember": "00v", "LeadStatus": "01J",
          "Campaign": "701", "User": "005", "CustomField": "00N", "PermissionSet": "0PS", "FieldPermissions": "01k",
          "PermissionSetAssignment": "0Pa", "ValidationRule": "03d", "Contact": "003", "Account": "001",
          "Opportunity": "006", "OpportunityContactRole": "00K", "ObjectPermissions": "110"}
DEFAULT_STATUSES = [("Open - Not Contacted", False, True), ("Working - Contacted", False, False),
                    ("Closed - Converted", True, False), ("Closed - Not Converted", False, False)]
"""A new org's Lead Status picklist: the recorded describe (describe_lead.json) has exactly these four."""
RICH_STATUSES = [("Open - Not Contacted", False, True), ("Working - Contacted", False, False),
                 ("Qualified", False, False), ("Unqualified", False, False), ("Closed - Converted", True, False),
                 ("Closed - Not Converted", False, False)]
STANDARD_INDUSTRIES = ["Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
                       "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
                       "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government", "Healthcare",
                       "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
                       "Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
                       "Utilities", "Other"]
STANDARD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
"""A new org's Industry and LeadSource picklists, as the recorded describe has them (describe_lead.json;
tests/test_salesforce_setup.py checks they are equal)."""
RICH_INDUSTRIES = ["Financial Services", "Healthcare", "Logistics", "Information Technology", "Software",
                   "Insurance", "Retail", "Biotechnology", "Management Consulting", "Telecommunications",
                   "Computer Software", "Banking", "E-commerce", "Media Production"]
RICH_SOURCES = ["Web", "Advertisement", "Email", "Social", "Partner Referral", "Trade Show", "Phone Inquiry"]
"""The rich org's admin replaced the picklists with the seed's (and the definitions') own words."""
LEAD_STATUSES = RICH_STATUSES  # kept for callers that list the rich org's statuses
SHAPES = {"default": DEFAULT_STATUSES, "rich": RICH_STATUSES}
INTEGRATION_USER = "0055g0000000001AAA"
"""The user every OAuth session and the fixed token act as (the id in the token answer's identity URL)."""
ACTIVITY_OBJECTS = ("Task", "Event")
SYSTEM = ["Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"]
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "Lead": {**dict.fromkeys(SYSTEM, "system"), "FirstName": "string", "LastName": "string", "Email": "email",
             "Company": "string", "Title": "string", "Industry": "picklist", "NumberOfEmployees": "int",
             "Country": "string", "LeadSource": "picklist", "Status": "picklist", "OwnerId": "reference",
             "IsConverted": "readonly", "ConvertedDate": "readonly", "ConvertedContactId": "readonly",
             "ConvertedAccountId": "readonly", "ConvertedOpportunityId": "readonly",
             "LastActivityDate": "readonly"},
    "Task": {**dict.fromkeys(SYSTEM, "system"), "WhoId": "reference", "WhatId": "reference", "OwnerId": "reference",
             "Subject": "string",
             "Description": "textarea", "ActivityDate": "date", "Status": "picklist", "Type": "picklist",
             "TaskSubtype": "picklist", "Priority": "picklist"},
    "Event": {**dict.fromkeys(SYSTEM, "system"), "WhoId": "reference", "WhatId": "reference", "OwnerId": "reference",
              "Subject": "string", "StartDateTime": "datetime", "Type": "picklist"},
    "CampaignMember": {**dict.fromkeys(SYSTEM, "system"), "LeadId": "reference", "CampaignId": "reference",
                       "Status": "picklist", "HasResponded": "boolean", "FirstRespondedDate": "date"},
    "LeadStatus": {"Id": "system", "MasterLabel": "string", "ApiName": "string", "IsConverted": "boolean",
                   "IsDefault": "boolean", "SortOrder": "int"},
    "User": {"Id": "system", "Username": "string", "Name": "string", "IsActive": "boolean"},
    # FieldPermissions, PermissionSet and PermissionSetAssignment are plain sObjects (create, query):
    # https://developer.salesforce.com/docs/atlas.en-us.262.0.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
    "PermissionSet": {**dict.fromkeys(SYSTEM, "system"), "Name": "string", "Label": "string",
                      "PermissionsEditTask": "boolean"},
    # ObjectPermissions: ParentId, SobjectType, PermissionsRead/Create/Edit/Delete (object reference,
    # ObjectPermissions: developer.salesforce.com/docs/platform/object-reference/references/standard-objects/
    # object-objectpermissions.html)
    "ObjectPermissions": {**dict.fromkeys(SYSTEM, "system"), "ParentId": "reference", "SobjectType": "picklist",
                          "PermissionsRead": "boolean", "PermissionsCreate": "boolean", "PermissionsEdit": "boolean",
                          "PermissionsDelete": "boolean"},
    "FieldPermissions": {**dict.fromkeys(SYSTEM, "system"), "ParentId": "reference", "SobjectType": "picklist",
                         "Field": "picklist", "PermissionsRead": "boolean", "PermissionsEdit": "boolean"},
    "PermissionSetAssignment": {**dict.fromkeys(SYSTEM, "system"), "PermissionSetId": "reference",
                                "AssigneeId": "reference"},
    "Campaign": {**dict.fromkeys(SYSTEM, "system"), "Name": "string", "Type": "picklist"},
    "Account": {**dict.fromkeys(SYSTEM, "system"), "Name": "string", "Industry": "picklist", "OwnerId": "reference"},
    "Contact": {**dict.fromkeys(SYSTEM, "system"), "FirstName": "string", "LastName": "string", "Email": "email",
                "Title": "string", "AccountId": "reference", "OwnerId": "reference"},
    # Opportunity and OpportunityContactRole fields as the object reference lists them (developer.salesforce.com/
    # docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_opportunity.htm and
    # sforce_api_objects_opportunitycontactrole.htm): IsClosed and IsWon follow StageName (`_stage`)
    "Opportunity": {**dict.fromkeys(SYSTEM, "system"), "Name": "string", "AccountId": "reference",
                    "StageName": "picklist", "CloseDate": "date", "OwnerId": "reference", "Amount": "currency",
                    "IsClosed": "readonly", "IsWon": "readonly"},
    "OpportunityContactRole": {**dict.fromkeys(SYSTEM, "system"), "OpportunityId": "reference",
                               "ContactId": "reference", "IsPrimary": "boolean", "Role": "picklist"},
}
OPPORTUNITY_STAGES = [("Prospecting", False, False), ("Qualification", False, False),
                      ("Needs Analysis", False, False), ("Value Proposition", False, False),
                      ("Id. Decision Makers", False, False), ("Perception Analysis", False, False),
                      ("Proposal/Price Quote", False, False), ("Negotiation/Review", False, False),
                      ("Closed Won", True, True), ("Closed Lost", True, False)]
"""A new org's opportunity stages (label, closed, won): each stage value says whether it is closed and
won (object reference, OpportunityStage: IsClosed, IsWon), and an Opportunity's IsClosed and IsWon
are its stage's. The ten labels are the ones integrations list for a default org (unconfirmed from a
Salesforce page; docs/salesforce.md)."""
OBJECT_PERMISSION_TYPES = ("Lead", "Contact", "Account", "Campaign", "Opportunity")
"""The objects an ObjectPermissions row can name (its SobjectType, a restricted picklist). Task and Event,
CampaignMember and OpportunityContactRole have no rows of their own: their access follows the records
they belong to (`object_access`). Which objects a real org lists is unconfirmed (docs/salesforce.md);
crmsync's setup reads the picklist from the org's describe instead of assuming it."""
ACCOUNT_CHILDREN = {"Contact": "Account", "Opportunity": "Account"}
"""Read on these depends on read on their Account in the same permission set: a row without it is refused
with FIELD_INTEGRITY_EXCEPTION "Permission Read X depends on permission(s): Read Accounts" (the shape
support.picnet.net 114094068031 quotes for Contracts; for Contact and Opportunity unconfirmed,
docs/salesforce.md)."""
SETUP_OBJECTS = frozenset({"User", "LeadStatus", "PermissionSet", "FieldPermissions", "ObjectPermissions",
                           "PermissionSetAssignment", "CustomField", "ValidationRule"})
"""Objects whose access is not object permissions (setup data, read with View Setup and Configuration;
the LeadStatus picklist): the sandbox leaves them open."""
BANT_FIELDS = ["BANT_Need__c", "BANT_Authority__c", "BANT_Timeline__c", "BANT_Budget__c"]
BUILT_IN_RULE = ('AND(ISPICKVAL(Status, "Qualified"), OR(ISBLANK(TRIM(BANT_Need__c)), '
                 'ISBLANK(TRIM(BANT_Authority__c)), ISBLANK(TRIM(BANT_Timeline__c)), ISBLANK(TRIM(BANT_Budget__c))))')
BUILT_IN_MESSAGE = "Document need, authority, timeline and budget before setting Qualified"
"""The `validation_rule` switch: the admin's own rule on a rich org, as a formula."""


def sf_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class FieldError(Exception):
    def __init__(self, code: str, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


@dataclass
class Org:
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    sessions: dict[str, datetime] = field(default_factory=dict)
    session_users: dict[str, str] = field(default_factory=dict)
    session_seconds: float = 7200.0
    api_limit: int = 100_000
    api_used: int = 0
    validation_rule: bool = False
    require_validation_on_convert: bool = False
    """Lead Settings' "Require Validation for Converted Leads": off unless the admin enables it
    (Salesforce Help 000386058, "Validation rule not firing when converting Leads")."""
    credentials: dict[str, str] | None = None
    counter: int = 0
    shape: str = "default"
    external_ids: set[str] = field(default_factory=set)
    custom_picklists: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    connected_app: Any = None
    """The JWT bearer flow's connected app (oauth.ConnectedApp), if the org has one."""
    login_host: bool = False
    multicurrency: bool = False
    """An org with the multicurrency feature: Opportunity has CurrencyIsoCode ("available only for orgs
    with the multicurrency feature enabled"; a new org has none: the recorded Lead describe of a scratch
    org has no CurrencyIsoCode)."""
    failing_bulk_jobs: int = 0
    """The next N Bulk query jobs end Failed."""
    concurrent_refusals: int = 0
    """The next N API calls are refused by the concurrent long-running request limit."""
    """The sandbox plays login.salesforce.com: the client-credentials flow is refused (oauth.py)."""
    on_change: list[Callable[[str, str], None]] = field(default_factory=list)
    minimum_access: set[str] = field(default_factory=set)
    """Users whose profile is "Minimum Access - API Only Integrations": no object access but what a
    permission set assigned to them grants (`object_access`)."""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown org shape {self.shape!r}: use one of {', '.join(SHAPES)}")
        if not self.fields:
            self.reset()

    def reset(self) -> None:
        self.records = {name: {} for name in STANDARD_FIELDS}
        self.records["Campaign"] = {}
        self.records["CustomField"] = {}
        self.records["ValidationRule"] = {}
        self.fields = {name: dict(spec) for name, spec in STANDARD_FIELDS.items()}
        if self.multicurrency:
            self.fields["Opportunity"]["CurrencyIsoCode"] = "picklist"
        self.external_ids = set()
        self.custom_picklists = {}
        self.counter = 0
        self.api_used = 0
        for order, (label, converted, default) in enumerate(SHAPES[self.shape], 1):
            rid = self.new_id("LeadStatus")
            self.records["LeadStatus"][rid] = {"Id": rid, "MasterLabel": label, "ApiName": label,
                                               "IsConverted": converted, "IsDefault": default, "SortOrder": order}
        self.records["User"][INTEGRATION_USER] = {"Id": INTEGRATION_USER, "Username": "crmsync@example.com",
                                                  "Name": "crmsync integration", "IsActive": True}
        self.minimum_access = set()

    def add_user(self, username: str, *, minimum_access: bool = False, active: bool = True) -> str:
        """A user, e.g. an integration user on the "Minimum Access - API Only Integrations" profile:
        that profile "enables and also restricts assigned users to operate via API", and its users get
        more access only through permission sets (Salesforce Help, "Give Integration Users API Only
        Access", platform.integration_user.htm)."""
        rid = self.new_id("User")
        self.records["User"][rid] = {"Id": rid, "Username": username, "Name": username, "IsActive": active}
        if minimum_access:
            self.minimum_access.add(rid)
        return rid

    def new_id(self, sobject: str) -> str:
        self.counter += 1
        return f"{PREFIX.get(sobject, '001')}5g{self.counter:010d}AAA"

    def picklist(self, sobject: str, name: str) -> list[str]:
        """A picklist's values as describe lists them (Lead Status from LeadStatus)."""
        rich = self.shape == "rich"
        if sobject == "Lead" and name == "Status":
            return self.statuses()
        if sobject == "Lead" and name == "Industry":
            return RICH_INDUSTRIES if rich else STANDARD_INDUSTRIES
        if sobject == "Lead" and name == "LeadSource":
            return RICH_SOURCES if rich else STANDARD_SOURCES
        if sobject == "ObjectPermissions" and name == "SobjectType":
            return list(OBJECT_PERMISSION_TYPES)
        return self.custom_picklists.get((sobject, name), [])

    def statuses(self) -> list[str]:
        return [r["MasterLabel"] for r in sorted(self.records["LeadStatus"].values(), key=lambda r: r["SortOrder"])]

    # --- sessions -------------------------------------------------------------------------------

    def issue_token(self, user: str = INTEGRATION_USER) -> str:
        token = "00D5g0000000001!" + secrets.token_urlsafe(24)
        self.sessions[token] = self.clock() + timedelta(seconds=self.session_seconds)
        self.session_users[token] = user
        return token

    def session_valid(self, token: str) -> bool:
        expires = self.sessions.get(token)
        return expires is not None and self.clock() < expires

    # --- field-level security -------------------------------------------------------------------

    def granted(self, user: str | None, sobject: str, name: str, *, edit: bool = False) -> bool:
        """A custom field is visible to a user only through a FieldPermissions row of a permission set
        assigned to them ("To grant a user access to a field, associate a FieldPermissions record with a
        PermissionSet that's assigned to a user": the FieldPermissions object reference). Standard fields
        are visible to everyone and internal calls (user None: seeding, a person in the UI) see all:
        both simplifications, listed in docs/salesforce.md."""
        if user is None or not name.endswith("__c"):
            return True
        sets = {a["PermissionSetId"] for a in self.records["PermissionSetAssignment"].values()
                if a["AssigneeId"] == user}
        key = f"{sobject}.{name}"
        return any(p["ParentId"] in sets and p["Field"] == key and p.get("PermissionsRead")
                   and (p.get("PermissionsEdit") or not edit) for p in self.records["FieldPermissions"].values())

    def object_access(self, user: str | None, sobject: str) -> set[str]:
        """What `user` may do with `sobject`'s records: "read", "create", "edit". Object permissions come
        from the ObjectPermissions rows of the permission sets assigned to the user ("To grant a user
        access to an object, associate an ObjectPermissions record with a PermissionSet that's assigned
        to a user": object reference, ObjectPermissions); create and edit require read there. A user on a
        minimum-access profile has only those; every other user's profile grants all (a simplification:
        the default integration user and an admin). Tasks and Events are read through their Lead or
        Contact and created with the Edit Tasks permission (`PermissionsEditTask`); campaign members
        through their Campaign and Lead; contact roles through their Opportunity (sharing "Controlled by
        Parent": simplysfdc.com/2015/01/salesforce-activity-controlled-by-parent.html; the rest is
        unconfirmed, docs/salesforce.md)."""
        everything = {"read", "create", "edit"}
        if user is None or user not in self.minimum_access or sobject in SETUP_OBJECTS:
            return everything
        sets = {a["PermissionSetId"] for a in self.records["PermissionSetAssignment"].values()
                if a["AssigneeId"] == user}
        if sobject in ("Task", "Event"):
            parent = self.object_access(user, "Lead") | self.object_access(user, "Contact")
            edit_tasks = sobject == "Task" and any(self.records["PermissionSet"].get(s, {}).get("PermissionsEditTask")
                                                   for s in sets)
            return ({"read"} | ({"create", "edit"} if edit_tasks else set())) if "read" in parent else set()
        if sobject == "CampaignMember":
            return {"read"} & self.object_access(user, "Campaign") & self.object_access(user, "Lead")
        if sobject == "OpportunityContactRole":
            return self.object_access(user, "Opportunity")
        found: set[str] = set()
        for row in self.records["ObjectPermissions"].values():
            if row["ParentId"] in sets and row["SobjectType"] == sobject and row.get("PermissionsRead"):
                found |= {"read"} | {name for name, key in (("create", "PermissionsCreate"),
                                                            ("edit", "PermissionsEdit")) if row.get(key)}
        return found

    def visible(self, user: str | None, sobject: str) -> dict[str, str]:
        return {n: kind for n, kind in self.fields[sobject].items() if self.granted(user, sobject, n)}

    def grant(self, user: str, fields: list[str], name: str = "Sandbox_Granted") -> None:
        """What an admin does by hand: a permission set with read/edit on `fields` ("Lead.X"), assigned."""
        sets = [p for p in self.records["PermissionSet"].values() if p["Name"] == name]
        pset = sets[0] if sets else self.create("PermissionSet", {"Name": name, "Label": name})
        have = {p["Field"] for p in self.records["FieldPermissions"].values() if p["ParentId"] == pset["Id"]}
        for full in fields:
            if full not in have:
                self.create("FieldPermissions", {"ParentId": pset["Id"], "SobjectType": full.split(".")[0],
                                                 "Field": full, "PermissionsRead": True, "PermissionsEdit": True})
        if not any(a["PermissionSetId"] == pset["Id"] and a["AssigneeId"] == user
                   for a in self.records["PermissionSetAssignment"].values()):
            self.create("PermissionSetAssignment", {"PermissionSetId": pset["Id"], "AssigneeId": user})

    # --- records --------------------------------------------------------------------------------

    def create(self, sobject: str, values: dict[str, Any], at: datetime | None = None,
               user: str | None = None) -> dict[str, Any]:
        values = _blank_is_null(values)
        now = at or self.clock()
        self._may(user, sobject, "create")
        self._check(sobject, values, user)
        self._permission_row(sobject, values)
        self._unique(sobject, values)
        who = self.records["Lead"].get(str(values.get("WhoId"))) if sobject in ACTIVITY_OBJECTS else None
        if who is not None and who.get("IsConverted"):
            # Referencing a converted lead's record ID is refused like updating it: CANNOT_UPDATE_CONVERTED_LEAD
            # (Salesforce Help 000384333: the error comes when code "tries to reference the Lead's record ID
            # after conversion has taken place"; "cannot reference converted lead", kb.commvault.com/article/67630).
            # That a Task or Event's WhoId is such a reference is the sandbox's reading (docs/salesforce.md)
            raise FieldError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", ["WhoId"])
        rid = self.new_id(sobject)
        stamp = sf_time(now)
        record = {"Id": rid, "IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp,
                  "SystemModstamp": stamp, **{k: v for k, v in values.items() if k not in SYSTEM}}
        if sobject == "Lead":
            record.setdefault("Status", self.statuses()[0])
            record.setdefault("IsConverted", False)
            self._validate_lead(record, None)
        if sobject == "Opportunity":
            _stage(record)
            if self.multicurrency:
                record.setdefault("CurrencyIsoCode", "USD")
        if sobject == "CampaignMember":  # the Campaign relationship a query can read (Campaign.Name, .Type)
            campaign = self.records["Campaign"].get(str(values.get("CampaignId")))
            if campaign is not None:
                record["Campaign"] = {"Name": campaign.get("Name"), "Type": campaign.get("Type")}
        self.records[sobject][rid] = record
        self._roll_up_activity(sobject, record, now)
        return record

    def update(self, sobject: str, rid: str, values: dict[str, Any], at: datetime | None = None,
               user: str | None = None) -> dict[str, Any]:
        values = _blank_is_null(values)
        record = self.records[sobject].get(rid)
        if record is None or record.get("IsDeleted"):
            raise FieldError("ENTITY_IS_DELETED" if record else "INVALID_CROSS_REFERENCE_KEY",
                             f"invalid cross reference id: {rid}", [])
        if sobject == "Lead" and record.get("IsConverted"):
            # A converted lead is read-only: "CANNOT_UPDATE_CONVERTED_LEAD" (Salesforce Help 000384333,
            # "Error 'CANNOT_UPDATE_CONVERTED_LEAD' When Executing Apex Trigger on Lead Record"); the message
            # as integrations report it ("cannot reference converted lead", kb.commvault.com/article/67630).
            raise FieldError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        self._may(user, sobject, "edit")
        self._check(sobject, values, user)
        candidate = {**record, **{k: v for k, v in values.items() if k not in SYSTEM}}
        self._permission_row(sobject, candidate)
        if sobject == "Lead":
            self._validate_lead(candidate, record)
        changed = {k: v for k, v in values.items() if record.get(k) != v and k not in SYSTEM}
        if changed:
            stamp = sf_time(at or self.clock())
            record.update(changed)
            if sobject == "Opportunity":
                _stage(record)
            record["LastModifiedDate"] = record["SystemModstamp"] = stamp
            self._roll_up_activity(sobject, record, at or self.clock())
            for listener in self.on_change:
                listener(sobject, rid)
        return record

    def _roll_up_activity(self, sobject: str, activity: dict[str, Any], at: datetime) -> None:
        """A lead's LastActivityDate is the latest due date of its closed tasks and the latest start date
        of its events (Salesforce Help 000385365, "Differences between Last Activity and Last Modified
        Dates"); when it moves, the lead's SystemModstamp moves and its LastModifiedDate does not (Help
        000387261: they differ when "the 'LastActivityDate' field is modified"). Otherwise an activity
        leaves the lead as it was: a second call on the same day changes nothing on the lead. A campaign
        response (CampaignMember) never touches it (unconfirmed, docs/salesforce.md)."""
        if sobject not in ACTIVITY_OBJECTS:
            return
        lead = self.records["Lead"].get(str(activity.get("WhoId")))
        if lead is None or (sobject == "Task" and activity.get("Status") != "Completed"):
            return
        day = str(activity.get("ActivityDate") if sobject == "Task" else activity.get("StartDateTime") or "")[:10]
        if day and day > str(lead.get("LastActivityDate") or ""):
            lead["LastActivityDate"] = day
            lead["SystemModstamp"] = max(lead["SystemModstamp"], sf_time(at))

    def delete(self, sobject: str, rid: str) -> None:
        record = self.records[sobject][rid]
        record["IsDeleted"] = True
        record["SystemModstamp"] = record["LastModifiedDate"] = sf_time(self.clock())

    def touch(self, sobject: str, rid: str, at: datetime) -> None:
        record = self.records[sobject][rid]
        stamp = sf_time(at)
        if stamp > record["SystemModstamp"]:
            record["SystemModstamp"] = record["LastModifiedDate"] = stamp

    def convert(self, rid: str, at: datetime | None = None, *, opportunity: bool = True) -> dict[str, Any]:
        """Convert a lead as Salesforce does: an Account, a Contact and an Opportunity are created, the
        lead gets IsConverted, ConvertedDate, Converted{Account,Contact,Opportunity}Id and the org's
        converted status, its open and closed activities move to the new contact and opportunity, and the
        contact gets a contact role on the opportunity (Salesforce Help, "Convert Leads":
        https://help.salesforce.com/s/articleView?id=sf.leads_convert.htm; the sources below). Without
        `opportunity`, none is created ("Converts a Lead into an Account and Contact, and (optionally) an
        Opportunity": SOAP API, convertLead(), its doNotCreateOpportunity)."""
        lead = self.records["Lead"].get(rid)
        if lead is None or lead.get("IsDeleted"):
            raise FieldError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {rid}", [])
        if lead.get("IsConverted"):
            raise FieldError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        now = at or self.clock()
        status = next(r["MasterLabel"] for r in sorted(self.records["LeadStatus"].values(),
                                                        key=lambda r: r["SortOrder"]) if r["IsConverted"])
        if self.require_validation_on_convert:
            # Validation rules run on conversion only with "Require Validation for Converted Leads"
            # (Salesforce Help 000386058); the rule sees the lead as converted (IsConverted true)
            self._validate_lead({**lead, "IsConverted": True, "Status": status}, lead)
        company = lead.get("Company") or f"{lead.get('LastName')}"
        account = self.create("Account", {"Name": company, "Industry": lead.get("Industry"),
                                          "OwnerId": lead.get("OwnerId")}, at=now)
        contact = self.create("Contact", {"FirstName": lead.get("FirstName"), "LastName": lead.get("LastName"),
                                          "Email": lead.get("Email"), "Title": lead.get("Title"),
                                          "AccountId": account["Id"], "OwnerId": lead.get("OwnerId")}, at=now)
        created = self.create("Opportunity", {"Name": f"{company}-", "AccountId": account["Id"],
                                              "StageName": "Prospecting", "CloseDate": now.date().isoformat(),
                                              "OwnerId": lead.get("OwnerId")}, at=now) if opportunity else None
        stamp = sf_time(now)
        lead.update({"IsConverted": True, "ConvertedDate": now.date().isoformat(), "Status": status,
                     "ConvertedAccountId": account["Id"], "ConvertedContactId": contact["Id"],
                     "ConvertedOpportunityId": created["Id"] if created else None, "LastModifiedDate": stamp,
                     "SystemModstamp": stamp})
        # The converted contact gets a contact role on the new opportunity: "a contact is associated with
        # the opportunity as a contact role if the contact and opportunity are created during the
        # conversion process" (Salesforce Help 000385380, "Add Contact Roles to Opportunities"); as the
        # primary one, with no role (simplysfdc.com/2026/04/salesforce-opportunity-contact-roles.html;
        # IsPrimary is unconfirmed by a Salesforce page, docs/salesforce.md).
        if created is not None:
            self.create("OpportunityContactRole", {"OpportunityId": created["Id"], "ContactId": contact["Id"],
                                                   "IsPrimary": True, "Role": None}, at=now)
        # "All open and closed Activities from the Lead are attached to the Account, Contact, and
        # Opportunity": their Name (WhoId) becomes the contact and Related To (WhatId) the opportunity, and
        # their Last Modified Date moves (Salesforce Help 000385227, "Activity history on a Lead when it is
        # converted").
        for sobject in ACTIVITY_OBJECTS:
            for activity in self.records[sobject].values():
                if activity.get("WhoId") == rid:
                    activity.update({"WhoId": contact["Id"], "LastModifiedDate": stamp, "SystemModstamp": stamp,
                                     **({"WhatId": created["Id"]} if created else {})})
        for listener in self.on_change:
            listener("Lead", rid)
        return lead

    def _may(self, user: str | None, sobject: str, action: str) -> None:
        """A create or an edit the user's object permissions do not allow is refused for that record:
        INSUFFICIENT_ACCESS_OR_READONLY, "insufficient access rights on object id" (the code for a write
        that lacks object permissions as integrations report it: agentforceaccess.com/blog/
        insufficient-access-rights-on-object-id, ayaninsights.com/salesforce-errors/
        insufficient-access-or-readonly; unconfirmed by a Salesforce page, docs/salesforce.md)."""
        if action not in self.object_access(user, sobject):
            raise FieldError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", [])

    def _check(self, sobject: str, values: dict[str, Any], user: str | None = None) -> None:
        known = self.fields[sobject]
        unknown = [k for k in values if k != "attributes" and (k not in known or not self.granted(user, sobject, k))]
        if unknown:
            raise FieldError("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}", unknown)
        if user is not None:
            # Read-only fields, and fields the user may read but not edit (Salesforce error codes page:
            # INVALID_FIELD_FOR_INSERT_UPDATE; the message text is unconfirmed)
            locked = [k for k in values if k != "attributes" and (
                (known[k] in ("system", "readonly") and k != "Id") or not self.granted(user, sobject, k, edit=True))]
            if locked:
                raise FieldError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: "
                                 f"{', '.join(locked)}. Please check the security settings of this field and verify "
                                 "that it is read/write for your profile or permission set.", locked)
        if sobject == "Lead" and "Status" in values and values["Status"] not in self.statuses():
            raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                             f"Status: bad value for restricted picklist field: {values['Status']}", ["Status"])
        for name, value in values.items():
            allowed = self.custom_picklists.get((sobject, name))
            if allowed is not None and value is not None and value not in allowed:
                raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                 f"{name}: bad value for restricted picklist field: {value}", [name])
        if sobject == "FieldPermissions":
            # Field is a restricted picklist of existing "Object.Field" names (FieldPermissions reference)
            target, _, name = str(values.get("Field") or "").partition(".")
            if name not in self.fields.get(target, {}):
                raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                 f"Field: bad value for restricted picklist field: {values.get('Field')}", ["Field"])

    def _permission_row(self, sobject: str, row: dict[str, Any]) -> None:
        """An ObjectPermissions row as saved (created, or updated: the row with the new values)."""
        if sobject != "ObjectPermissions":
            return
        # SobjectType is a restricted picklist; create, edit and delete "Require PermissionsRead for the
        # same object to be true" (object reference, ObjectPermissions); the refusal's code is the one
        # permission dependencies get when loaded through the API (FIELD_INTEGRITY_EXCEPTION "Permission
        # ... depends on permission(s): ...", wiki.sfxd.org/books/best-practices/page/important-notes)
        if row.get("SobjectType") not in OBJECT_PERMISSION_TYPES:
            raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "SobjectType: bad value for restricted "
                             f"picklist field: {row.get('SobjectType')}", ["SobjectType"])
        if not row.get("PermissionsRead") and any(row.get(k) for k in (
                "PermissionsCreate", "PermissionsEdit", "PermissionsDelete")):
            raise FieldError("FIELD_INTEGRITY_EXCEPTION", f"Permission Edit {row['SobjectType']} depends on "
                             f"permission(s): Read {row['SobjectType']}", ["PermissionsRead"])
        parent = ACCOUNT_CHILDREN.get(str(row.get("SobjectType")))
        if parent and row.get("PermissionsRead") and not any(
                r.get("ParentId") == row.get("ParentId") and r.get("SobjectType") == parent and r.get("PermissionsRead")
                for r in self.records["ObjectPermissions"].values()):
            raise FieldError("FIELD_INTEGRITY_EXCEPTION", f"Permission Read {row['SobjectType']}s depends on "
                             f"permission(s): Read {parent}s", ["PermissionsRead"])

    def _unique(self, sobject: str, values: dict[str, Any]) -> None:
        """A permission set's name, a field's permission row in a set and an assignment exist once
        (error codes: DUPLICATE_DEVELOPER_NAME and DUPLICATE_VALUE are unconfirmed for these objects)."""
        keys = {"PermissionSet": ("Name",), "FieldPermissions": ("ParentId", "Field"),
                "ObjectPermissions": ("ParentId", "SobjectType"),
                "PermissionSetAssignment": ("PermissionSetId", "AssigneeId")}.get(sobject)
        if keys is None:
            return
        wanted = tuple(values.get(k) for k in keys)
        if any(tuple(r.get(k) for k in keys) == wanted for r in self.records[sobject].values()):
            code = "DUPLICATE_DEVELOPER_NAME" if sobject == "PermissionSet" else "DUPLICATE_VALUE"
            raise FieldError(code, f"duplicate value found: {', '.join(keys)} duplicates value on record", list(keys))

    def _validate_lead(self, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Every active Lead rule whose formula is true refuses the save with its error message:
        FIELD_CUSTOM_VALIDATION_EXCEPTION ("FIELD_CUSTOM_VALIDATION_EXCEPTION: <your validation rule's
        error message>", salesforcedictionary.com/errors/field-custom-validation-exception; the code is
        also Restforce::ErrorCode::FieldCustomValidationException)."""
        rules = [(BUILT_IN_RULE, BUILT_IN_MESSAGE, BANT_FIELDS)] if self.validation_rule else []
        rules += [(r["Metadata"]["errorConditionFormula"], r["Metadata"]["errorMessage"],
                   [r["Metadata"]["errorDisplayField"]] if r["Metadata"].get("errorDisplayField") else [])
                  for r in self.records["ValidationRule"].values()
                  if r["EntityDefinitionId"] == "Lead" and r["Metadata"].get("active")]
        for formula, message, fields in rules:
            if compile_formula(formula, self.fields["Lead"])(record, before):
                raise FieldError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, fields)

    def save_rule(self, full_name: str, metadata: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        """A validation rule created (POST) or its Metadata replaced (PATCH) through the Tooling API
        (Tooling API ValidationRule: FullName "Object.Name", Metadata with errorConditionFormula,
        errorMessage, active; developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/
        tooling_api_objects_validationrule.htm). The formula must compile: `FormulaError` otherwise."""
        existing = self.records["ValidationRule"].get(rid) if rid else None
        sobject, _, name = full_name.partition(".")
        if existing is not None:
            sobject, name = existing["EntityDefinitionId"], existing["ValidationName"]
        if sobject not in self.fields or not name:
            raise FieldError("INVALID_FIELD", f"Invalid FullName {full_name!r}: use Object.RuleName", [])
        compile_formula(str(metadata.get("errorConditionFormula") or ""), self.fields[sobject])
        if existing is None and any(r["ValidationName"] == name and r["EntityDefinitionId"] == sobject
                                    for r in self.records["ValidationRule"].values()):
            raise FieldError("DUPLICATE_DEVELOPER_NAME", f"There's already a validation rule named {name}.", [])
        record = existing or {"Id": self.new_id("ValidationRule"), "ValidationName": name,
                              "EntityDefinitionId": sobject, "FullName": f"{sobject}.{name}"}
        record.update({"Metadata": dict(metadata), "Active": bool(metadata.get("active")),
                       "ErrorMessage": metadata.get("errorMessage"), "Description": metadata.get("description"),
                       "EntityDefinition": {"QualifiedApiName": sobject}})
        self.records["ValidationRule"][record["Id"]] = record
        return record

    def add_custom_field(self, sobject: str, name: str, kind: str, values: list[str] | None = None) -> bool:
        """A custom field as the Tooling API creates it: one on Activity appears on Task and Event.
        New fields are visible to no one until a permission set grants them (see `granted`). A
        picklist with `values` is restricted to them."""
        targets = ACTIVITY_OBJECTS if sobject == "Activity" else (sobject,)
        if any(name in self.fields[t] for t in targets):
            return False
        for target in targets:
            self.fields[target][name] = kind
            if values is not None:
                self.custom_picklists[(target, name)] = list(values)
        rid = self.new_id("CustomField")
        self.records["CustomField"][rid] = {"Id": rid, "DeveloperName": name.removesuffix("__c"),
                                            "TableEnumOrId": sobject}
        return True


def _stage(opportunity: dict[str, Any]) -> None:
    """IsClosed and IsWon are the stage's (read-only on the Opportunity; OpportunityStage IsClosed, IsWon);
    a stage the org does not list counts as open."""
    closed, won = next(((c, w) for label, c, w in OPPORTUNITY_STAGES if label == opportunity.get("StageName")),
                       (False, False))
    opportunity.update({"IsClosed": closed, "IsWon": won})


def _blank_is_null(values: dict[str, Any]) -> dict[str, Any]:
    """Salesforce stores no empty strings: a blank text field reads back as null."""
    return {k: (None if isinstance(v, str) and v == "" else v) for k, v in values.items()}
