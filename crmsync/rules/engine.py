"""`decide`: one record, its activities, the definitions and the time in; a Decision out.

Pure and deterministic: no I/O, no clock of its own, never raises on record content. Whatever
data is unusable is named in `data_issues` and judged as missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from crmsync.definitions import LoadedDefinitions
from crmsync.model import (
    Action,
    ActionKind,
    Activity,
    Contact,
    Decision,
    FitResult,
    LeadStatus,
    PipelineRoute,
    SqlGate,
    Stage,
)
from crmsync.rules.compiled import compiled
from crmsync.rules.disqualifiers import find_disqualifiers
from crmsync.rules.engagement import judge_engagement
from crmsync.rules.fit import judge_fit
from crmsync.rules.lifecycle import Assessment, Transition, is_returned, transition
from crmsync.rules.reasons import check_reason
from crmsync.rules.sla import ALERTING, judge_slas
from crmsync.rules.sla import summary as sla_summary
from crmsync.rules.sql_gate import judge_sql_gate
from crmsync.rules.values import email_domain, moment, preview, text


def decide(contact: Contact, activities: list[Activity], definitions: LoadedDefinitions, now: datetime, *,
           backlog_before: datetime | None = None) -> Decision:
    """`backlog_before`: crmsync's rollout. A record first seen in pipeline that the CRM says got there
    before it is the backlog: its missing BANT is flagged and counted, without an owner task. None:
    every record is judged as it is (the caller leaves it out for records it saw outside pipeline)."""
    c = compiled(definitions)
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    issues: list[str] = []
    current = _known(_STAGES, contact.stage, "stage", "stage", issues) or Stage.LEAD
    governed = _known(_STAGES, contact.governed_stage, "crmsync stage", "stage", issues)
    lead_status = _known(_STATUSES, contact.lead_status, "lead status", "lead status", issues)
    previous_status = _known(_STATUSES, contact.previous_lead_status, "previous lead status", "lead status", [])
    domain = email_domain(contact.email)
    if domain is None:
        issues.append("email missing or unreadable")

    fit = judge_fit(contact, c)
    issues.extend(f"fit: {r.why}" for r in fit.criteria if r.insufficient)
    disqualifiers = find_disqualifiers(contact, domain, c)
    engagement = judge_engagement(contact, activities if isinstance(activities, list) else [], fit, c, now, issues)
    mql = fit.passed and engagement.met and not disqualifiers

    sql_at = moment(contact.sql_at)
    reference = sql_at if governed is Stage.SQL and sql_at is not None else now
    # In pipeline, the verdict is given once: the first time crmsync sees the record there (before
    # it stamps `opportunity_at`); BANT edited later changes nothing.
    sales_owned = current.is_sales_owned
    judged = sales_owned and moment(contact.opportunity_at) is not None
    gated = current in _SALES_WORKED or (sales_owned and not judged)
    gate = judge_sql_gate(contact, reference.date(), c, requested=current is Stage.SQL) if gated else _NO_GATE
    returned = is_returned(current, governed, lead_status, contact_has_reason=text(contact.dq_reason) is not None)
    reason = check_reason(contact.dq_reason, c) if returned else None
    recycled_at = moment(contact.recycled_at)

    backlog = (gated and sales_owned and backlog_before is not None and not gate.passed
               and _entered_before(contact, backlog_before))
    t = transition(
        Assessment(current, governed, lead_status, previous_status, mql, disqualifiers, gate, reason, recycled_at,
                   judged, _route(contact.pipeline_route), backlog),
        c,
        now,
    )
    target_status = t.lead_status if t.lead_status is not lead_status else None
    writes = (_pipeline_writes(contact, t, now) if sales_owned
              else _writes(contact, t, fit, engagement.score, definitions, now))
    slas = judge_slas(t.target, writes, activities if isinstance(activities, list) else [], engagement, c, now)
    if slas:
        writes["sla_state"] = sla_summary(slas)
        t.actions += [Action(ActionKind.OPEN_TASK, f"SLA {clock.state}: {clock.name} was due {clock.due_at}", "sla")
                      for clock in slas if clock.state in ALERTING]
    if target_status is not None and writes:
        writes["lead_status"] = str(target_status)  # a StrEnum's str() is its value, and cheaper than .value
    actions = tuple(t.actions)
    return Decision(
        record_id=preview(contact.id),
        crm=preview(contact.crm),
        decided_at=stamp(now),
        current_stage=current,
        target_stage=t.target,
        lead_status=target_status,
        mql=mql,
        fit=fit,
        engagement=engagement,
        disqualifiers=disqualifiers,
        sql_gate=gate,
        reason=reason,
        actions=actions,
        data_issues=tuple(issues),
        slas=slas,
        writes=writes,
        definitions_version=definitions.version,
        definitions_hash=definitions.content_hash,
    )


_T = TypeVar("_T")
_STAGES = {s.value: s for s in Stage}
_SALES_WORKED = (Stage.MQL, Stage.SAL, Stage.SQL)
"""BANT is judged where sales works the record; a lead has none yet and is not asking for SQL."""
_NO_GATE = SqlGate(requested=False, passed=False, items=())
_STATUSES = {s.value: s for s in LeadStatus}
_ROUTES = {r.value: r for r in PipelineRoute}
_MQL_RANK, _SAL_RANK = Stage.MQL.rank, Stage.SAL.rank


def _known(table: dict[str, _T], value: object, label: str, what: str, issues: list[str]) -> _T | None:
    """A stage or lead status from its CRM-neutral value; anything else is named as a data issue."""
    if value is None or value == "":
        return None
    found = table.get(value) if isinstance(value, str) else None
    if found is None:
        issues.append(f"{label} {preview(value)!r} is not a known {what}")
    return found


def _route(value: object) -> str:
    """The door into pipeline as the connector read it; a person setting the stage when unknown."""
    return (_ROUTES.get(value) if isinstance(value, str) else None) or PipelineRoute.MANUAL_STAGE.value


def _entered_before(contact: Contact, cutoff: datetime) -> bool:
    """Whether the CRM says the record reached pipeline before `cutoff`: its own date for that (Salesforce
    `ConvertedDate`, a day: its start), never before the record was created; without one, its create
    date (a record created since cannot have been there before). Unknown: not before."""
    created = moment(contact.created_at)
    entered = moment(contact.pipeline_entered_at)
    if entered is None or (created is not None and created > entered):
        entered = created
    return entered is not None and entered < cutoff


@lru_cache(maxsize=4096)  # every record of a pass is decided at the same `now`
def stamp(moment_: datetime) -> str:
    return moment_.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kept_or_now(existing: object, now_stamp: str) -> str:
    """A stage timestamp is set once: the first time the stage was reached."""
    if existing is None or existing == "":
        return now_stamp
    when = moment(existing)
    return stamp(when) if when is not None else now_stamp


def _pipeline_writes(contact: Contact, t: Transition, now: datetime) -> dict[str, str]:
    """crmsync's own fields keep up with a stage sales owns (the CRM's stage is never written):
    its stage, when the record entered pipeline and became a customer, and the verdict on its way in."""
    now_stamp = stamp(now)
    writes = {"governed_stage": str(t.target), "opportunity_at": _kept_or_now(contact.opportunity_at, now_stamp)}
    if t.target is Stage.CUSTOMER:
        writes["customer_at"] = _kept_or_now(contact.customer_at, now_stamp)
    if t.skipped_gate is not None:
        writes["skipped_gate"] = t.skipped_gate
    return writes


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
        "stage": str(t.target),
        "fit": "true" if fit.passed else "false",
        "fit_reasons": "; ".join(failed) if failed else "all fit criteria passed",
        "engagement_score": f"{score:.2f}",
        "definitions_version": definitions.version,
    }
    target = t.target
    # What blocked an SQL stays on the record until an SQL is confirmed; a reason check stays
    # until the reason changes. Neither is cleared by an unrelated pass.
    if t.blocked or target is Stage.SQL:
        writes["sql_blocked_reason"] = t.blocked
    if t.reason_status:
        writes["dq_reason_status"] = t.reason_status
    now_stamp = stamp(now)
    if not target.is_side_exit:
        rank = target.rank
        if rank >= _MQL_RANK:
            writes["mql_at"] = _kept_or_now(contact.mql_at, now_stamp)
        if rank >= _SAL_RANK:
            writes["sal_at"] = _kept_or_now(contact.sal_at, now_stamp)
    if target is Stage.SQL:
        writes["sql_at"] = _kept_or_now(contact.sql_at, now_stamp)
    if target is Stage.RECYCLED:
        writes["recycled_at"] = _kept_or_now(contact.recycled_at, now_stamp)
    if t.clear_reason:
        writes["dq_reason"] = ""
    return writes
