"""Reading BANT timelines: real dates and horizons count, vague words don't."""

from __future__ import annotations

from datetime import date

import pytest

from crmsync.rules.timeline import decision_date

REF = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-15", date(2027, 1, 15)),
        ("Board signs off by 1/20/2027", date(2027, 1, 20)),
        ("15.01.2027", date(2027, 1, 15)),
        ("Jan 15, 2027", date(2027, 1, 15)),
        ("15th January 2027", date(2027, 1, 15)),
        ("January 2027", date(2027, 1, 31)),
        ("Q1 2027", date(2027, 3, 31)),
        ("2027-Q1", date(2027, 3, 31)),
        ("q1", date(2027, 3, 31)),
        ("within 6 weeks", date(2027, 1, 6)),
        ("6-8 weeks", date(2027, 1, 20)),
        ("in 30 days", date(2026, 12, 25)),
        ("in two months", date(2027, 1, 25)),
        ("this month", date(2026, 11, 30)),
        ("next month", date(2026, 12, 31)),
        ("end of quarter", date(2026, 12, 31)),
        ("next quarter", date(2027, 3, 31)),
        ("by end of Feb", date(2027, 2, 28)),
        ("next year", date(2027, 12, 31)),
        ("this year", date(2026, 12, 31)),
        ("asap", None),
        ("soon", None),
        ("when budget frees up", None),
        ("2027-02-30", None),
        ("", None),
    ],
)
def test_decision_date(text: str, expected: date | None) -> None:
    assert decision_date(text, REF) == expected
