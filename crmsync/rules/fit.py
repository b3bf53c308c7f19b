"""The fit minimum: firmographic criteria, each judged on its own with the reason."""

from __future__ import annotations

from crmsync.model import Contact, CriterionResult, FitResult
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.values import count, preview, text

_TITLE_SCAN = 1000
"""Only the start of a title is matched: a persona is in the first words, not in a 10 MB paste."""


def judge_fit(contact: Contact, c: Compiled) -> FitResult:
    fit = c.loaded.definitions.fit
    criteria = (
        _employees(contact, fit.employees.min, fit.employees.max),
        _listed("industry", contact.industry, c.industries, "a target vertical"),
        _title(contact, c),
        _listed("country", contact.country, c.countries, "a target market"),
    )
    passed = sum(1 for r in criteria if r.passed)
    return FitResult(passed >= fit.min_criteria_passed, passed, fit.min_criteria_passed, criteria)


def _employees(contact: Contact, low: int, high: int) -> CriterionResult:
    number, problem = count(contact.employees)
    shown = preview(contact.employees)
    if number is None:
        return CriterionResult("employees", False, shown, f"employee count {problem}", insufficient=True)
    if low <= number <= high:
        return CriterionResult("employees", True, shown, f"{number} employees is within {low}-{high}")
    return CriterionResult("employees", False, shown, f"{number} employees is outside {low}-{high}")


def _listed(name: str, value: object, allowed: frozenset[str], what: str) -> CriterionResult:
    raw = text(value)
    if raw is None:
        return CriterionResult(name, False, preview(value), f"{name} missing", insufficient=True)
    shown = preview(raw)
    if norm(raw[:200]) in allowed:
        return CriterionResult(name, True, shown, f"{name} is {what}")
    return CriterionResult(name, False, shown, f"{name} {shown!r} is not {what}")


def _title(contact: Contact, c: Compiled) -> CriterionResult:
    raw = text(contact.title)
    if raw is None:
        return CriterionResult("title", False, preview(contact.title), "job title missing", insufficient=True)
    match = c.title_match(raw[:_TITLE_SCAN])
    if match:
        return CriterionResult("title", True, preview(raw), f"title matches buyer persona ({match!r})")
    return CriterionResult("title", False, preview(raw), "title matches no buyer persona")
