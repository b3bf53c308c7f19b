"""`decide`: one record, its activities, the definitions and the time in; a Decision out.

Pure and deterministic: no I/O, no clock of its own, never raises on record content. Whatever
data is unusable is named in `data_issues` and judged as missing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from crmsync.definitions import LoadedDefinitions
from crmsync.model import Activity, Contact, Decision, FitResult, LeadStatus, Stage
from crmsync.rules.compiled import compiled
from crmsync.rules.disqualifiers import find_disqualifiers
from crmsync.rules.engagement import judge_engagement
from crmsync.rules.fit import judge_fit
from crmsync.rules.lifecycle import Assessment, Transition, is_returned, transition
from crmsync.rules.reasons import check_reason
from crmsync.rules.sql_gate import judge_sql_gate
from crmsync.rules.values import email_domain, moment, preview, text


def decide(contact: Contact, activities: list[Activity], definitions: LoadedDefinitions, now: datetime) -> Decision:
    c = compiled(definitions)
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    issues: list[str] = []
    current = _stage(contact.stage, "stage", issues) or Stage.LEAD
    governed = _stage(contact.governed_stage, "crmsync stage", issues)
    lead_status = _status(contact.lead_status, "lead status", issues)
    previous_status = _status(contact.previous_lead_status, "previous lead status", [])
    if email_domain(contact.email) is None:
        issues.append("email missing or unreadable")

    fit = judge_fit(contact, c)
    issues.extend(f"fit: {r.why}" for r in fit.criteria if r.insufficient)
    disqualifiers = find_disqualifiers(contact, c)
    engagement = judge_engagement(contact, activities if isinstance(activities, list) else [], fit, c, now, issues)
    mql = fit.passed and engagement.met and not disqualifiers

    sql_at = moment(contact.sql_at)
    reference = sql_at if governed is Stage.SQL and sql_at is not None else now
    gate = judge_sql_gate(contact, current is Stage.SQL, reference.date(), c)
    returned = is_returned(text(contact.dq_reason) is not None, current, governed, lead_status)
    reason = check_reason(contact.dq_reason, c) if returned else None
    recycled_at = moment(contact.recycled_at)

    t = transition(
        Assessment(current, governed, lead_status, previous_status, mql, disqualifiers, gate, reason, recycled_at),
        c,
        now,
    )
    target_status = t.lead_status if t.lead_status is not lead_status else None
    writes = {} if current.is_sales_owned else _writes(contact, t, fit, engagement.score, definitions, now)
    if target_status is not None and writes:
        writes["lead_status"] = target_status.value
    decision = Decision(
        record_id=preview(contact.id),
        crm=preview(contact.crm),
        decided_at=_stamp(now),
        current_stage=current,
        target_stage=t.target,
        lead_status=target_status,
        mql=mql,
        fit=fit,
        engagement=engagement,
        disqualifiers=disqualifiers,
        sql_gate=gate,
        reason=reason,
        actions=tuple(t.actions),
        data_issues=tuple(issues),
        writes=writes,
        definitions_version=definitions.version,
        definitions_hash=definitions.content_hash,
        explanation="",
    )
    object.__setattr__(decision, "explanation", explain(decision))
    return decision


def _stage(value: object, label: str, issues: list[str]) -> Stage | None:
    if value is None or value == "":
        return None
    try:
        return Stage(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        issues.append(f"{label} {preview(value)!r} is not a known stage")
        return None


def _status(value: object, label: str, issues: list[str]) -> LeadStatus | None:
    if value is None or value == "":
        return None
    try:
        return LeadStatus(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        issues.append(f"{label} {preview(value)!r} is not a known lead status")
        return None


def _stamp(moment_: datetime) -> str:
    return moment_.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kept_or_now(existing: object, now: datetime) -> str:
    """A stage timestamp is set once: the first time the stage was reached."""
    when = moment(existing)
    return _stamp(when if when is not None else now)


def _writes(
    contact: Contact,
    t: Transition,
    fit: FitResult,
    score: float,
    definitions: LoadedDefinitions,
    now: datetime,
) -> dict[str, str]:
    failed = [r.why for r in fit.criteria if not r.passed]
    writes = {
        "stage": t.target.value,
        "fit": "true" if fit.passed else "false",
        "fit_reasons": "; ".join(failed) if failed else "all fit criteria passed",
        "engagement_score": f"{score:.2f}",
        "sql_blocked_reason": t.blocked,
        "dq_reason_status": t.reason_status,
        "definitions_version": definitions.version,
    }
    target = t.target
    if not target.is_side_exit and target.rank >= Stage.MQL.rank:
        writes["mql_at"] = _kept_or_now(contact.mql_at, now)
    if not target.is_side_exit and target.rank >= Stage.SAL.rank:
        writes["sal_at"] = _kept_or_now(contact.sal_at, now)
    if target is Stage.SQL:
        writes["sql_at"] = _kept_or_now(contact.sql_at, now)
    if target is Stage.RECYCLED:
        writes["recycled_at"] = _kept_or_now(contact.recycled_at, now)
    if t.clear_reason:
        writes["dq_reason"] = ""
    return writes


def explain(d: Decision) -> str:
    """A few plain sentences a rep can read on the record."""
    parts = [f"{'MQL' if d.mql else 'Not MQL'}."]
    fails = [r.why for r in d.fit.criteria if not r.passed]
    parts.append(
        f"Fit {d.fit.passed_count}/{len(d.fit.criteria)} (needs {d.fit.required})"
        + (f": {'; '.join(fails)}." if fails else ".")
    )
    intent = ", ".join(h.action for h in d.engagement.high_intent)
    parts.append(
        f"Engagement score {d.engagement.score:.2f} (threshold {d.engagement.threshold:g})"
        + (f"; high-intent: {intent}." if intent else ".")
    )
    if d.disqualifiers:
        parts.append("Disqualified: " + "; ".join(h.why for h in d.disqualifiers) + ".")
    if d.sql_gate.requested:
        gate = "passed." if d.sql_gate.passed else f"failed, missing {', '.join(d.sql_gate.missing)}."
        parts.append(f"SQL gate {gate}")
    if d.reason is not None:
        parts.append(f"Reason: {d.reason.why}.")
    actions = ", ".join(a.kind.value for a in d.actions)
    parts.append(f"Stage {d.current_stage.value} -> {d.target_stage.value} ({actions}).")
    return " ".join(parts)
