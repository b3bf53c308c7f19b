"""What the engagement rules need fed, against what each connector reads.

Each CRM's registration (`Crm.feeds`) says which activity kinds its connector reads (a `Feeds`, kept in
its package's crm.py, true to its connector's `activities`). `crmsync definitions validate`
notes the rules no configured CRM feeds at all; `crmsync doctor` says, per connected CRM, which rules
it never feeds and which it feeds only in part (HubSpot below Enterprise: page views and forms from
contact property history).
"""

from __future__ import annotations

from crmsync.connectors.crm import Feeds
from crmsync.definitions.schema import Definitions
from crmsync.model import ActivityKind as K
from crmsync.model import Check


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
