"""Reading a rep's BANT timeline ("by 2027-01-15", "within 6 weeks", "Q1 2027") as a decision date.

The SQL gate needs a real date or horizon inside the window; "next year", "asap" or "soon" are
not documentation. Horizons count from the reference date (when the SQL was confirmed, or now).
Ranges ("6-8 weeks") take their far end: the gate judges the latest the decision may come.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from functools import lru_cache

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)

_ISO = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_US = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_EU = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+(\d{{4}})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\.?\s+(\d{{4}})\b")
_MONTH_ALONE = re.compile(rf"\b(?:in|by|end of|before|mid|early|late)[-\s]+{_MONTH}\b")
_QUARTER = re.compile(r"\b(?:q([1-4])[\s-]*(?:fy)?(\d{4})?|(\d{4})[\s-]*q([1-4]))\b")
_HORIZON = re.compile(
    r"\b(?:(\d{1,3})\s*(?:-|to)\s*)?(\d{1,3}|a|an|one|two|three|four|five|six|eight|ten|twelve)\s*"
    r"(day|week|wk|month|mo|quarter|year|yr)s?\b"
)
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8,
          "ten": 10, "twelve": 12}
_RELATIVE = (
    (re.compile(r"\b(this |end of (the )?)week\b"), lambda d: d + timedelta(days=6 - d.weekday())),
    (re.compile(r"\bnext week\b"), lambda d: d + timedelta(days=13 - d.weekday())),
    (re.compile(r"\b(this |end of (the )?)month\b|\beom\b"), lambda d: _month_end(d.year, d.month)),
    (re.compile(r"\bnext month\b"), lambda d: _month_end(*_add_months(d.year, d.month, 1))),
    (re.compile(r"\b(this |end of (the )?|current )quarter\b|\beoq\b"),
     lambda d: _quarter_end(d.year, (d.month - 1) // 3 + 1)),
    (re.compile(r"\bnext quarter\b"), lambda d: _quarter_end(*_next_quarter(d))),
    (re.compile(r"\b(this |end of (the )?)year\b|\beoy\b"), lambda d: date(d.year, 12, 31)),
    (re.compile(r"\bnext (fiscal )?year\b"), lambda d: date(d.year + 1, 12, 31)),
)
# Prefilters, so that most texts run five regexes instead of eighteen (the SQL gate reads a
# timeline on every record sales works): a full date or a month with its year has four digits in
# a row, a quarter a "q" and a digit; one alternation of the relative phrases says whether trying them
# one by one (the first in this order wins) can find any.
_YEAR = re.compile(r"\d{4}")
_DIGIT = re.compile(r"\d")
_ANY_RELATIVE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in _RELATIVE))


@lru_cache(maxsize=4096)  # reps write the same horizons ("Q1 2027", "within 6 weeks"), judged against one date a pass
def decision_date(raw: str, reference: date) -> date | None:
    """The latest date the text allows for the decision, or None when it names no date or horizon."""
    text = raw.lower()
    for found in _explicit_dates(text, reference):
        return found
    if _ANY_RELATIVE.search(text):
        for pattern, resolve in _RELATIVE:
            if pattern.search(text):
                return resolve(reference)
    match = _HORIZON.search(text)
    if match:
        word = match.group(2)
        amount = int(word) if word.isdigit() else _WORDS[word]
        return _add_span(reference, amount, match.group(3))
    return None


def _explicit_dates(text: str, reference: date) -> list[date]:
    out: list[date] = []
    if _YEAR.search(text):
        for m in _ISO.finditer(text):
            out += _safe(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        for m in _US.finditer(text):
            out += _safe(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        for m in _EU.finditer(text):
            out += _safe(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        for m in _MONTH_DAY_YEAR.finditer(text):
            out += _safe(int(m.group(3)), _MONTHS[m.group(1)[:3]], int(m.group(2)))
        for m in _DAY_MONTH_YEAR.finditer(text):
            out += _safe(int(m.group(3)), _MONTHS[m.group(2)[:3]], int(m.group(1)))
        if not out:
            for m in _MONTH_YEAR.finditer(text):
                out.append(_month_end(int(m.group(2)), _MONTHS[m.group(1)[:3]]))
    if not out and "q" in text and _DIGIT.search(text):
        for m in _QUARTER.finditer(text):
            quarter = int(m.group(1) or m.group(4))
            year_text = m.group(2) or m.group(3)
            year = int(year_text) if year_text else _next_year_for_quarter(reference, quarter)
            out.append(_quarter_end(year, quarter))
    if not out:
        for m in _MONTH_ALONE.finditer(text):
            month = _MONTHS[m.group(1)[:3]]
            year = reference.year if month >= reference.month else reference.year + 1
            out.append(_month_end(year, month))
    return sorted(out)[-1:]


def _safe(year: int, month: int, day: int) -> list[date]:
    try:
        return [date(year, month, day)]
    except ValueError:
        return []


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _quarter_end(year: int, quarter: int) -> date:
    return _month_end(year, quarter * 3)


def _next_quarter(d: date) -> tuple[int, int]:
    quarter = (d.month - 1) // 3 + 1
    return (d.year, quarter + 1) if quarter < 4 else (d.year + 1, 1)


def _next_year_for_quarter(reference: date, quarter: int) -> int:
    current = (reference.month - 1) // 3 + 1
    return reference.year if quarter >= current else reference.year + 1


def _add_span(reference: date, amount: int, unit: str) -> date | None:
    if amount <= 0:
        return None
    if unit in ("day",):
        return reference + timedelta(days=amount)
    if unit in ("week", "wk"):
        return reference + timedelta(weeks=amount)
    months = {"month": 1, "mo": 1, "quarter": 3, "year": 12, "yr": 12}[unit] * amount
    year, month = _add_months(reference.year, reference.month, months)
    return date(year, month, min(reference.day, calendar.monthrange(year, month)[1]))
