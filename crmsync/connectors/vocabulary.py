"""What both connectors share: the definitions' words for stages and lead statuses in one CRM, and
how crmsync's own values are compared with what the CRM gives back (so a re-read is never a change)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from crmsync.definitions.schema import CrmMapping
from crmsync.model import LeadStatus, Stage
from crmsync.rules.values import moment

OWNED = ("fit", "fit_reasons", "engagement_score", "mql_at", "sal_at", "sql_at", "recycled_at",
         "sql_blocked_reason", "dq_reason_status", "sla_state", "definitions_version", "dq_reason",
         "opportunity_at", "customer_at", "skipped_gate")
TIMESTAMPS = ("mql_at", "sal_at", "sql_at", "recycled_at", "opportunity_at", "customer_at")
SCORE_TOLERANCE = 1.0
"""Score drift under one point is not written: decay moves scores a little on every pass, and
writing that back would only make the record change again."""
STATUS_PREFERENCE = [LeadStatus.NEW, LeadStatus.IN_PROGRESS, LeadStatus.CONNECTED, LeadStatus.ATTEMPTED,
                     LeadStatus.OPEN, LeadStatus.QUALIFIED, LeadStatus.UNQUALIFIED, LeadStatus.NURTURE,
                     LeadStatus.CONVERTED]
"""When several neutral statuses share one CRM value, the value reads as the first of them here."""


class Vocabulary:
    def __init__(self, mapping: CrmMapping) -> None:
        self.mapping = mapping
        self.fields = mapping.fields
        self.stage_values = {s: getattr(mapping.stages, s.value) for s in Stage}
        self.status_values = {s: getattr(mapping.lead_statuses, s.value) for s in LeadStatus}
        self.status_for: dict[str, LeadStatus] = {}
        for status in STATUS_PREFERENCE:
            value = self.status_values[status]
            if value is not None:
                self.status_for.setdefault(value, status)
        self._timestamps = {getattr(self.fields, t) for t in TIMESTAMPS}

    def industry(self, value: Any, labels: dict[str, str] | None = None) -> Any:
        """The definitions' word for a CRM industry value through the mapping's `industries`, which may
        name the value or its label (`labels`: the CRM's option value -> label); else the value as it is."""
        if not isinstance(value, str):
            return value
        table = self.mapping.industries
        label = (labels or {}).get(value)
        return table.get(value) or (table.get(label) if label else None) or value

    def source(self, value: Any, standard: dict[str, str]) -> Any:
        """The definitions' word for a CRM lead source: the mapping's `sources` first, then the CRM's
        standard values, else the value as it is."""
        if not isinstance(value, str):
            return value
        return self.mapping.sources.get(value) or standard.get(value, value)

    def same(self, name: str, current: str, new: Any) -> bool:
        if name == self.fields.engagement_score and current and new not in (None, ""):
            try:
                return abs(float(current) - float(new)) < SCORE_TOLERANCE
            except (TypeError, ValueError):
                return False
        return current == self.normal(name, new)

    def normal(self, name: str, value: Any) -> str:
        """A value as crmsync writes it: timestamps to the second in UTC, scores with two decimals."""
        text = "" if value is None else str(value)
        if not text:
            return ""
        if name in self._timestamps:
            when = moment(value)
            return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else text
        if name == self.fields.engagement_score:
            try:
                return f"{float(text):.2f}"
            except ValueError:
                return text
        return text
