"""The Salesforce org the sandbox emulates: Leads, Tasks, Events, CampaignMembers, LeadStatus,
the fields each object has (standard and custom), sessions, the daily API limit, and an optional
validation rule (Status 'Qualified' needs the four BANT fields).

Every change bumps SystemModstamp and LastModifiedDate, Salesforce's change cursor.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PREFIX = {"Lead": "00Q", "Task": "00T", "Event": "00U", "CampaignMember": "00v", "LeadStatus": "01J",
          "Campaign": "701", "User": "005", "CustomField": "00N"}
LEAD_STATUSES = [("Open - Not Contacted", False, True), ("Working - Contacted", False, False),
                 ("Qualified", False, False), ("Unqualified", False, False), ("Closed - Converted", True, False),
                 ("Closed - Not Converted", False, False)]
SYSTEM = ["Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"]
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "Lead": {**dict.fromkeys(SYSTEM, "system"), "FirstName": "string", "LastName": "string", "Email": "email",
             "Company": "string", "Title": "string", "Industry": "picklist", "NumberOfEmployees": "int",
             "Country": "string", "LeadSource": "picklist", "Status": "picklist", "OwnerId": "reference",
             "IsConverted": "boolean"},
    "Task": {**dict.fromkeys(SYSTEM, "system"), "WhoId": "reference", "OwnerId": "reference", "Subject": "string",
             "Description": "textarea", "ActivityDate": "date", "Status": "picklist", "Type": "picklist",
             "TaskSubtype": "picklist", "Priority": "picklist"},
    "Event": {**dict.fromkeys(SYSTEM, "system"), "WhoId": "reference", "OwnerId": "reference", "Subject": "string",
              "StartDateTime": "datetime", "Type": "picklist"},
    "CampaignMember": {**dict.fromkeys(SYSTEM, "system"), "LeadId": "reference", "CampaignId": "reference",
                       "Status": "picklist", "HasResponded": "boolean", "FirstRespondedDate": "date"},
    "LeadStatus": {"Id": "system", "MasterLabel": "string", "ApiName": "string", "IsConverted": "boolean",
                   "IsDefault": "boolean", "SortOrder": "int"},
}
BANT_FIELDS = ["BANT_Need__c", "BANT_Authority__c", "BANT_Timeline__c", "BANT_Budget__c"]


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
    session_seconds: float = 7200.0
    api_limit: int = 100_000
    api_used: int = 0
    validation_rule: bool = False
    credentials: dict[str, str] | None = None
    counter: int = 0
    on_change: list[Callable[[str, str], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.fields:
            self.reset()

    def reset(self) -> None:
        self.records = {name: {} for name in STANDARD_FIELDS}
        self.records["Campaign"] = {}
        self.fields = {name: dict(spec) for name, spec in STANDARD_FIELDS.items()}
        self.counter = 0
        self.api_used = 0
        for order, (label, converted, default) in enumerate(LEAD_STATUSES, 1):
            rid = self.new_id("LeadStatus")
            self.records["LeadStatus"][rid] = {"Id": rid, "MasterLabel": label, "ApiName": label,
                                               "IsConverted": converted, "IsDefault": default, "SortOrder": order}

    def new_id(self, sobject: str) -> str:
        self.counter += 1
        return f"{PREFIX.get(sobject, '001')}5g{self.counter:010d}AAA"

    def statuses(self) -> list[str]:
        return [r["MasterLabel"] for r in sorted(self.records["LeadStatus"].values(), key=lambda r: r["SortOrder"])]

    # --- sessions -------------------------------------------------------------------------------

    def issue_token(self) -> str:
        token = "00D5g0000000001!" + secrets.token_urlsafe(24)
        self.sessions[token] = self.clock() + timedelta(seconds=self.session_seconds)
        return token

    def session_valid(self, token: str) -> bool:
        expires = self.sessions.get(token)
        return expires is not None and self.clock() < expires

    # --- records --------------------------------------------------------------------------------

    def create(self, sobject: str, values: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        values = _blank_is_null(values)
        now = at or self.clock()
        self._check(sobject, values)
        rid = self.new_id(sobject)
        stamp = sf_time(now)
        record = {"Id": rid, "IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp,
                  "SystemModstamp": stamp, **{k: v for k, v in values.items() if k not in SYSTEM}}
        if sobject == "Lead":
            record.setdefault("Status", "Open - Not Contacted")
            record.setdefault("IsConverted", False)
            self._validate_lead(record)
        self.records[sobject][rid] = record
        return record

    def update(self, sobject: str, rid: str, values: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        values = _blank_is_null(values)
        record = self.records[sobject].get(rid)
        if record is None or record.get("IsDeleted"):
            raise FieldError("ENTITY_IS_DELETED" if record else "INVALID_CROSS_REFERENCE_KEY",
                             f"invalid cross reference id: {rid}", [])
        self._check(sobject, values)
        candidate = {**record, **{k: v for k, v in values.items() if k not in SYSTEM}}
        if sobject == "Lead":
            self._validate_lead(candidate)
        changed = {k: v for k, v in values.items() if record.get(k) != v and k not in SYSTEM}
        if changed:
            stamp = sf_time(at or self.clock())
            record.update(changed)
            record["LastModifiedDate"] = record["SystemModstamp"] = stamp
            for listener in self.on_change:
                listener(sobject, rid)
        return record

    def delete(self, sobject: str, rid: str) -> None:
        record = self.records[sobject][rid]
        record["IsDeleted"] = True
        record["SystemModstamp"] = record["LastModifiedDate"] = sf_time(self.clock())

    def touch(self, sobject: str, rid: str, at: datetime) -> None:
        record = self.records[sobject][rid]
        stamp = sf_time(at)
        if stamp > record["SystemModstamp"]:
            record["SystemModstamp"] = record["LastModifiedDate"] = stamp

    def _check(self, sobject: str, values: dict[str, Any]) -> None:
        known = self.fields[sobject]
        unknown = [k for k in values if k not in known and k != "attributes"]
        if unknown:
            raise FieldError("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}", unknown)
        if sobject == "Lead" and "Status" in values and values["Status"] not in self.statuses():
            raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                             f"Status: bad value for restricted picklist field: {values['Status']}", ["Status"])

    def _validate_lead(self, record: dict[str, Any]) -> None:
        if self.validation_rule and record.get("Status") == "Qualified":
            missing = [f for f in BANT_FIELDS if not str(record.get(f) or "").strip()]
            if missing:
                raise FieldError("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                 "Document need, authority, timeline and budget before setting Qualified", missing)

    def add_custom_field(self, sobject: str, name: str, kind: str) -> bool:
        if name in self.fields[sobject]:
            return False
        self.fields[sobject][name] = kind
        return True


def _blank_is_null(values: dict[str, Any]) -> dict[str, Any]:
    """Salesforce stores no empty strings: a blank text field reads back as null."""
    return {k: (None if isinstance(v, str) and v == "" else v) for k, v in values.items()}
