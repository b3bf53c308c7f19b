"""The shape of the governed definitions file, validated with pydantic.

Every model forbids unknown keys (a typo must not silently fall back to a default) and checks
the contradictions a reviewer could miss: ranges upside down, thresholds out of range, a
mapping or reason code that points at a stage that does not exist.
"""

from __future__ import annotations

from datetime import date, time
from importlib import import_module
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from crmsync.crms import CRMS
from crmsync.definitions.patterns import compile_pattern
from crmsync.model import ActivityKind, LeadStatus, Stage

Points = Annotated[float, Field(ge=0, le=1000)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compiles(pattern: str) -> str:
    compile_pattern(pattern)  # ValueError with the reason: RE2 cannot run it, or it nests quantifiers
    return pattern


Regex = Annotated[str, Field(min_length=1), AfterValidator(_compiles)]
"""A pattern matched against CRM text: it must run with RE2 (see crmsync.definitions.patterns)."""


# --- governance ----------------------------------------------------------------------------------


class ChangelogEntry(Strict):
    version: NonEmpty
    date: date
    summary: NonEmpty


class Approvals(Strict):
    marketing: NonEmpty
    sales: NonEmpty


class Governance(Strict):
    version: NonEmpty
    owner: NonEmpty
    approved_by: Approvals
    effective_date: date
    next_review_date: date
    changelog: list[ChangelogEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Governance:
        if self.next_review_date <= self.effective_date:
            raise ValueError(
                f"next_review_date {self.next_review_date} must be after effective_date {self.effective_date}"
            )
        if not any(entry.version == self.version for entry in self.changelog):
            raise ValueError(f"changelog has no entry for version {self.version!r}: add one saying what changed")
        return self


# --- fit -----------------------------------------------------------------------------------------


class EmployeeRange(Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> EmployeeRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Titles(Strict):
    """Buyer personas: a title passes when it contains a keyword (whole words) or matches a pattern."""

    keywords: list[NonEmpty] = Field(default_factory=list)
    patterns: list[Regex] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Titles:
        if not self.keywords and not self.patterns:
            raise ValueError("give at least one keyword or pattern, or every title fails")
        return self


class Fit(Strict):
    min_criteria_passed: int = Field(ge=1, le=4)
    employees: EmployeeRange
    industries: list[NonEmpty] = Field(min_length=1)
    titles: Titles
    countries: list[NonEmpty] = Field(min_length=1)


# --- engagement ----------------------------------------------------------------------------------


class ActivityRule(Strict):
    """Points for an activity; the first rule whose kind and detail pattern match wins."""

    name: NonEmpty
    kind: ActivityKind
    detail_pattern: Regex | None = None
    points: Points
    max_points: Points | None = None


class PropertyRule(Strict):
    """Points for a record property value: exact values (case-insensitive) or a pattern."""

    name: NonEmpty
    field: Literal["source", "industry", "title", "country", "company"]
    values: list[NonEmpty] = Field(default_factory=list)
    pattern: Regex | None = None
    points: Points

    @model_validator(mode="after")
    def _something(self) -> PropertyRule:
        if not self.values and self.pattern is None:
            raise ValueError(f"property rule {self.name!r} needs values or a pattern")
        return self


class FitPoints(Strict):
    """Score points for each passing fit criterion (the 'fit' half of the combined score)."""

    employees: Points = 0
    industry: Points = 0
    title: Points = 0
    country: Points = 0


class HighIntentAction(Strict):
    name: NonEmpty
    kind: ActivityKind
    detail_pattern: Regex
    min_count: int = Field(default=1, ge=1)
    within_days: int = Field(ge=1, le=3650)
    direct_inquiry: bool = False


class Engagement(Strict):
    threshold: float = Field(gt=0, le=1000)
    half_life_days: float = Field(gt=0, le=3650)
    fit_points: FitPoints = FitPoints()
    activity_points: list[ActivityRule] = Field(min_length=1)
    property_points: list[PropertyRule] = Field(default_factory=list)
    high_intent: list[HighIntentAction] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Engagement:
        for label, names in (
            ("activity_points", [r.name for r in self.activity_points]),
            ("property_points", [r.name for r in self.property_points]),
            ("high_intent", [a.name for a in self.high_intent]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: duplicate name(s) {', '.join(dupes)}")
        return self


# --- disqualifiers -------------------------------------------------------------------------------


class Disqualifiers(Strict):
    personal_email_domains: list[NonEmpty] = Field(default_factory=list)
    competitor_domains: list[NonEmpty] = Field(default_factory=list)
    student_title_keywords: list[NonEmpty] = Field(default_factory=list)
    student_email_suffixes: list[NonEmpty] = Field(default_factory=list)


# --- SQL gate ------------------------------------------------------------------------------------


class TextRequirement(Strict):
    min_length: int = Field(ge=1, le=500)
    description: NonEmpty


class TimelineRequirement(Strict):
    max_days: int = Field(ge=1, le=730)
    description: NonEmpty


class SqlRequirements(Strict):
    placeholders: list[str] = Field(min_length=1)
    need: TextRequirement
    authority: TextRequirement
    budget: TextRequirement
    timeline: TimelineRequirement


# --- SAL, SLAs, calendar, recycling --------------------------------------------------------------


class Sla(Strict):
    accept_within_business_hours: float = Field(gt=0, le=240)
    discovery_within_hours: float = Field(gt=0, le=720)
    first_contact_within_hours: float = Field(gt=0, le=720)
    first_contact_direct_inquiry_hours: float = Field(gt=0, le=720)
    at_risk_fraction: float = Field(gt=0, lt=1)
    accepted_lead_statuses: list[LeadStatus] = Field(min_length=1)
    discovery_pattern: Regex
    business_hours_for: list[SlaName] = Field(default_factory=lambda: list[SlaName](["accept"]))
    mql_to_sql_floor: float = Field(ge=0, le=1)
    sal_acceptance_floor: float = Field(ge=0, le=1)
    notify_manager: bool = False

    @model_validator(mode="after")
    def _direct_is_faster(self) -> Sla:
        if self.first_contact_direct_inquiry_hours > self.first_contact_within_hours:
            raise ValueError(
                "first_contact_direct_inquiry_hours "
                f"({self.first_contact_direct_inquiry_hours}) is longer than first_contact_within_hours "
                f"({self.first_contact_within_hours}): a direct inquiry must be answered sooner"
            )
        return self


SlaName = Literal["accept", "first_contact", "discovery"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Holidays(Strict):
    country: str | None = None
    subdivision: str | None = None
    extra: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_calendar(self) -> Holidays:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("subdivision given without a country")
            return self
        import holidays

        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision)
        except NotImplementedError as exc:
            raise ValueError(f"the holidays package has no calendar for {self.country!r}: {exc}") from exc
        return self


class Calendar(Strict):
    time_zone: NonEmpty
    working_days: list[Weekday] = Field(min_length=1)
    start: time
    end: time
    holidays: Holidays = Holidays()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from exc
        return value

    @model_validator(mode="after")
    def _hours(self) -> Calendar:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class Recycle(Strict):
    cooldown_days: int = Field(ge=0, le=3650)


# --- reason codes --------------------------------------------------------------------------------


class ReasonCode(Strict):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: NonEmpty
    outcome: Stage

    @field_validator("outcome")
    @classmethod
    def _side_exit(cls, value: Stage) -> Stage:
        if not value.is_side_exit:
            raise ValueError(f"outcome must be 'disqualified' or 'recycled', not {value.value!r}")
        return value


class ReasonCodes(Strict):
    codes: list[ReasonCode] = Field(min_length=1)
    not_accepted: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_overlap(self) -> ReasonCodes:
        accepted = {c.code for c in self.codes} | {c.label.casefold() for c in self.codes}
        clash = sorted(v for v in self.not_accepted if v.casefold() in accepted)
        if clash:
            raise ValueError(f"{', '.join(clash)} is both an accepted code and in not_accepted")
        return self


# --- CRM mappings --------------------------------------------------------------------------------


class StageValues(Strict):
    """The CRM value written for each neutral stage."""

    lead: NonEmpty
    mql: NonEmpty
    sal: NonEmpty
    sql: NonEmpty
    opportunity: NonEmpty
    customer: NonEmpty
    recycled: NonEmpty
    disqualified: NonEmpty


class LeadStatusValues(Strict):
    """The CRM value for each neutral lead status; null means the CRM has no such value."""

    new: str | None = None
    open: str | None = None
    attempted: str | None = None
    connected: str | None = None
    in_progress: str | None = None
    qualified: str | None = None
    unqualified: str | None = None
    nurture: str | None = None
    converted: str | None = None


class Fields(Strict):
    """CRM property (HubSpot) or field (Salesforce) names, by neutral name."""

    stage: NonEmpty
    lifecycle: NonEmpty
    lead_status: NonEmpty
    owner: NonEmpty
    bant_need: NonEmpty
    bant_authority: NonEmpty
    bant_timeline: NonEmpty
    bant_budget: NonEmpty
    dq_reason: NonEmpty
    fit: NonEmpty
    fit_reasons: NonEmpty
    engagement_score: NonEmpty
    mql_at: NonEmpty
    sal_at: NonEmpty
    sql_at: NonEmpty
    recycled_at: NonEmpty
    sql_blocked_reason: NonEmpty
    dq_reason_status: NonEmpty
    sla_state: NonEmpty
    definitions_version: NonEmpty
    opportunity_at: NonEmpty
    customer_at: NonEmpty
    skipped_gate: NonEmpty
    sql_request: NonEmpty | None = None
    """A checkbox a rep ticks to ask for SQL (Salesforce: a default org has no "Qualified" status)."""


class CrmMapping(Strict):
    stages: StageValues
    lead_statuses: LeadStatusValues
    fields: Fields
    industries: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    """The CRM's industry values -> the words `fit.industries` uses (an org's picklist is not the
    definitions' vocabulary: Salesforce's standard Industry says "Technology", the definitions "software")."""
    sources: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    """The CRM's lead source values -> the definitions' source words (what property rules compare)."""
    campaign_types: dict[NonEmpty, ActivityKind] = Field(default_factory=dict)
    """Salesforce: a Campaign Type -> the activity kind a response to it is (the standard picklist has
    no web-form type; unlisted types are campaign responses)."""

    @model_validator(mode="after")
    def _statuses_needed(self) -> CrmMapping:
        for needed in ("new", "unqualified", "nurture"):
            if getattr(self.lead_statuses, needed) is None:
                raise ValueError(f"lead_statuses.{needed} needs a CRM value: crmsync writes it")
        return self


def _field_defaults(crm: str) -> dict[str, str]:
    """`FIELD_DEFAULTS` of the CRM's package (crmsync/crms/<crm>/__init__.py), if any: its mapping's
    fields added after the first governed version, so a definitions file written before them still loads."""
    defaults: dict[str, str] = getattr(import_module(f"crmsync.crms.{crm}"), "FIELD_DEFAULTS", {})
    return defaults


FIELD_DEFAULTS: dict[str, dict[str, str]] = {crm: _field_defaults(crm) for crm in CRMS}


class _Mappings(Strict):
    """`mappings`: one required `CrmMapping` per name in `crmsync.crms.CRMS` (fields added below), so a
    misspelt CRM gets the loader's "did you mean" and a file without a known CRM's mapping does not load."""

    @model_validator(mode="before")
    @classmethod
    def _pipeline_field_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for crm, defaults in FIELD_DEFAULTS.items():
            mapping = out.get(crm)
            if isinstance(mapping, dict) and isinstance(mapping.get("fields"), dict):
                out[crm] = {**mapping, "fields": {**defaults, **mapping["fields"]}}
        return out


# mypy sees no CRM field: `Crm.mapping(definitions)` is the one place reading a CRM's mapping, by name.
if TYPE_CHECKING:
    class Mappings(_Mappings):
        pass
else:
    Mappings = create_model("Mappings", __base__=_Mappings, __doc__=_Mappings.__doc__,
                            **{crm: (CrmMapping, ...) for crm in CRMS})


# --- the file ------------------------------------------------------------------------------------


class Definitions(Strict):
    governance: Governance
    fit: Fit
    engagement: Engagement
    disqualifiers: Disqualifiers
    sql_requirements: SqlRequirements
    sla: Sla
    calendar: Calendar
    recycle: Recycle
    reason_codes: ReasonCodes
    mappings: Mappings

    @model_validator(mode="after")
    def _accepted_statuses_mapped(self) -> Definitions:
        for crm in type(self.mappings).model_fields:  # every CRM's mapping
            values = getattr(self.mappings, crm).lead_statuses
            unmapped = [s.value for s in self.sla.accepted_lead_statuses if getattr(values, s.value) is None]
            if unmapped:
                raise ValueError(
                    f"sla.accepted_lead_statuses names {', '.join(unmapped)}, which "
                    f"mappings.{crm}.lead_statuses leaves without a CRM value"
                )
        return self
