"""The BANT guard: a validation rule on Lead that refuses, at the source, converting a lead and
requesting SQL unless the four BANT fields hold text (`crmsync setup --guard`).

It is installed through the Tooling API's ValidationRule object: POST tooling/sobjects/ValidationRule
with FullName "Lead.<name>" and Metadata {errorConditionFormula, errorMessage, active, description};
found again with a Tooling query on ValidationName and EntityDefinition.QualifiedApiName, its Metadata
read one record at a time (GET tooling/sobjects/ValidationRule/<id>) and replaced with PATCH (Tooling API
reference, ValidationRule: developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/
tooling_api_objects_validationrule.htm; the Metadata fields are Metadata API ValidationRule's:
developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_validationformulas.htm).

A rule runs on conversion only when the org's Lead Settings have "Require Validation for Converted
Leads" (Salesforce Help 000386058). That setting is LeadConfigSettings.shouldLeadConvertRequireValidation
in the Metadata API (meta_leadconfigsettings.htm), which crmsync does not call: the admin enables it, and
`doctor` says so. What a formula cannot check (placeholders such as "n/a", the timeline parse) stays
with the engine's detection: docs/salesforce.md.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from crmsync.crms.salesforce.mapping import quote
from crmsync.errors import FatalError, RetriableError
from crmsync.model import BANT_ITEMS, Check, LeadStatus

if TYPE_CHECKING:
    from crmsync.crms.salesforce.connector import SalesforceConnector

GUARD_NAME = "CRMSync_BANT_Guard"
MESSAGE = ("crmsync: document need, authority, timeline and budget (the four BANT fields) before converting "
           "this lead or requesting SQL")
DESCRIPTION = "Installed by `crmsync setup --guard`: no pipeline without documented BANT. Remove: deactivate it."
CONVERT_SETTING = ("conversion is refused only if the admin enables \"Require Validation for Converted Leads\" "
                   "(Setup > Lead Settings); crmsync cannot read that setting")


def guard_formula(conn: SalesforceConnector, statuses: set[str]) -> str:
    """True (refuse the save) when a BANT field is blank and the lead is being converted, or SQL is being
    requested: the checkbox ticked or the status set to the mapped qualified value where the org has it.
    ISNEW/ISCHANGED: a request made before the guard existed does not block later edits (crmsync's own
    writes included); it is the engine's to detect."""
    f = conn.map.fields
    blank = ", ".join(f"ISBLANK(TRIM({getattr(f, f'bant_{item}')}))" for item in BANT_ITEMS)
    doors = ["IsConverted"]
    if f.sql_request:
        doors.append(f"AND({f.sql_request}, OR(ISNEW(), ISCHANGED({f.sql_request})))")
    qualified = conn.map.status_values[LeadStatus.QUALIFIED]
    if qualified and qualified in statuses:
        literal = qualified.replace("\\", "\\\\").replace('"', '\\"')
        doors.append(f'AND(ISPICKVAL({f.lead_status}, "{literal}"), OR(ISNEW(), ISCHANGED({f.lead_status})))')
    return f"AND(OR({blank}), OR({', '.join(doors)}))"


def _wanted(conn: SalesforceConnector, statuses: Collection[str]) -> dict[str, Any]:
    return {"errorConditionFormula": guard_formula(conn, set(statuses)), "errorMessage": MESSAGE, "active": True,
            "description": DESCRIPTION}


def _installed(conn: SalesforceConnector) -> dict[str, Any] | None:
    """The rule as the org has it (Id, Metadata), or None."""
    query = (f"SELECT Id, ValidationName, Active FROM ValidationRule WHERE ValidationName = {quote(GUARD_NAME)} "
             "AND EntityDefinition.QualifiedApiName = 'Lead'")
    answer = conn._call("query validation rules", lambda sf: sf.restful("tooling/query", params={"q": query}))
    rows = (answer or {}).get("records") or []
    if not rows:
        return None
    rid = str(rows[0]["Id"])
    found = conn._call("read validation rule", lambda sf: sf.restful(f"tooling/sobjects/ValidationRule/{rid}"))
    return {"Id": rid, "Metadata": dict((found or {}).get("Metadata") or {})}


def _same(have: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(have.get(key) == value for key, value in wanted.items())


def install_guard(conn: SalesforceConnector) -> list[str]:
    """Create the rule, or replace its Metadata if the formula, message or activation differ. Idempotent:
    returns what it changed (nothing on a second run)."""
    wanted = _wanted(conn, conn._lead_statuses())
    have = _installed(conn)
    if have is None:
        conn._call("create validation rule", lambda sf: sf.restful(
            "tooling/sobjects/ValidationRule", method="POST",
            json={"FullName": f"Lead.{GUARD_NAME}", "Metadata": wanted}))
        return [f"ValidationRule Lead.{GUARD_NAME}"]
    if _same(have["Metadata"], wanted):
        return []
    conn._call("update validation rule", lambda sf: sf.restful(
        f"tooling/sobjects/ValidationRule/{have['Id']}", method="PATCH", json={"Metadata": wanted}))
    return [f"ValidationRule Lead.{GUARD_NAME} (updated)"]


def guard_check(conn: SalesforceConnector, statuses: Collection[str]) -> Check:
    """Whether the guard is on. Off is no failure (the guard is optional); installed but out of date is.
    `statuses`: the org's lead statuses (the doctor has read them)."""
    name = "salesforce BANT guard"
    wanted = _wanted(conn, statuses)
    try:
        have = _installed(conn)
    except (FatalError, RetriableError) as exc:
        return Check(name, True, f"unknown: could not read the org's validation rules ({exc})")
    if have is None:
        return Check(name, True, "off: run `crmsync setup --guard` to refuse converting a lead or requesting SQL "
                                 "without BANT in Salesforce itself (docs/salesforce.md)")
    if not have["Metadata"].get("active"):
        return Check(name, True, f"off: validation rule {GUARD_NAME} is inactive")
    if not _same(have["Metadata"], wanted):
        return Check(name, False, f"validation rule {GUARD_NAME} differs from what the definitions need (another "
                                  "formula, message or mapping): run `crmsync setup --guard`")
    return Check(name, True, f"on: validation rule {GUARD_NAME} refuses SQL requests without BANT; "
                             f"{CONVERT_SETTING}")
