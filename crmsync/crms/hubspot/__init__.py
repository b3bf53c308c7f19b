"""HubSpot: contacts over hubspot-api-client, signed webhooks.

Kept light, no imports: crmsync.definitions.schema reads `FIELD_DEFAULTS`."""

FIELD_DEFAULTS = {"opportunity_at": "crmsync_opportunity_at", "customer_at": "crmsync_customer_at",
                  "skipped_gate": "crmsync_skipped_gate"}
"""`mappings.hubspot.fields` added after the first governed version: a definitions file written before
them still loads (crmsync.definitions.schema)."""
