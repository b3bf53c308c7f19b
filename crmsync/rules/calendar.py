"""The team's business calendar: time zone, working days and hours, holidays.

Pure arithmetic on aware datetimes: how many business seconds lie between two moments, and
which moment lies N business hours after another. A moment outside working time counts from the
next opening (an MQL at Friday 17:30 starts its clock on Monday at 09:00).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

from crmsync.definitions.schema import Calendar

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 3660  # a clock never looks further than ten years ahead


class BusinessCalendar:
    def __init__(self, calendar: Calendar) -> None:
        self.zone = ZoneInfo(calendar.time_zone)
        self.workdays = frozenset(_DAYS.index(d) for d in calendar.working_days)
        self.start, self.end = calendar.start, calendar.end
        self.extra = frozenset(calendar.holidays.extra)
        self.country, self.subdivision = calendar.holidays.country, calendar.holidays.subdivision

    @lru_cache(maxsize=64)  # noqa: B019 - calendars live as long as their definitions
    def _holidays(self, year: int) -> frozenset[date]:
        if self.country is None:
            return frozenset()
        return frozenset(holiday_calendars.country_holidays(self.country, subdiv=self.subdivision, years=[year]))

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.extra and day not in self._holidays(day.year)

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (datetime.combine(day, self.start, self.zone), datetime.combine(day, self.end, self.zone))

    def business_seconds(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b); 0 when b <= a."""
        if b <= a:
            return 0.0
        total = 0.0
        day = a.astimezone(self.zone).date()
        last = b.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            if day > last:
                break
            if self.is_workday(day):
                opens, closes = self._window(day)
                lo, hi = max(opens, a), min(closes, b)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    @lru_cache(maxsize=65536)  # noqa: B019 - clocks of one MQL time are recomputed on every pass
    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `start`."""
        remaining = hours * 3600.0
        day = start.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                opens, closes = self._window(day)
                lo = max(opens, start)
                if lo < closes:
                    available = (closes - lo).total_seconds()
                    if remaining <= available:
                        return lo + timedelta(seconds=remaining)
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError("no working time in the calendar within ten years")
