"""CRM-neutral records: what the engine reads and decides.

Connectors translate HubSpot and Salesforce shapes to and from these types; nothing outside
`connectors/` ever sees a CRM-specific shape. Field values coming from a CRM are kept loosely
typed on purpose: the engine must judge garbage (employees "abc", a 10 MB title) rather than
have it rejected before it is even read.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Stage(enum.StrEnum):
    """Lifecycle stages. The main chain is ordered; recycled and disqualified are side exits."""

    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    RECYCLED = "recycled"
    DISQUALIFIED = "disqualified"

    # Module-level sets, not `Stage.X` inside the properties: the engine asks these a dozen times
    # per record, and an enum member looked up on its class costs as much as the whole test.
    @property
    def rank(self) -> int:
        """Position on the forward-only chain; side exits rank with `lead`."""
        return _RANK[self]

    @property
    def is_side_exit(self) -> bool:
        return self in _SIDE_EXITS

    @property
    def is_sales_owned(self) -> bool:
        """Opportunity and customer records are never touched by marketing rules."""
        return self in _SALES_OWNED


_RANK = {
    Stage.LEAD: 0,
    Stage.RECYCLED: 0,
    Stage.DISQUALIFIED: 0,
    Stage.MQL: 1,
    Stage.SAL: 2,
    Stage.SQL: 3,
    Stage.OPPORTUNITY: 4,
    Stage.CUSTOMER: 5,
}
_SIDE_EXITS = frozenset({Stage.RECYCLED, Stage.DISQUALIFIED})
_SALES_OWNED = frozenset({Stage.OPPORTUNITY, Stage.CUSTOMER})


class LeadStatus(enum.StrEnum):
    """CRM-neutral lead status; the definitions map each to the CRM's own picklist values."""

    NEW = "new"
    OPEN = "open"
    ATTEMPTED = "attempted"
    CONNECTED = "connected"
    IN_PROGRESS = "in_progress"
    QUALIFIED = "qualified"
    UNQUALIFIED = "unqualified"
    NURTURE = "nurture"
    CONVERTED = "converted"


BANT_ITEMS = ("need", "authority", "timeline", "budget")


class PipelineRoute(enum.StrEnum):
    """The door a record came through into pipeline (opportunity or customer)."""

    DEAL = "deal"
    CONVERSION = "conversion"
    MANUAL_STAGE = "manual stage"


BACKLOG = " before rollout"
"""Marks a verdict on a record that was in pipeline before crmsync's rollout: "<route> before rollout:
missing <items>" (flagged and counted, no owner task; the store counts the backlog by it)."""


@dataclass(slots=True)
class Contact:
    """A HubSpot contact or Salesforce lead, as the engine sees it.

    `stage` is what the CRM shows now (a rep may have set it); `governed_stage` is the stage
    crmsync itself last wrote (its own property), which is what an undocumented SQL reverts to.
    `previous_lead_status` is the status before the latest change (from the stored snapshot), so
    a reverted SQL can put the lead status back too. `opportunity_at` / `customer_at` /
    `skipped_gate` are crmsync's own stamps for records sales took into pipeline.
    """

    id: str
    crm: str = ""
    email: Any = None
    first_name: Any = None
    last_name: Any = None
    company: Any = None
    title: Any = None
    industry: Any = None
    employees: Any = None
    country: Any = None
    source: Any = None
    owner_id: Any = None
    stage: Any = None
    governed_stage: Any = None
    lead_status: Any = None
    previous_lead_status: Any = None
    dq_reason: Any = None
    bant: dict[str, Any] = field(default_factory=dict)
    mql_at: Any = None
    sal_at: Any = None
    sql_at: Any = None
    recycled_at: Any = None
    created_at: Any = None
    updated_at: Any = None
    opportunity_at: Any = None
    customer_at: Any = None
    skipped_gate: Any = None
    pipeline_route: Any = None
    """How a record at opportunity or customer got there, as its connector reads it: `deal` (HubSpot:
    a deal is associated), `conversion` (Salesforce: the lead was converted), `manual stage` (a
    person set the stage); None when the record is not in pipeline."""
    pipeline_entered_at: Any = None
    """When the CRM says the record reached pipeline, where it keeps that (Salesforce: the lead's
    `ConvertedDate`); None when it does not say. What tells records already in pipeline before
    crmsync's rollout (a backlog) from those that skipped the gate since."""
    snapshot: dict[str, str] = field(default_factory=dict)
    """The CRM's current values of the fields crmsync writes, as pulled: opaque to all but the
    connector, which diffs a decision's writes against it."""


class ObjectType(enum.StrEnum):
    """The object a stream carries, in the store's keys (ids of different objects may be equal). A type
    read beside contacts (`connectors.base.ObjectStream`) is a `LinkedObject`; adding one is a member
    here, its stream and mapping in each CRM's connector, and one line in the connector's
    `object_streams` (docs/architecture.md)."""

    CONTACT = "contact"
    """HubSpot contact, Salesforce Lead: what the engine decides."""
    DEAL = "deal"
    """HubSpot deal, Salesforce Opportunity: pipeline, counted against the gate, never decided."""


@dataclass(slots=True)
class LinkedObject:
    """An object read beside the contacts and linked to them (never decided, never written): a deal
    today. The common columns are the ones a pipeline object has (those that do not apply stay None or
    False); `fields` holds what is particular to a type, JSON-able.

    `contact_ids` are the contact-stream records it belongs to. For deals: HubSpot's associated contact
    ids; Salesforce's leads converted into it (`ConvertedOpportunityId`) and, through
    OpportunityContactRole, the leads whose converted Contact holds a role on it. `stage` is the CRM's own
    stage value (HubSpot `dealstage` id, Salesforce `StageName`); `is_closed` / `is_won` say where it ended.
    """

    id: str
    crm: str = ""
    name: Any = None
    stage: Any = None
    pipeline: Any = None
    amount: Any = None
    currency: Any = None
    close_date: Any = None
    created_at: Any = None
    updated_at: Any = None
    is_closed: bool = False
    is_won: bool = False
    owner_id: Any = None
    contact_ids: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)


Deal = LinkedObject
"""A HubSpot deal or Salesforce Opportunity (object type `deal`)."""


class ActivityKind(enum.StrEnum):
    PAGE_VIEW = "page_view"
    FORM_SUBMISSION = "form_submission"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"
    WEBINAR = "webinar"
    CAMPAIGN_RESPONSE = "campaign_response"


@dataclass(slots=True)
class Activity:
    """Something the lead or its owner did, mapped from engagements, page views, forms, tasks, events.

    `detail` carries what distinguishes activities of one kind: the page URL, the form's name,
    the call's purpose (e.g. "discovery"). `by_owner` marks sales touches (calls, emails sent by the
    owner), which count for SLAs, not for the lead's engagement score.
    """

    id: str
    kind: Any
    occurred_at: Any
    detail: Any = ""
    by_owner: bool = False


# --- what the engine decides -------------------------------------------------------------------


# The parts of a decision are plain slotted dataclasses (not frozen: the engine builds tens of
# thousands a second and frozen init costs 4x); treat them as read-only. The Decision is frozen.


class ActionKind(enum.StrEnum):
    """What the sync must do with a decision. `hold` means: nothing changes stage."""

    PROMOTE = "promote"
    HOLD = "hold"
    CONFIRM_SQL = "confirm_sql"
    REVERT_SQL = "revert_sql"
    DISQUALIFY = "disqualify"
    RECYCLE = "recycle"
    FLAG_INVALID_REASON = "flag_invalid_reason"
    FLAG_SKIPPED_GATE = "flag_skipped_gate"
    OPEN_TASK = "open_task"


@dataclass(slots=True)
class Action:
    """`topic` says what an `open_task` is about: sql_blocked, dq_reason, sla or skipped_gate."""

    kind: ActionKind
    detail: str = ""
    topic: str = ""


@dataclass(slots=True)
class CriterionResult:
    """One fit criterion: `passed` is False both when the value misses and when it is unusable."""

    name: str
    passed: bool
    value: str
    why: str
    insufficient: bool = False


@dataclass(slots=True)
class FitResult:
    passed: bool
    passed_count: int
    required: int
    criteria: tuple[CriterionResult, ...]


@dataclass(slots=True)
class Contribution:
    """Points one input added to the engagement score, after decay for activities."""

    rule: str
    source: str
    base_points: float
    points: float
    age_days: float | None = None


@dataclass(slots=True)
class HighIntentHit:
    action: str
    count: int
    activity_ids: tuple[str, ...]


@dataclass(slots=True)
class EngagementResult:
    score: float
    threshold: float
    met: bool
    contributions: tuple[Contribution, ...]
    high_intent: tuple[HighIntentHit, ...]


@dataclass(slots=True)
class DisqualifierHit:
    name: str
    value: str
    why: str


@dataclass(slots=True)
class BantItem:
    item: str
    documented: bool
    value: str
    why: str


@dataclass(slots=True)
class SqlGate:
    """The SQL gate: `requested` when the CRM shows SQL; `passed` only with all four items documented."""

    requested: bool
    passed: bool
    items: tuple[BantItem, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(i.item for i in self.items if not i.documented)


class SlaState(enum.StrEnum):
    """Where a handoff clock stands at the decision's `now`; stored and shown as these values."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    MET_LATE = "met_late"


@dataclass(slots=True)
class SlaClock:
    """One handoff clock (accept, first_contact, discovery): when it started, when it is due, when
    it was met, and its state at the decision's `now`."""

    name: str
    started_at: str
    at_risk_at: str
    due_at: str
    met_at: str | None
    state: SlaState
    business_hours: bool


@dataclass(slots=True)
class ReasonCheck:
    """A rep's disqualification reason judged against the governed codes."""

    value: str
    valid: bool
    code: str | None
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything the engine concluded about one record, and why.

    `writes` holds the CRM-neutral values crmsync owns (stage, lead status, its own
    properties); connectors map the names to CRM properties, the sync diffs them against the
    record. Two decisions from the same inputs serialise to the same bytes (`to_json`).
    """

    record_id: str
    crm: str
    decided_at: str
    current_stage: Stage
    target_stage: Stage
    lead_status: LeadStatus | None
    mql: bool
    fit: FitResult
    engagement: EngagementResult
    disqualifiers: tuple[DisqualifierHit, ...]
    sql_gate: SqlGate
    reason: ReasonCheck | None
    actions: tuple[Action, ...]
    data_issues: tuple[str, ...]
    slas: tuple[SlaClock, ...]
    writes: dict[str, str]
    definitions_version: str
    definitions_hash: str

    @property
    def explanation(self) -> str:
        """A few plain sentences a rep can read on the record (derived, so never out of step)."""
        parts = [f"{'MQL' if self.mql else 'Not MQL'}."]
        fit = self.fit
        fails = [r.why for r in fit.criteria if not r.passed]
        parts.append(f"Fit {fit.passed_count}/{len(fit.criteria)} (needs {fit.required})"
                     + (f": {'; '.join(fails)}." if fails else "."))
        engagement = self.engagement
        intent = ", ".join(h.action for h in engagement.high_intent)
        parts.append(f"Engagement score {engagement.score:.2f} (threshold {engagement.threshold:g})"
                     + (f"; high-intent: {intent}." if intent else "."))
        if self.disqualifiers:
            parts.append("Disqualified: " + "; ".join(h.why for h in self.disqualifiers) + ".")
        gate = self.sql_gate
        if gate.requested:
            parts.append("SQL gate " + ("passed." if gate.passed else f"failed, missing {', '.join(gate.missing)}."))
        skipped = [a.detail for a in self.actions if a.kind is ActionKind.FLAG_SKIPPED_GATE]
        if skipped:
            parts.append(f"Reached {self.current_stage.value} without documented BANT ({skipped[0]}).")
        if self.reason is not None:
            parts.append(f"Reason: {self.reason.why}.")
        if self.slas:
            parts.append("SLAs: " + ", ".join(f"{c.name} {c.state}" for c in self.slas) + ".")
        done = ", ".join(a.kind.value for a in self.actions)
        parts.append(f"Stage {self.current_stage.value} -> {self.target_stage.value} ({done}).")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(self)
        out["explanation"] = self.explanation
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """Dataclasses, enums and tuples to JSON-ready values, without `dataclasses.asdict`'s deep copies."""
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        out = {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
        if isinstance(value, SqlGate):
            out["missing"] = list(value.missing)
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# --- what connectors exchange with the sync ------------------------------------------------------


@dataclass(slots=True)
class WriteBack:
    """One record's changes, in the CRM's own property names (produced and read by its connector).

    `previous` holds the values the decision saw, so the connector knows the direction of a
    change (HubSpot's lifecycle stage must be cleared before it can move backward).
    """

    record_id: str
    properties: dict[str, str]
    previous: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class WriteResult:
    """The CRM's answer for one record: `retriable` failures go back to the outbox, others to quarantine."""

    record_id: str
    ok: bool
    error: str = ""
    retriable: bool = False


@dataclass(slots=True)
class OwnerTask:
    """A task for the record's owner; `key` makes creating it idempotent across retries."""

    record_id: str
    owner_id: str | None
    subject: str
    body: str
    key: str
    due_at: datetime | None = None


@dataclass(slots=True)
class Check:
    """One line of `crmsync doctor`."""

    name: str
    ok: bool
    detail: str
