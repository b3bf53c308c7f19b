"""Reading loosely typed CRM values without ever raising.

CRM data is whatever people and integrations typed. Each reader returns a usable value or
None plus a short reason, so the engine can say *which* data was insufficient instead of failing.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

PREVIEW = 80
"""Longest value quoted in a decision: a 10 MB field is judged, not copied into the audit trail."""


def preview(value: Any) -> str:
    """A short, printable rendering of any value for decisions and explanations."""
    if value is None:
        return ""
    if isinstance(value, str) and len(value) <= PREVIEW and value.isprintable() and "  " not in value:
        return value.strip()
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text[: PREVIEW * 4].split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def text(value: Any) -> str | None:
    """Stripped text, or None for blanks and non-text values."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    return None


def count(value: Any) -> tuple[int | None, str]:
    """An employee count from 120, "120", "1,200", "120.0"; ranges like "51-200" take their midpoint."""
    if isinstance(value, bool):
        return None, f"not a number ({preview(value)})"
    if isinstance(value, int):
        return (value, "") if value >= 0 else (None, f"negative ({value})")
    if isinstance(value, float):
        if math.isfinite(value) and value >= 0:
            return int(value), ""
        return None, f"not a usable number ({preview(value)})"
    raw = text(value)
    if raw is None:
        return None, "missing" if value in (None, "") or isinstance(value, str) else f"wrong type ({preview(value)})"
    if len(raw) > 40:
        return None, f"not a number ({preview(raw)!r})"
    cleaned = raw.replace(",", "").replace("_", "").replace(" ", "").rstrip("+")
    if "-" in cleaned.lstrip("-"):
        low, _, high = cleaned.partition("-")
        a, _ = count(low)
        b, _ = count(high)
        if a is not None and b is not None and a <= b:
            return (a + b) // 2, ""
        return None, f"not a number ({preview(raw)!r})"
    try:
        number = float(cleaned)
    except ValueError:
        return None, f"not a number ({preview(raw)!r})"
    if not math.isfinite(number) or number < 0:
        return None, f"not a usable number ({preview(raw)!r})"
    return int(number), ""


def moment(value: Any) -> datetime | None:
    """A timezone-aware datetime from a datetime, a date, ISO 8601 text or epoch milliseconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 1e14:
            return None
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and 0 < len(value) <= 40:
        return _moment_text(value)
    return None


@lru_cache(maxsize=8192)  # the same stamps come back record after record: crmsync's own `now` above all
def _moment_text(value: str) -> datetime | None:
    """`moment` of a text of at most 40 characters (datetimes are immutable: sharing one is safe)."""
    raw = value.strip()
    if raw.isdigit():
        return moment(int(raw))
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:  # 9999-12-31T23:59:59-01:00 has no UTC time: no date, like any other unreadable text
        parsed.astimezone(UTC)
    except OverflowError:
        return None
    return parsed


def email_domain(value: Any) -> str | None:
    raw = text(value)
    if raw is None or len(raw) > 320 or raw.count("@") != 1:
        return None
    domain = raw.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain if "." in domain and " " not in domain else None
