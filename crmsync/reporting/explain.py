"""`crmsync explain`: the latest decision for a record, its history, and proof that it reproduces.

The engine is re-run on the stored inputs at the stored decision time with the active definitions;
the result is compared byte for byte with what was stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from crmsync.definitions import LoadedDefinitions
from crmsync.errors import RecordError
from crmsync.rules import decide
from crmsync.store import Store, aware
from crmsync.sync.inputs import backlog_cutoff, restore


@dataclass
class Explanation:
    crm: str
    record_id: str
    decision: dict[str, Any]
    history: list[dict[str, Any]]
    identical: bool
    differences: list[str] = field(default_factory=list)
    active_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"crm": self.crm, "record_id": self.record_id, "decision": self.decision, "history": self.history,
                "reproduced": {"identical": self.identical, "differences": self.differences,
                               "active_definitions_version": self.active_version}}


def canonical(decision: dict[str, Any]) -> str:
    return json.dumps(decision, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def explain(store: Store, crm: str, record_id: str, definitions: LoadedDefinitions) -> Explanation:
    rows = store.decisions_for(crm, record_id, limit=50)
    if not rows:
        raise RecordError(record_id, f"no decision stored for this record in {crm} (has it been synced?)")
    latest = rows[0]
    data = store.inputs_for(latest["inputs_hash"])
    if data is None:
        raise RecordError(record_id, "the decision's inputs are missing from the store")
    contact, activities = restore(data)
    when = aware(latest["decided_at"])
    assert when is not None
    rerun = decide(contact, activities, definitions, when, backlog_before=backlog_cutoff(data)).to_dict()
    stored = latest["decision"]
    history = [{"id": r["id"], "decided_at": str(aware(r["decided_at"])), "from": r["current_stage"],
                "to": r["target_stage"], "mql": r["mql"], "definitions_version": r["definitions_version"]}
               for r in rows]
    return Explanation(crm, record_id, stored, history, canonical(rerun) == canonical(stored),
                       _differences(stored, rerun), definitions.version)


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if old != new:
        return [f"{path}: {json.dumps(old, ensure_ascii=False)[:80]} -> {json.dumps(new, ensure_ascii=False)[:80]}"]
    return []


def render(explanation: Explanation) -> str:
    """The explanation for a person: every rule with its input and result."""
    d = explanation.decision
    lines = [f"{explanation.crm} record {explanation.record_id}: {d['current_stage']} -> {d['target_stage']} "
             f"(definitions {d['definitions_version']}, decided {d['decided_at']})", "", d["explanation"], "", "Fit:"]
    fit = d["fit"]
    lines += [f"  {'pass' if c['passed'] else 'FAIL'}  {c['name']:10} {c['value']!s:30.30} {c['why']}"
              for c in fit["criteria"]]
    lines.append(f"  {fit['passed_count']}/{len(fit['criteria'])} passed, {fit['required']} required")
    e = d["engagement"]
    lines += ["", f"Engagement: score {e['score']} (threshold {e['threshold']}), met: {e['met']}"]
    lines += [f"  +{c['points']:<8} {c['rule']:22} {c['source']!s:.40}" for c in e["contributions"]]
    lines += [f"  high intent: {h['action']} x{h['count']}" for h in e["high_intent"]]
    lines += [f"Disqualifier: {h['name']} ({h['why']})" for h in d["disqualifiers"]]
    gate = d["sql_gate"]
    if gate["items"]:
        lines += ["", f"SQL gate: requested {gate['requested']}, passed {gate['passed']}"]
        lines += [f"  {'ok  ' if i['documented'] else 'MISS'}  {i['item']:9} {i['why']}" for i in gate["items"]]
    if d["reason"]:
        lines.append(f"Reason code: {d['reason']['why']}")
    if d["slas"]:
        lines += ["", "SLA clocks:"]
        lines += [f"  {c['name']:13} {c['state']:9} started {c['started_at']} due {c['due_at']}"
                  + (f" met {c['met_at']}" if c["met_at"] else "") for c in d["slas"]]
    lines += ["", "Actions: " + (", ".join(f"{a['kind']}" + (f" ({a['detail']})" if a["detail"] else "")
                                           for a in d["actions"]) or "none")]
    if d["data_issues"]:
        lines.append("Data issues: " + "; ".join(d["data_issues"]))
    lines += ["", "History:"]
    lines += [f"  #{h['id']} {h['decided_at']} {h['from']} -> {h['to']} (mql {h['mql']}, {h['definitions_version']})"
              for h in explanation.history]
    if explanation.identical:
        lines.append(f"\nRe-run on the stored inputs with definitions {explanation.active_version}: identical.")
    else:
        lines.append(f"\nRe-run with definitions {explanation.active_version} differs:")
        lines += [f"  {diff}" for diff in explanation.differences[:30]]
    return "\n".join(lines)
