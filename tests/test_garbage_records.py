"""The engine judges garbage instead of raising: it says which data is insufficient."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.model import Activity, Contact, Stage
from crmsync.rules import decide
from tests.builders import DEFAULT_DEFINITIONS, NOW, demo_request, fit_contact

DEFS = load_definitions(DEFAULT_DEFINITIONS)
HUGE = "x" * (10 * 1024 * 1024)

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize(
    ("field", "value", "issue"),
    [
        ("employees", "abc", "employee count not a number ('abc')"),
        ("employees", -5, "employee count negative (-5)"),
        ("employees", None, "employee count missing"),
        ("employees", ["200"], "employee count wrong type"),
        ("industry", None, "industry missing"),
        ("title", 12.5, None),
        ("country", {"code": "US"}, "country missing"),
        ("email", None, "email missing or unreadable"),
        ("email", "not-an-email", "email missing or unreadable"),
        ("stage", "banana", "stage 'banana' is not a known stage"),
        ("lead_status", 7, "lead status '7' is not a known lead status"),
    ],
)
def test_bad_field_is_named_in_data_issues(definitions: LoadedDefinitions, field: str, value: Any,
                                           issue: str | None) -> None:
    decision = decide(fit_contact(**{field: value}), [demo_request()], definitions, NOW)
    assert decision.mql is False or field in ("email", "stage", "lead_status")
    if issue is not None:
        assert any(issue in i for i in decision.data_issues), decision.data_issues


def test_unparseable_activity_date_is_ignored_and_reported(definitions: LoadedDefinitions) -> None:
    activities = [Activity("a-1", "form_submission", "last tuesday", "Demo request"),
                  Activity("a-2", "smoke_signal", NOW, "")]
    decision = decide(fit_contact(), activities, definitions, NOW)
    assert decision.engagement.high_intent == ()
    assert "activity a-1: unreadable date 'last tuesday', ignored" in decision.data_issues
    assert "activity a-2: unknown kind 'smoke_signal', ignored" in decision.data_issues


def test_ten_megabyte_strings_are_judged_not_copied(definitions: LoadedDefinitions) -> None:
    contact = fit_contact(title=HUGE, industry=HUGE, company=HUGE, stage="sql",
                          bant={"need": HUGE, "authority": HUGE, "timeline": HUGE, "budget": HUGE})
    decision = decide(contact, [Activity("a", "page_view", NOW, HUGE)], definitions, NOW)
    assert decision.sql_gate.passed is False  # a 10 MB timeline is no date
    assert len(decision.to_json()) < 20_000


def test_epoch_milliseconds_and_iso_dates_are_both_read(definitions: LoadedDefinitions) -> None:
    when = NOW - timedelta(days=1)
    as_ms = Activity("a", "form_submission", int(when.timestamp() * 1000), "Demo request")
    as_iso = Activity("a", "form_submission", when.isoformat().replace("+00:00", "Z"), "Demo request")
    a = decide(fit_contact(), [as_ms], definitions, NOW)
    b = decide(fit_contact(), [as_iso], definitions, NOW)
    assert a.mql and b.mql
    assert a.engagement.score == b.engagement.score


@given(st.fixed_dictionaries({name: anything for name in (
    "email", "company", "title", "industry", "employees", "country", "source", "stage", "governed_stage",
    "lead_status", "previous_lead_status", "dq_reason", "mql_at", "sal_at", "sql_at", "recycled_at",
    "opportunity_at", "customer_at", "skipped_gate", "pipeline_route")}),
    anything, st.lists(st.builds(Activity, anything, anything, anything, anything, st.booleans()), max_size=4))
def test_engine_never_raises_on_record_content(fields: dict[str, Any], bant: Any, activities: list[Activity]) -> None:
    """Any JSON-ish value in any field, BANT and activity slot: a decision, never an exception. The
    default 100 examples (tests/conftest.py) cover every field with each kind of value (None, bools,
    ints, floats, text, bytes, lists, dicts) many times over; nightly's 1,000 reach rarer nestings."""
    contact = Contact("c-x", **fields)
    contact.bant = bant
    decision = decide(contact, activities, DEFS, NOW)
    assert isinstance(decision.target_stage, Stage)
    decision.to_json()
