"""Salesforce: leads over simple-salesforce, the BANT guard.

Kept light, no imports: crmsync.definitions.schema reads `FIELD_DEFAULTS`."""

FIELD_DEFAULTS = {"opportunity_at": "CRMSync_Opportunity_At__c", "customer_at": "CRMSync_Customer_At__c",
                  "skipped_gate": "CRMSync_Skipped_Gate__c"}
"""`mappings.salesforce.fields` added after the first governed version: a definitions file written before
them still loads (crmsync.definitions.schema)."""
