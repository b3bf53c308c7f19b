"""The contract from the seeds, case by case: each row is a situation the seeds describe.

Every case runs the real engine on the default definitions at a fixed clock and checks the
stage it lands on plus what makes the case interesting (missing BANT items, actions, hits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from crmsync.definitions import LoadedDefinitions
from crmsync.model import ActionKind, Activity, Contact, Stage
from crmsync.rules import decide
from tests.builders import FULL_BANT, NOW, activity, demo_request, fit_contact, pricing_view, whitepaper


def bant(**changes: str) -> dict[str, str]:
    return {**FULL_BANT, **changes}


@dataclass
class Case:
    name: str
    contact: Contact
    activities: list[Activity]
    stage: Stage
    mql: bool | None = None
    missing: tuple[str, ...] | None = None
    actions: tuple[ActionKind, ...] = ()
    intent: tuple[str, ...] | None = None
    disqualifier: str | None = None
    writes: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("perfect fit + one blog download is not MQL", fit_contact(),
         [activity("page_view", 1, "https://example.com/blog/lead-scoring")], Stage.LEAD, mql=False),
    Case("200-person fintech VP who requested a demo is MQL", fit_contact(), [demo_request()], Stage.MQL,
         mql=True, actions=(ActionKind.PROMOTE,), intent=("demo_request",), writes={"mql_at": "2026-11-25T15:00:00Z"}),
    Case("gmail address with score 90 is not MQL",
         fit_contact(email="dana.r@gmail.com", company=None),
         [demo_request(), *[pricing_view(1, n) for n in range(5)], activity("webinar", 2)], Stage.DISQUALIFIED,
         mql=False, disqualifier="personal_email"),
    Case("five old whitepaper downloads are not a demo request", fit_contact(),
         [whitepaper(60, n) for n in range(5)], Stage.LEAD, mql=False, intent=()),
    Case("one old demo request is still a high-intent action", fit_contact(), [demo_request(60)], Stage.MQL,
         mql=True, intent=("demo_request",)),
    Case("rep set SQL with budget blank is reverted, budget missing",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(budget="")), [demo_request()], Stage.MQL,
         missing=("budget",), actions=(ActionKind.REVERT_SQL, ActionKind.OPEN_TASK)),
    Case("timeline 'next year' is not documented",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(timeline="next year")), [demo_request()],
         Stage.MQL, missing=("timeline",)),
    Case("need 'n/a' is not documented",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(need="n/a")), [demo_request()], Stage.MQL,
         missing=("need",)),
    Case("reason 'not interested' is flagged and the owner gets a task",
         fit_contact(stage="sal", governed_stage="sal", lead_status="unqualified", dq_reason="Not interested"),
         [demo_request()], Stage.SAL, actions=(ActionKind.HOLD, ActionKind.FLAG_INVALID_REASON, ActionKind.OPEN_TASK)),
    Case("competitor domain with demo request is disqualified",
         fit_contact(email="spy@rivalcrm.io", company="RivalCRM"), [demo_request()], Stage.DISQUALIFIED,
         mql=False, disqualifier="competitor", actions=(ActionKind.DISQUALIFY,)),
    Case("opportunity with no BANT is held and flagged as a skipped gate", fit_contact(stage="opportunity", bant={}),
         [], Stage.OPPORTUNITY, actions=(ActionKind.HOLD, ActionKind.FLAG_SKIPPED_GATE, ActionKind.OPEN_TASK),
         writes={"governed_stage": "opportunity", "opportunity_at": "2026-11-25T15:00:00Z",
                 "skipped_gate": "manual stage: missing need, authority, timeline, budget"}),
    Case("a deal for a lead without budget skipped the gate by the deal",
         fit_contact(stage="opportunity", pipeline_route="deal", bant=bant(budget="")), [], Stage.OPPORTUNITY,
         actions=(ActionKind.HOLD, ActionKind.FLAG_SKIPPED_GATE, ActionKind.OPEN_TASK),
         writes={"skipped_gate": "deal: missing budget"}),
    Case("a converted lead with BANT documented is clean",
         fit_contact(crm="salesforce", stage="opportunity", pipeline_route="conversion", bant=bant()), [],
         Stage.OPPORTUNITY, actions=(ActionKind.HOLD,), writes={"skipped_gate": "", "governed_stage": "opportunity"}),
    Case("the verdict is given once: BANT cleared after entering pipeline changes nothing",
         fit_contact(stage="opportunity", governed_stage="opportunity", opportunity_at="2026-11-01T09:00:00Z",
                     skipped_gate="", bant={}), [], Stage.OPPORTUNITY, actions=(ActionKind.HOLD,),
         writes={"opportunity_at": "2026-11-01T09:00:00Z"}),
    Case("customer from a competitor domain is untouched, its crmsync stage follows",
         fit_contact(stage="customer", email="x@rivalcrm.io", governed_stage="opportunity",
                     opportunity_at="2026-11-01T09:00:00Z"), [], Stage.CUSTOMER, actions=(ActionKind.HOLD,),
         writes={"governed_stage": "customer", "opportunity_at": "2026-11-01T09:00:00Z",
                 "customer_at": "2026-11-25T15:00:00Z"}),
    Case("rep set SQL with all four documented is confirmed",
         fit_contact(stage="sql", governed_stage="sal", bant=bant()), [demo_request()], Stage.SQL, missing=(),
         actions=(ActionKind.CONFIRM_SQL,), writes={"sql_at": "2026-11-25T15:00:00Z"}),
    Case("confirmed SQL stays SQL on the next pass",
         fit_contact(stage="sql", governed_stage="sql", sql_at="2026-11-20T10:00:00Z", bant=bant()), [],
         Stage.SQL, actions=(ActionKind.HOLD,), writes={"sql_at": "2026-11-20T10:00:00Z"}),
    Case("timeline as a date inside 90 days is documented",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(timeline="Board signs off by 2027-01-15")),
         [demo_request()], Stage.SQL, missing=()),
    Case("timeline date already passed is not documented",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(timeline="2026-10-01")), [demo_request()],
         Stage.MQL, missing=("timeline",)),
    Case("timeline 'asap' is not a date or horizon",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(timeline="ASAP")), [demo_request()], Stage.MQL,
         missing=("timeline",)),
    Case("need too short to be specific is not documented",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(need="help")), [demo_request()], Stage.MQL,
         missing=("need",)),
    Case("authority '?' is a placeholder",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(authority="?")), [demo_request()], Stage.MQL,
         missing=("authority",)),
    Case("budget 'TBD' and need '-' are both reported",
         fit_contact(stage="sql", governed_stage="mql", bant=bant(budget="TBD", need="-")), [demo_request()],
         Stage.MQL, missing=("need", "budget")),
    Case("undocumented SQL reverts to the SAL crmsync had set",
         fit_contact(stage="sql", governed_stage="sal", previous_lead_status="in_progress", bant={}), [],
         Stage.SAL, missing=("need", "authority", "timeline", "budget")),
    Case("undocumented SQL on a non-MQL reverts to lead",
         fit_contact(stage="sql", employees=12, bant=bant(budget="")), [], Stage.LEAD, missing=("budget",)),
    Case("student with a demo request is disqualified", fit_contact(title="Graduate Student, MBA"),
         [demo_request()], Stage.DISQUALIFIED, mql=False, disqualifier="student"),
    Case("pricing page three times in 30 days is MQL", fit_contact(),
         [pricing_view(1, 1), pricing_view(5, 2), pricing_view(20, 3)], Stage.MQL, mql=True,
         intent=("pricing_page_visits",)),
    Case("pricing page twice is not high intent", fit_contact(), [pricing_view(1, 1), pricing_view(2, 2)],
         Stage.LEAD, mql=False, intent=()),
    Case("pricing page three times but spread over months is not high intent", fit_contact(),
         [pricing_view(1, 1), pricing_view(45, 2), pricing_view(80, 3)], Stage.LEAD, mql=False, intent=()),
    Case("trial sign-up is MQL", fit_contact(), [activity("form_submission", 3, "Free trial sign-up")], Stage.MQL,
         mql=True, intent=("trial_signup",)),
    Case("20-person company with a demo request fails fit", fit_contact(employees=20), [demo_request()],
         Stage.LEAD, mql=False),
    Case("non-target industry with a demo request fails fit", fit_contact(industry="Mining"), [demo_request()],
         Stage.LEAD, mql=False),
    Case("non-persona title with a demo request fails fit", fit_contact(title="Software Engineer"),
         [demo_request()], Stage.LEAD, mql=False),
    Case("non-target country with a demo request fails fit", fit_contact(country="BR"), [demo_request()],
         Stage.LEAD, mql=False),
    Case("engagement alone is never MQL", fit_contact(employees=5000),
         [demo_request(), *[pricing_view(1, n) for n in range(6)], activity("webinar", 1)], Stage.LEAD, mql=False),
    Case("gmail with company data is not the personal-email disqualifier",
         fit_contact(email="dana.ruiz@gmail.com"), [demo_request()], Stage.MQL, mql=True),
    Case("valid reason 'budget_unavailable' disqualifies",
         fit_contact(stage="sal", governed_stage="sal", lead_status="unqualified", dq_reason="budget_unavailable"),
         [], Stage.DISQUALIFIED, actions=(ActionKind.DISQUALIFY,)),
    Case("reason given as its label is accepted",
         fit_contact(stage="sal", governed_stage="sal", dq_reason="Budget confirmed unavailable"), [],
         Stage.DISQUALIFIED, actions=(ActionKind.DISQUALIFY,)),
    Case("timeline 12 months or more recycles", fit_contact(stage="mql", governed_stage="mql",
         dq_reason="timeline_12_months"), [demo_request()], Stage.RECYCLED, actions=(ActionKind.RECYCLE,),
         writes={"recycled_at": "2026-11-25T15:00:00Z"}),
    Case("recycled lead within the cool-down stays recycled",
         fit_contact(stage="recycled", governed_stage="recycled", dq_reason="timeline_12_months",
                     recycled_at=(NOW - timedelta(days=30)).isoformat()), [demo_request()], Stage.RECYCLED),
    Case("recycled lead after the cool-down becomes MQL again",
         fit_contact(stage="recycled", governed_stage="recycled", dq_reason="timeline_12_months",
                     recycled_at=(NOW - timedelta(days=120)).isoformat()), [demo_request()], Stage.MQL,
         writes={"dq_reason": ""}),
    Case("blank reason with status unqualified is flagged",
         fit_contact(stage="mql", governed_stage="mql", lead_status="unqualified"), [demo_request()], Stage.MQL,
         actions=(ActionKind.HOLD, ActionKind.FLAG_INVALID_REASON, ActionKind.OPEN_TASK)),
    Case("free-text reason is flagged",
         fit_contact(stage="sal", governed_stage="sal", dq_reason="went with another vendor"), [], Stage.SAL,
         actions=(ActionKind.HOLD, ActionKind.FLAG_INVALID_REASON, ActionKind.OPEN_TASK)),
    Case("MQL accepted by its owner becomes SAL",
         fit_contact(stage="mql", governed_stage="mql", lead_status="in_progress", mql_at="2026-11-24T15:00:00Z"),
         [demo_request(2), activity("call", 0.95, "Intro call", by_owner=True)], Stage.SAL,
         actions=(ActionKind.PROMOTE,),
         writes={"mql_at": "2026-11-24T15:00:00Z", "sal_at": "2026-11-25T15:00:00Z"}),
    Case("an MQL whose score decayed stays MQL (stages only move forward)",
         fit_contact(stage="mql", governed_stage="mql"), [whitepaper(200)], Stage.MQL, mql=False,
         actions=(ActionKind.HOLD,)),
    Case("owner calls do not raise the lead's score", fit_contact(),
         [activity("call", 1, "Discovery", by_owner=True, id=f"call-{n}") for n in range(10)], Stage.LEAD, mql=False),
    Case("invalid reason on an undocumented SQL still reverts",
         fit_contact(stage="sql", governed_stage="mql", dq_reason="not interested", bant={}), [demo_request()],
         Stage.MQL, actions=(ActionKind.REVERT_SQL, ActionKind.OPEN_TASK, ActionKind.FLAG_INVALID_REASON,
                             ActionKind.OPEN_TASK)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_seed_case(case: Case, definitions: LoadedDefinitions) -> None:
    decision = decide(case.contact, case.activities, definitions, NOW)
    assert decision.target_stage is case.stage, decision.explanation
    if case.mql is not None:
        assert decision.mql is case.mql, decision.explanation
    if case.missing is not None:
        assert decision.sql_gate.missing == case.missing, decision.sql_gate
    if case.actions:
        assert tuple(a.kind for a in decision.actions) == case.actions, decision.actions
    if case.intent is not None:
        assert tuple(h.action for h in decision.engagement.high_intent) == case.intent
    if case.disqualifier is not None:
        assert case.disqualifier in {h.name for h in decision.disqualifiers}
    for key, value in case.writes.items():
        assert decision.writes.get(key) == value, decision.writes
    if case.stage.is_sales_owned:
        assert "stage" not in decision.writes and "lead_status" not in decision.writes, \
            "a stage sales owns is never written by marketing rules"
        assert "skipped_gate" not in decision.writes or decision.writes["skipped_gate"] == case.writes.get(
            "skipped_gate"), decision.writes


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_revert_writes_what_is_missing_on_the_record(definitions: LoadedDefinitions) -> None:
    contact = fit_contact(stage="sql", governed_stage="mql", bant=bant(budget="", timeline="next year"))
    decision = decide(contact, [demo_request()], definitions, NOW)
    blocked = decision.writes["sql_blocked_reason"]
    assert "budget: empty" in blocked
    assert "timeline: decision by 2027-12-31 is beyond 90 days" in blocked
    task = next(a for a in decision.actions if a.kind is ActionKind.OPEN_TASK)
    assert "budget" in task.detail and "timeline" in task.detail


def test_invalid_reason_message_lists_the_allowed_codes(definitions: LoadedDefinitions) -> None:
    contact = fit_contact(stage="sal", governed_stage="sal", dq_reason="not interested")
    decision = decide(contact, [], definitions, NOW)
    status = decision.writes["dq_reason_status"]
    assert status.startswith("invalid:")
    for code in ("budget_unavailable", "no_authority", "no_need", "timeline_12_months", "duplicate_or_incorrect"):
        assert code in status


def test_decision_is_stamped_with_version_and_hash(definitions: LoadedDefinitions) -> None:
    decision = decide(fit_contact(), [demo_request()], definitions, NOW)
    assert decision.definitions_version == "2026.11.1"
    assert decision.definitions_hash == definitions.content_hash
    assert decision.writes["definitions_version"] == "2026.11.1"
