"""Salesforce: leads over simple-salesforce, the BANT guard (kept light: no imports here)."""
