"""The handoff clocks, computed from the record's own timestamps and activities (so they are
right after downtime or a restart): accept the MQL, make a first contact attempt, run discovery.

- accept: from MQL to SAL, `accept_within_business_hours` (4 business hours by default);
- first_contact: from MQL to the owner's first call or email, 24 hours, or 4 after a direct
  inquiry (a high-intent action marked `direct_inquiry`, e.g. a demo request);
- discovery: from SAL to a call or meeting whose title matches `discovery_pattern`, 48 hours.

A clock is at risk once `at_risk_fraction` of its time is used, breached when it is due and not
met; met late counts as `met_late`. Clocks listed in `business_hours_for` count working time on
the team's calendar; the others count every hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from crmsync.model import Activity, EngagementResult, SlaClock, SlaState, Stage
from crmsync.rules.compiled import Compiled
from crmsync.rules.values import moment

_CLOCKED = (Stage.MQL, Stage.SAL, Stage.SQL)


def judge_slas(target: Stage, writes: dict[str, str], activities: list[Activity], engagement: EngagementResult,
               c: Compiled, now: datetime) -> tuple[SlaClock, ...]:
    if target not in _CLOCKED:
        return ()
    sla = c.loaded.definitions.sla
    mql_at, sal_at = moment(writes.get("mql_at")), moment(writes.get("sal_at"))
    if mql_at is None:
        return ()
    inquired = any(hit.action in c.direct_inquiries for hit in engagement.high_intent)
    owner_touches = _owner_touches(activities)
    clocks = [
        _clock(c, "accept", mql_at, sla.accept_within_business_hours, sal_at or moment(writes.get("sql_at")), now),
        _clock(c, "first_contact", mql_at,
               sla.first_contact_direct_inquiry_hours if inquired else sla.first_contact_within_hours,
               next((t for t, kind, _ in owner_touches if t >= mql_at and kind in ("call", "email")), None), now),
    ]
    if sal_at is not None:
        # a discovery call logged before crmsync saw the acceptance still counts (after the MQL)
        discovery = next((t for t, kind, detail in owner_touches if t >= mql_at and kind in ("call", "meeting")
                          and c.discovery.search(detail)), None)
        clocks.append(_clock(c, "discovery", sal_at, sla.discovery_within_hours, discovery, now))
    return tuple(clocks)


ALERTING = (SlaState.BREACHED, SlaState.AT_RISK)
"""The states an owner is tasked about, worst first."""
_OPEN = (SlaState.ON_TRACK, SlaState.AT_RISK)
# module-level names: an enum member looked up on its class costs more than the comparison itself
_MET, _MET_LATE, _BREACHED, _AT_RISK, _ON_TRACK = (SlaState.MET, SlaState.MET_LATE, SlaState.BREACHED,
                                                   SlaState.AT_RISK, SlaState.ON_TRACK)


def summary(clocks: tuple[SlaClock, ...]) -> str:
    """The record's `sla_state` (plain text): the worst open clock and which SLAs, or `met` once all are met."""
    states = [c.state for c in clocks]
    for state in ALERTING:
        if state in states:
            return f"{state}: {', '.join(c.name for c in clocks if c.state == state)}"
    if _ON_TRACK in states:
        return str(_ON_TRACK)
    return str(_MET) if clocks else ""


def next_change(clocks: tuple[SlaClock, ...], now: datetime) -> datetime | None:
    """When an open clock next changes state by the passing of time (for the SLA sweep)."""
    moments = [moment(t) for c in clocks if c.state in _OPEN for t in (c.at_risk_at, c.due_at)]
    future = [m for m in moments if m is not None and m > now]
    return min(future) if future else None


def _clock(c: Compiled, name: str, start: datetime, hours: float, met: datetime | None, now: datetime) -> SlaClock:
    sla = c.loaded.definitions.sla
    business = name in sla.business_hours_for
    if business:
        calendar = c.calendar
        due, at_risk = (calendar.add_business_hours(start, hours),
                        calendar.add_business_hours(start, hours * sla.at_risk_fraction))
    else:
        due, at_risk = start + timedelta(hours=hours), start + timedelta(hours=hours * sla.at_risk_fraction)
    if met is not None:
        state = _MET if met <= due else _MET_LATE
    elif now >= due:
        state = _BREACHED
    elif now >= at_risk:
        state = _AT_RISK
    else:
        state = _ON_TRACK
    return SlaClock(name, _stamp(start), _stamp(at_risk), _stamp(due), _stamp(met) if met else None, state, business)


def _owner_touches(activities: list[Activity]) -> list[tuple[datetime, str, str]]:
    touches = []
    for a in activities:
        if a.by_owner is True and a.kind in ("call", "email", "meeting"):
            when = moment(a.occurred_at)
            if when is not None:
                touches.append((when, str(a.kind), a.detail if isinstance(a.detail, str) else ""))
    touches.sort(key=lambda t: t[0])
    return touches


@lru_cache(maxsize=65536)  # clocks of many records start and end at the same moments
def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

