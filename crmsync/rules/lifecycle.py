"""The lifecycle state machine: lead -> MQL -> SAL -> SQL -> opportunity -> customer.

Stages only move forward. The exceptions are governed: a disqualifier or a valid reason code
sends a record to disqualified or recycled, and an undocumented SQL is reverted to the stage
crmsync last set. Opportunity and customer belong to sales and are never moved; but how a record
got there is judged once, the first time crmsync sees it there: without documented BANT it
skipped the gate (flagged, with an owner task), unless it was there before crmsync's rollout (the
backlog: flagged and counted, no task).

Stages are `StrEnum`s: `f"{stage}"` is the stage's value (`.value` on an enum costs more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crmsync.model import (
    BACKLOG,
    Action,
    ActionKind,
    DisqualifierHit,
    LeadStatus,
    ReasonCheck,
    SqlGate,
    Stage,
)
from crmsync.rules.compiled import Compiled


@dataclass(slots=True)
class Assessment:
    """What the rules found, as the state machine needs it."""

    current: Stage
    governed: Stage | None
    lead_status: LeadStatus | None
    previous_lead_status: LeadStatus | None
    mql: bool
    disqualifiers: tuple[DisqualifierHit, ...]
    gate: SqlGate
    reason: ReasonCheck | None
    recycled_at: datetime | None
    pipeline_judged: bool = False
    """Opportunity or customer already stamped: the verdict on how it got there was given then."""
    route: str = ""
    before_rollout: bool = False
    """In pipeline before crmsync's rollout (the backlog cutoff): a missing BANT is flagged, not tasked."""


@dataclass(slots=True)
class Transition:
    target: Stage
    lead_status: LeadStatus | None = None
    actions: list[Action] = field(default_factory=list)
    reason_status: str = ""
    blocked: str = ""
    clear_reason: bool = False
    skipped_gate: str | None = None
    """The verdict on a record's way into pipeline: what was missing and by which route, "" when
    BANT was documented; None when there is nothing to decide (not in pipeline, or decided before)."""


_STATUS_FOR = {Stage.LEAD: LeadStatus.NEW, Stage.MQL: LeadStatus.NEW, Stage.SAL: LeadStatus.IN_PROGRESS,
               Stage.RECYCLED: LeadStatus.NURTURE, Stage.DISQUALIFIED: LeadStatus.UNQUALIFIED}


def is_returned(current: Stage, governed: Stage | None, lead_status: LeadStatus | None, *,
                contact_has_reason: bool) -> bool:
    """A person returned the record to marketing: a reason entered, or marked unqualified or
    moved to a side exit by hand (crmsync's own disqualifications don't count)."""
    by_crmsync = governed is not None and governed.is_side_exit
    return contact_has_reason or (
        not by_crmsync and (lead_status is LeadStatus.UNQUALIFIED or current.is_side_exit)
    )


def transition(a: Assessment, c: Compiled, now: datetime) -> Transition:
    current = a.current
    if current.is_sales_owned:
        return _pipeline(a)
    if a.disqualifiers:
        names = ", ".join(sorted({h.name for h in a.disqualifiers}))
        if current is Stage.DISQUALIFIED:
            return Transition(current, actions=[Action(ActionKind.HOLD, f"disqualified ({names})")])
        return Transition(Stage.DISQUALIFIED, LeadStatus.UNQUALIFIED, [Action(ActionKind.DISQUALIFY, names)])
    if a.reason is not None:
        return _returned(a, c, now)
    if current is Stage.SQL:
        return _sql_requested(a)
    return _marketing(a, current, c, now)


def _returned(a: Assessment, c: Compiled, now: datetime) -> Transition:
    reason = a.reason
    assert reason is not None
    if not reason.valid:
        # The record stays where it is until the reason is fixed, but an undocumented SQL
        # is still reverted: the gate holds whatever else is going on.
        held = (_sql_requested(a) if a.current is Stage.SQL
                else Transition(a.current, actions=[Action(ActionKind.HOLD, "waiting for a valid reason")]))
        held.actions += [
            Action(ActionKind.FLAG_INVALID_REASON, reason.why),
            Action(ActionKind.OPEN_TASK, f"Fix the disqualification reason: {reason.why}", "dq_reason"),
        ]
        held.reason_status = f"invalid: {reason.why}"
        return held
    outcome = next(code.outcome for code in c.loaded.definitions.reason_codes.codes if code.code == reason.code)
    if outcome is Stage.RECYCLED and a.current is Stage.RECYCLED:
        again = _marketing(a, Stage.RECYCLED, c, now)
        if again.target is not Stage.RECYCLED:
            again.clear_reason = True
            return again
    if a.current is outcome:
        return Transition(outcome, actions=[Action(ActionKind.HOLD, f"{outcome}: {reason.code}")],
                          reason_status="valid")
    kind = ActionKind.RECYCLE if outcome is Stage.RECYCLED else ActionKind.DISQUALIFY
    return Transition(outcome, _STATUS_FOR[outcome], [Action(kind, str(reason.code))], reason_status="valid")


def _pipeline(a: Assessment) -> Transition:
    """Sales took the record into pipeline: held as it is; judged the first time crmsync sees it there."""
    held = Transition(a.current, actions=[Action(ActionKind.HOLD, f"{a.current} is owned by sales")])
    if a.pipeline_judged:
        return held
    if a.gate.passed:
        held.skipped_gate = ""
        return held
    missing = ", ".join(a.gate.missing)
    if a.before_rollout:
        held.skipped_gate = f"{a.route}{BACKLOG}: missing {missing}"
        held.actions.append(Action(ActionKind.FLAG_SKIPPED_GATE, held.skipped_gate))
        return held
    held.skipped_gate = f"{a.route}: missing {missing}"
    held.actions += [
        Action(ActionKind.FLAG_SKIPPED_GATE, held.skipped_gate),
        Action(ActionKind.OPEN_TASK, f"Reached {a.current} by {a.route} without documented BANT; "
                                     f"document {missing} ({_undocumented(a.gate)})", "skipped_gate"),
    ]
    return held


def _undocumented(gate: SqlGate) -> str:
    """Each BANT item that is not documented, and why."""
    return "; ".join(f"{i.item}: {i.why}" for i in gate.items if not i.documented)


def _sql_requested(a: Assessment) -> Transition:
    if a.gate.passed:
        actions = [Action(ActionKind.HOLD, "SQL with BANT documented")]
        if a.governed is not Stage.SQL:
            actions = [Action(ActionKind.CONFIRM_SQL, "need, authority, timeline and budget documented")]
        return Transition(Stage.SQL, actions=actions)
    missing = ", ".join(a.gate.missing)
    computed = Stage.MQL if a.mql else Stage.LEAD
    previous = a.governed if a.governed is not None and a.governed.rank < Stage.SQL.rank else computed
    target = previous if previous.rank >= computed.rank else computed
    status = a.previous_lead_status
    if status is None or status is LeadStatus.QUALIFIED:
        status = _STATUS_FOR.get(target, LeadStatus.NEW)
    blocked = _undocumented(a.gate)
    return Transition(
        target,
        status,
        [
            Action(ActionKind.REVERT_SQL, f"missing: {missing}"),
            Action(ActionKind.OPEN_TASK, f"SQL needs documented BANT; missing {missing}: {blocked}", "sql_blocked"),
        ],
        blocked=blocked,
    )


def _marketing(a: Assessment, current: Stage, c: Compiled, now: datetime) -> Transition:
    """MQL is a system determination; SAL is the owner's acceptance of an MQL (a lead status).

    A recycled record may become MQL again only once the cool-down since recycling has passed.
    """
    if current is Stage.RECYCLED:
        cooldown = timedelta(days=c.loaded.definitions.recycle.cooldown_days)
        if a.recycled_at is None or now - a.recycled_at < cooldown:
            return Transition(current, actions=[Action(ActionKind.HOLD, "recycled: cool-down not over")])
    if current is Stage.SAL:
        return Transition(Stage.SAL, actions=[Action(ActionKind.HOLD, "accepted by sales")])
    computed = Stage.MQL if a.mql else Stage.LEAD
    accepted = a.lead_status in c.loaded.definitions.sla.accepted_lead_statuses
    if accepted and (computed is Stage.MQL or current is Stage.MQL):
        computed = Stage.SAL
    if computed.rank > current.rank:
        status = LeadStatus.NEW if a.lead_status is None or current.is_side_exit else None
        return Transition(computed, status, [Action(ActionKind.PROMOTE, f"{current} -> {computed}")])
    return Transition(current, actions=[Action(ActionKind.HOLD, f"stays {current}")])
