"""Loading, validating, hashing and diffing the governed definitions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from crmsync.definitions import DEFAULT_DEFINITIONS as SHIPPED
from crmsync.definitions import default_definitions, load_definitions, parse_definitions
from crmsync.definitions.diff import diff_definitions
from crmsync.errors import DefinitionsError
from crmsync.model import Stage
from tests.builders import DEFAULT_DEFINITIONS

TEXT = DEFAULT_DEFINITIONS.read_text()


def problems_for(text: str) -> list[str]:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(text, "candidate.yaml")
    return caught.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_file_carries_the_seeds_contract() -> None:
    d = load_definitions(DEFAULT_DEFINITIONS).definitions
    assert (d.fit.employees.min, d.fit.employees.max) == (50, 500)
    assert d.engagement.threshold == 50
    assert {a.name for a in d.engagement.high_intent} == {"demo_request", "pricing_page_visits", "trial_signup"}
    assert next(a for a in d.engagement.high_intent if a.name == "pricing_page_visits").min_count == 3
    assert d.sql_requirements.timeline.max_days == 90
    assert {"n/a", "tbd", "-", "?"} <= set(d.sql_requirements.placeholders)
    assert d.sla.accept_within_business_hours == 4 and d.sla.discovery_within_hours == 48
    assert (d.sla.first_contact_within_hours, d.sla.first_contact_direct_inquiry_hours) == (24, 4)
    assert [c.code for c in d.reason_codes.codes] == [
        "budget_unavailable", "no_authority", "no_need", "timeline_12_months", "duplicate_or_incorrect"]
    assert "not interested" in d.reason_codes.not_accepted
    assert d.mappings.hubspot.stages.sql == "salesqualifiedlead"
    assert d.mappings.salesforce.lead_statuses.qualified == "Qualified"
    whitepaper = next(r for r in d.engagement.activity_points if r.name == "whitepaper_download")
    demo = next(r for r in d.engagement.activity_points if r.name == "demo_request")
    assert whitepaper.points < demo.points


def test_the_shipped_default_is_loaded_once_and_cannot_be_changed() -> None:
    """The sandboxes install crmsync's fields from the shipped default for every portal and org: parsed
    once per process, and shared safely because validated definitions are frozen."""
    loaded = default_definitions()
    assert default_definitions() is loaded
    assert loaded.content_hash == load_definitions(SHIPPED).content_hash and loaded.path == str(SHIPPED)
    with pytest.raises(ValidationError):
        loaded.definitions.engagement.threshold = 1


def test_unknown_key_gets_line_and_did_you_mean() -> None:
    text = TEXT.replace("  half_life_days: 30", "  half_life_dayz: 30")
    problems = problems_for(text)
    line = line_of(text, "half_life_dayz")
    assert f"line {line}: engagement.half_life_dayz: unknown key; did you mean 'half_life_days'?" in problems


def test_unknown_key_inside_a_list_item_is_found() -> None:
    text = TEXT.replace("{name: blog_view, kind: page_view,", "{name: blog_view, knd: page_view,")
    problems = problems_for(text)
    assert any("engagement.activity_points.6.knd: unknown key; did you mean 'kind'?" in p for p in problems), problems


def test_min_greater_than_max_is_a_contradiction() -> None:
    text = TEXT.replace("employees: {min: 50, max: 500}", "employees: {min: 600, max: 500}")
    line = line_of(text, "min: 600")
    assert f"line {line}: fit.employees: min (600) is greater than max (500)" in problems_for(text)


def test_threshold_out_of_range() -> None:
    problems = problems_for(TEXT.replace("  threshold: 50", "  threshold: -5"))
    assert any(p.endswith("engagement.threshold: Input should be greater than 0 (got -5)") for p in problems)


def test_mapping_to_a_stage_that_does_not_exist() -> None:
    text = TEXT.replace("outcome: recycled}", "outcome: nurture_forever}")
    problems = problems_for(text)
    assert any("reason_codes.codes.3.outcome" in p and "nurture_forever" in p for p in problems), problems


def test_reason_code_outcome_must_be_a_side_exit() -> None:
    problems = problems_for(TEXT.replace("outcome: recycled}", "outcome: mql}"))
    assert any("outcome must be 'disqualified' or 'recycled', not 'mql'" in p for p in problems)


def test_not_interested_cannot_be_an_accepted_code() -> None:
    text = TEXT.replace('label: "No genuine need"', 'label: "Not interested"')
    assert any("is both an accepted code and in not_accepted" in p for p in problems_for(text))


def test_accepted_status_without_a_crm_value_is_refused() -> None:
    text = TEXT.replace("accepted_lead_statuses: [in_progress, connected]", "accepted_lead_statuses: [qualified]")
    assert any("mappings.hubspot.lead_statuses leaves without a CRM value" in p for p in problems_for(text))


def test_bad_regex_names_the_pattern() -> None:
    text = TEXT.replace("patterns: ['\\bsvp\\b',", "patterns: ['([unclosed',")
    assert any("fit.titles.patterns" in p and "not a valid regular expression" in p for p in problems_for(text))


def test_changelog_needs_an_entry_for_the_version() -> None:
    text = TEXT.replace('  version: "2026.11.1"\n  owner', '  version: "2026.12.0"\n  owner')
    assert any("changelog has no entry for version '2026.12.0'" in p for p in problems_for(text))


def test_missing_governance_header_is_named() -> None:
    data = yaml.safe_load(TEXT)
    del data["governance"]["approved_by"]
    assert any("governance.approved_by: required key is missing" in p for p in problems_for(yaml.safe_dump(data)))


def test_invalid_yaml_reports_the_line() -> None:
    problems = problems_for("governance:\n  version: [unclosed\n")
    assert len(problems) == 1 and re.match(r"line \d+: not valid YAML", problems[0])


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError) as caught:
        load_definitions(tmp_path / "nope.yaml")
    assert "file not found" in caught.value.problems[0]


def test_every_problem_is_reported_at_once() -> None:
    text = TEXT.replace("  threshold: 50", "  threshold: 0").replace("cooldown_days: 90", "cooldown_days: -1")
    assert len(problems_for(text)) == 2


def test_hash_ignores_comments_and_layout_but_not_meaning() -> None:
    original = parse_definitions(TEXT)
    reformatted = parse_definitions("# a comment\n" + yaml.safe_dump(yaml.safe_load(TEXT), sort_keys=True))
    changed = parse_definitions(TEXT.replace("  threshold: 50", "  threshold: 55"))
    assert reformatted.content_hash == original.content_hash
    assert changed.content_hash != original.content_hash


def test_diff_reports_thresholds_weights_criteria_and_mappings() -> None:
    old = parse_definitions(TEXT).definitions
    new_text = (TEXT.replace("  threshold: 50", "  threshold: 60")
                .replace("detail_pattern: '/pricing', points: 5,", "detail_pattern: '/pricing', points: 7,")
                .replace("    - logistics\n", "    - biotech\n")
                .replace("      disqualified: other", "      disqualified: unqualified_lead"))
    new = parse_definitions(new_text).definitions
    changes = {(c.path, c.change, str(c.old), str(c.new)) for c in diff_definitions(old, new)}
    assert changes == {
        ("engagement.threshold", "changed", "50.0", "60.0"),
        ("engagement.activity_points[pricing_page_view].points", "changed", "5.0", "7.0"),
        ("fit.industries", "removed", "logistics", "None"),
        ("fit.industries", "added", "None", "biotech"),
        ("mappings.hubspot.stages.disqualified", "changed", "other", "unqualified_lead"),
    }


def test_reordering_named_rules_is_not_a_change() -> None:
    data = yaml.safe_load(TEXT)
    data["engagement"]["high_intent"].reverse()
    old, new = parse_definitions(TEXT).definitions, parse_definitions(yaml.safe_dump(data)).definitions
    assert diff_definitions(old, new) == []


def test_every_stage_has_a_crm_value() -> None:
    mappings = load_definitions(DEFAULT_DEFINITIONS).definitions.mappings
    for crm in (mappings.hubspot, mappings.salesforce):
        assert all(getattr(crm.stages, s.value) for s in Stage)


def test_unknown_holiday_calendar_is_refused() -> None:
    problems = problems_for(TEXT.replace("holidays: {country: US}", "holidays: {country: XX}"))
    assert any("calendar.holidays" in p and "no calendar for 'XX'" in p for p in problems), problems


def test_unknown_time_zone_is_refused() -> None:
    problems = problems_for(TEXT.replace("time_zone: America/New_York", "time_zone: Mars/Olympus"))
    assert any("unknown time zone 'Mars/Olympus'" in p for p in problems), problems
