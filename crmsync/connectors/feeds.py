"""Which activity kinds each connector can feed the engagement rules, in one place.

Each CRM's registration (`Crm.feeds`) answers with one of these. `crmsync definitions validate`
notes the rules no configured CRM feeds at all; `crmsync doctor` says, per connected CRM, which rules
it never feeds and which it feeds only in part (HubSpot below Enterprise: page views and forms from
contact property history). Keep this table true to what the
connectors read (crmsync/crms/hubspot/connector.py `activities`, crms/salesforce/connector.py `activities`).
"""

from __future__ import annotations

from crmsync.connectors.crm import Feeds
from crmsync.definitions.schema import CrmMapping, Definitions
from crmsync.model import ActivityKind as K
from crmsync.model import Check

HUBSPOT: dict[K, str] = {
    K.CALL: "calls", K.EMAIL: "emails", K.MEETING: "meetings",
    K.EMAIL_OPEN: "hs_email_last_open_date history", K.EMAIL_CLICK: "hs_email_last_click_date history",
    K.PAGE_VIEW: "the events API (e_visited_page)", K.FORM_SUBMISSION: "the events API (form submission events)",
}
"""What the HubSpot connector reads on an Enterprise portal (engagements, property history, events API)."""
HUBSPOT_BELOW_ENTERPRISE: dict[K, str] = {
    K.PAGE_VIEW: "only the last page seen (hs_analytics_last_url history), no events API below Enterprise",
    K.FORM_SUBMISSION: "only the recent conversion (recent_conversion_event_name history), no events API "
                       "below Enterprise",
}
"""Kinds a portal without the events API feeds only in part: each change of one property is one activity."""
SALESFORCE: dict[K, str] = {
    K.CALL: "Tasks", K.EMAIL: "Tasks", K.MEETING: "Events", K.CAMPAIGN_RESPONSE: "campaign members who responded",
}
"""What the Salesforce connector reads; responses also feed the kinds the mapping's `campaign_types` name."""


def hubspot(*, events: bool = True) -> Feeds:
    """What the HubSpot connector reads; `events`: the portal has the events API (Enterprise)."""
    if events:
        return Feeds(HUBSPOT)
    return Feeds({**HUBSPOT, **HUBSPOT_BELOW_ENTERPRISE}, frozenset(HUBSPOT_BELOW_ENTERPRISE))


def salesforce(mapping: CrmMapping) -> Feeds:
    """What the Salesforce connector reads, with the kinds the mapping's campaign types name."""
    found = dict(SALESFORCE)
    for campaign_type, kind in mapping.campaign_types.items():
        found.setdefault(kind, f"responses to {campaign_type!r} campaigns")
    return Feeds(found)


def rules_by_kind(definitions: Definitions) -> dict[K, list[str]]:
    """The engagement rules (activity points and high-intent actions) by the activity kind they count."""
    found: dict[K, list[str]] = {}
    engagement = definitions.engagement
    rules = [(r.kind, r.name) for r in engagement.activity_points] + [(a.kind, a.name) for a in engagement.high_intent]
    for kind, name in rules:
        names = found.setdefault(kind, [])
        if name not in names:
            names.append(name)
    return found


def unfed(definitions: Definitions, feeds: list[Feeds]) -> dict[K, list[str]]:
    """The rules, by kind, that none of these connectors reads at all."""
    read = set().union(*(f.reads for f in feeds))
    return {kind: names for kind, names in rules_by_kind(definitions).items() if kind not in read}


def rules_check(crm: str, definitions: Definitions, feeds: Feeds) -> Check:
    """A doctor line: the rules this CRM never feeds, and those it feeds only in part. Advice, never a
    failure: a rule nothing feeds scores nothing, which is what the definitions' owners should know."""
    reads = feeds.reads
    never, partly = [], []
    for kind, names in rules_by_kind(definitions).items():
        if kind not in reads:
            never.append(f"{', '.join(names)} ({kind})")
        elif kind in feeds.partly:
            partly.append(f"{', '.join(names)} ({kind}: {reads[kind]})")
    parts = ([f"never fed: {'; '.join(never)}"] if never else []) + \
            ([f"fed in part: {'; '.join(partly)}"] if partly else [])
    return Check(f"{crm} rule kinds", True, " | ".join(parts) or "every engagement rule's kind is read")
