"""Funnel, SLA and reason-code figures from the audit trail."""
