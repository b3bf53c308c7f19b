"""`crmsync backtest`: how many records a candidate definitions file classifies differently, and how.

Every record decided in the window is re-decided from its stored inputs, at its stored decision
time, with the active definitions and with the candidate; changes are grouped by transition, with
the rules responsible, example ids, and what those records actually did later. Writes nothing to
the CRM; records that it ran (for `definitions activate`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.definitions import LoadedDefinitions
from crmsync.model import Decision
from crmsync.rules import decide
from crmsync.store import Store, aware
from crmsync.sync.inputs import backlog_cutoff, restore

EXAMPLES = 5


def backtest(store: Store, active: LoadedDefinitions, candidate: LoadedDefinitions, days: int = 90,
             now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    groups: dict[str, dict[str, Any]] = {}
    total = 0
    for row in store.latest_decisions(now - timedelta(days=days), now):
        total += 1
        contact, activities = restore(row["inputs"])
        when = aware(row["decided_at"])
        assert when is not None
        cutoff = backlog_cutoff(row["inputs"])
        before = decide(contact, activities, active, when, backlog_before=cutoff)
        after = decide(contact, activities, candidate, when, backlog_before=cutoff)
        label = _transition(before, after)
        if label is None:
            continue
        group = groups.setdefault(label, {"transition": label, "count": 0, "rules": {}, "examples": [],
                                          "records": []})
        group["count"] += 1
        for rule in _responsible(before, after):
            group["rules"][rule] = group["rules"].get(rule, 0) + 1
        if len(group["examples"]) < EXAMPLES:
            group["examples"].append(f"{row['crm']}:{row['record_id']}")
        group["records"].append((row["crm"], row["record_id"]))
    for group in groups.values():
        group["later"] = _later(store, group.pop("records"))
    changed = sum(g["count"] for g in groups.values())
    summary = {"active": {"version": active.version, "hash": active.content_hash},
               "candidate": {"version": candidate.version, "hash": candidate.content_hash},
               "days": days, "records": total, "changed": changed,
               "transitions": sorted(groups.values(), key=lambda g: -g["count"])}
    store.record_backtest(candidate_hash=candidate.content_hash, candidate_version=candidate.version,
                          active_hash=active.content_hash, ran_at=now, days=days, records=total, changed=changed,
                          summary=summary)
    return summary


def _transition(before: Decision, after: Decision) -> str | None:
    if before.mql != after.mql:
        return f"{'MQL' if before.mql else 'not MQL'} -> {'MQL' if after.mql else 'not MQL'}"
    if before.target_stage is not after.target_stage:
        return f"{before.target_stage.value} -> {after.target_stage.value}"
    return None


def _responsible(before: Decision, after: Decision) -> list[str]:
    rules = []
    for a, b in zip(before.fit.criteria, after.fit.criteria, strict=True):
        if a.passed != b.passed:
            rules.append(f"fit.{a.name}")
    if before.engagement.met != after.engagement.met:
        hits = {h.action for h in before.engagement.high_intent} ^ {h.action for h in after.engagement.high_intent}
        rules += [f"high_intent.{name}" for name in sorted(hits)]
        if (before.engagement.score >= before.engagement.threshold) != (
                after.engagement.score >= after.engagement.threshold):
            rules.append("engagement.threshold" if before.engagement.threshold != after.engagement.threshold
                         else "engagement.points")
    if {h.name for h in before.disqualifiers} != {h.name for h in after.disqualifiers}:
        rules.append("disqualifiers")
    if before.sql_gate.passed != after.sql_gate.passed:
        rules.append("sql_requirements")
    return rules or ["lifecycle"]


def _later(store: Store, records: list[tuple[str, str]]) -> dict[str, int]:
    outcomes = store.outcomes(records)
    later = {"sql": 0, "opportunity": 0, "won": 0}
    for key in records:
        outcome = outcomes.get(key) or {}
        stage = outcome.get("stage")
        if outcome.get("sql_at") is not None or stage in ("sql", "opportunity", "customer"):
            later["sql"] += 1
        if stage in ("opportunity", "customer"):
            later["opportunity"] += 1
        if stage == "customer":
            later["won"] += 1
    return later


def render(summary: dict[str, Any]) -> str:
    lines = [f"Backtest of {summary['candidate']['version']} ({summary['candidate']['hash'][:12]}) against "
             f"{summary['active']['version']} ({summary['active']['hash'][:12]}) over {summary['days']} days: "
             f"{summary['changed']} of {summary['records']} records classified differently."]
    for group in summary["transitions"]:
        rules = ", ".join(f"{rule} ({n})" for rule, n in sorted(group["rules"].items(), key=lambda kv: -kv[1]))
        later = group["later"]
        lines.append(f"  {group['count']:6}  {group['transition']:28} rules: {rules}")
        lines.append(f"          later: {later['sql']} SQL, {later['opportunity']} opportunity, {later['won']} won; "
                     f"e.g. {', '.join(group['examples'])}")
    return "\n".join(lines)
