"""Definitions patterns run on text anyone can type into the CRM: linear time, or refused at validate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.definitions import parse_definitions
from crmsync.definitions.patterns import compile_pattern
from crmsync.errors import DefinitionsError
from crmsync.model import ActivityKind
from crmsync.rules import decide
from tests.builders import DEFAULT_DEFINITIONS, NOW, activity, fit_contact
from tests.test_cli import run_within

TEXT = DEFAULT_DEFINITIONS.read_text()
TITLE_PATTERNS = "patterns: ['\\bsvp\\b',"


def with_title_pattern(pattern: str) -> str:
    assert TITLE_PATTERNS in TEXT
    return TEXT.replace(TITLE_PATTERNS, f"patterns: ['{pattern}',")


def test_validate_refuses_a_nested_quantifier_with_the_reason(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(with_title_pattern("(a+)+$"))
    result = run_within(30, "definitions", "validate", str(candidate))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fit.titles.patterns.0: nested quantifier" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("pattern, reason", [
    ("(a)\\1", "invalid escape sequence: \\1"),  # a backreference
    ("foo(?=bar)", "invalid perl operator: (?="),  # lookahead
    ("(?<!x)y", "invalid perl operator: (?<"),  # lookbehind
    ("([unclosed", "missing ]"),
    ("x" * 501, "more than 500"),
])
def test_what_re2_cannot_run_is_refused_with_its_reason(pattern: str, reason: str) -> None:
    with pytest.raises(DefinitionsError) as caught:
        parse_definitions(with_title_pattern(pattern), "candidate.yaml")
    assert any(p.startswith("line ") and "fit.titles.patterns.0" in p and reason in p for p in caught.value.problems)


def test_an_exponential_pattern_for_backtracking_engines_is_linear_here() -> None:
    """`^(a|a)*$` has no nested quantifier, so validate accepts it; Python's re would need 2^n steps
    on a title of n a's and a '!'. RE2 decides a 1,000-character title (the scan limit) at once."""
    loaded = parse_definitions(with_title_pattern("^(a|a)*$"), "candidate.yaml")
    hostile = "a" * 999 + "!"
    started = time.perf_counter()
    for _ in range(20):
        fit = decide(fit_contact(title=hostile), [activity(ActivityKind.PAGE_VIEW, 1, hostile * 50)],
                     loaded, NOW).fit
    assert time.perf_counter() - started < 5  # exponential would not end; linear takes milliseconds
    assert not title_passed(fit)
    assert title_passed(decide(fit_contact(title="a" * 30), [], loaded, NOW).fit)


def title_passed(fit: Any) -> bool:
    return bool(next(c for c in fit.criteria if c.name == "title").passed)


@given(st.text(max_size=200))
def test_odd_text_never_raises(text: str) -> None:
    """Lone surrogates, NULs, any script: the pattern answers, like Python's re would."""
    found = compile_pattern("demo[-_ ]?request|b.nt").search(text)
    assert found is None or found.group(0)
    if "demo request" in text.casefold():
        assert found is not None
