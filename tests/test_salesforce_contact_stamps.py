"""A converted lead's stage and stamps on its converted Contact: `crmsync setup` creates crmsync's fields on
Contact and grants them; the sandbox keeps them invisible until then; a sync pass writes a converted
lead's stamps and owner task to its Contact (Salesforce refuses every update of a converted lead)."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.sandbox.salesforce.org import INTEGRATION_USER, FieldError
from tests.salesforce_fixtures import salesforce, sf_connector

CONTACT_FIELDS = ["CRMSync_Stage__c", "CRMSync_Opportunity_At__c", "CRMSync_Customer_At__c", "CRMSync_Skipped_Gate__c"]


def test_setup_creates_and_grants_the_contact_fields_once_and_doctor_checks_them() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        conn = sf_connector(url)
        before = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not before.ok and all(f"Contact.{name}" in before.detail.split("missing")[1] for name in CONTACT_FIELDS)

        created = conn.setup()
        assert [c for c in created if c.startswith("Contact.")] == [f"Contact.{name}" for name in CONTACT_FIELDS]
        assert set(CONTACT_FIELDS) <= set(app.org.fields["Contact"])
        assert app.org.picklist("Contact", "CRMSync_Stage__c") == app.org.picklist("Lead", "CRMSync_Stage__c")
        granted = {p["Field"] for p in app.org.records["FieldPermissions"].values()}
        assert {f"Contact.{name}" for name in CONTACT_FIELDS} <= granted
        assert all(app.org.granted(INTEGRATION_USER, "Contact", name, edit=True) for name in CONTACT_FIELDS)
        assert conn.setup() == []  # idempotent
        assert all(c.ok for c in conn.doctor()), conn.doctor()

        # an admin removes the grant of one Contact field: doctor says it is not visible
        row = next(rid for rid, p in app.org.records["FieldPermissions"].items()
                   if p["Field"] == "Contact.CRMSync_Skipped_Gate__c")
        del app.org.records["FieldPermissions"][row]
        fields = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not fields.ok and "not visible to this user Contact.CRMSync_Skipped_Gate__c" in fields.detail
        assert conn.setup() == ["FieldPermissions for 1 fields"]
        app.org.custom_picklists[("Contact", "CRMSync_Stage__c")].remove("Customer")  # an admin edited it
        fields = {c.name: c for c in conn.doctor()}["salesforce fields"]
        assert not fields.ok and "Contact.CRMSync_Stage__c is a picklist without Customer" in fields.detail


def test_the_sandbox_refuses_contact_fields_until_setup_created_and_granted_them() -> None:
    with salesforce(0, custom_fields=False) as (app, url):
        contact = app.org.create("Contact", {"LastName": "Ng"})["Id"]
        conn = sf_connector(url)
        sf = conn._login()
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):  # no such field yet
            sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"})
        app.org.add_custom_field("Contact", "CRMSync_Skipped_Gate__c", "textarea")
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):  # exists, not granted (FLS)
            sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"})
        with pytest.raises(FieldError, match="No such column"):
            app.org.update("Contact", contact, {"CRMSync_Skipped_Gate__c": "x"}, user=INTEGRATION_USER)
        conn.setup()
        assert sf.Contact.update(contact, {"CRMSync_Skipped_Gate__c": "x"}) == 204
        assert app.org.records["Contact"][contact]["CRMSync_Skipped_Gate__c"] == "x"
