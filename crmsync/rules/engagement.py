"""Engagement: fit points + decayed behaviour points, and the explicit high-intent actions.

Owner touches (`by_owner`) never score: a rep calling a lead says nothing about the lead's intent.
Each rule's `max_points` caps the sum of its decayed points, so adding an activity can raise the
score or leave it, never lower it.
"""

from __future__ import annotations

import math
from datetime import datetime
from operator import itemgetter

from crmsync.model import Activity, ActivityKind, Contact, Contribution, EngagementResult, FitResult, HighIntentHit
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.values import moment, preview, text

_DETAIL_SCAN = 2000
_KINDS = {k.value: k for k in ActivityKind}
_SECONDS_PER_DAY = 86400.0


def judge_engagement(
    contact: Contact, activities: list[Activity], fit: FitResult, c: Compiled, now: datetime, issues: list[str]
) -> EngagementResult:
    engagement = c.loaded.definitions.engagement
    contributions: list[Contribution] = []
    score = 0.0
    fit_points = engagement.fit_points
    for criterion in fit.criteria:
        points = getattr(fit_points, criterion.name)
        if criterion.passed and points:
            contributions.append(Contribution(f"fit:{criterion.name}", criterion.value, points, points))
            score += points
    for prop, values, pattern in c.property_rules:
        raw = text(getattr(contact, prop.field))
        if raw is not None and (norm(raw[:200]) in values or (pattern is not None and pattern.search(raw[:200]))):
            contributions.append(Contribution(f"property:{prop.name}", preview(raw), prop.points, prop.points))
            score += prop.points

    decay = -math.log(2) / engagement.half_life_days  # points * 0.5 ** (age / half-life) = points * exp(age * decay)
    exp = math.exp
    matches = c.matches
    used: dict[str, float] = {}
    intent: dict[str, list[str]] = {}
    for neg_age, activity_id, kind, detail in _usable(activities, now, issues):
        age = -neg_age
        rule, actions = matches.get((kind, detail)) or c.classify(kind, detail)
        for action in actions:
            if age <= action.within_days:
                intent.setdefault(action.name, []).append(activity_id)
        if rule is None:
            continue
        decayed = rule.points * exp(age * decay)
        name = rule.name
        earlier = used.get(name, 0.0)
        if rule.max_points is not None:
            decayed = min(decayed, rule.max_points - earlier)
        if decayed > 0:
            used[name] = earlier + decayed
            score += decayed
            contributions.append(Contribution(name, activity_id, rule.points, round(decayed, 4), age))

    hits = tuple(
        HighIntentHit(a.name, len(intent[a.name]), tuple(intent[a.name]))
        for a in engagement.high_intent
        if len(intent.get(a.name, ())) >= a.min_count
    )
    score = round(score, 2)
    return EngagementResult(score, engagement.threshold, score >= engagement.threshold or bool(hits),
                            tuple(contributions), hits)


def _usable(activities: list[Activity], now: datetime, issues: list[str]) -> list[tuple[float, str, ActivityKind, str]]:
    """(minus the age in days, id, kind, detail) of lead-side activities with a known kind and a
    readable date, oldest first then by id, so caps are attributed the same way whatever the input
    order. The age is negated so that the sort key is the first two items as they are."""
    now_ts = now.timestamp()
    out: list[tuple[float, str, ActivityKind, str]] = []
    for activity in activities:
        if activity.by_owner is True:
            continue
        kind = _KINDS.get(activity.kind) if isinstance(activity.kind, str) else None
        if kind is None:
            issues.append(f"activity {preview(activity.id)}: unknown kind {preview(activity.kind)!r}, ignored")
            continue
        when = activity.occurred_at
        if type(when) is not datetime or when.tzinfo is None:  # most connectors hand over aware datetimes
            when = moment(when)
            if when is None:
                shown = preview(activity.occurred_at)
                issues.append(f"activity {preview(activity.id)}: unreadable date {shown!r}, ignored")
                continue
        detail = activity.detail[:_DETAIL_SCAN] if isinstance(activity.detail, str) else ""
        age = (now_ts - when.timestamp()) / _SECONDS_PER_DAY
        activity_id = activity.id if type(activity.id) is str and len(activity.id) <= 80 else preview(activity.id)
        out.append((-age if age > 0.0 else -0.0, activity_id, kind, detail))
    out.sort(key=_OLDEST_FIRST)
    return out


_OLDEST_FIRST = itemgetter(0, 1)
