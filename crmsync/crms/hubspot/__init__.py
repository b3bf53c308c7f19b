"""HubSpot: contacts over hubspot-api-client, signed webhooks (kept light: no imports here)."""
