"""Engagement: fit points + decayed behaviour points, and the explicit high-intent actions.

Owner touches (`by_owner`) never score: a rep calling a lead says nothing about the lead's intent.
Each rule's `max_points` caps the sum of its decayed points, so adding an activity can raise the
score or leave it, never lower it.
"""

from __future__ import annotations

from datetime import datetime

from crmsync.model import Activity, ActivityKind, Contact, Contribution, EngagementResult, FitResult, HighIntentHit
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.values import moment, preview, text

_DETAIL_SCAN = 2000
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

    half_life = engagement.half_life_days
    used: dict[str, float] = {}
    intent: dict[str, list[str]] = {}
    for activity, kind, when in _usable(activities, issues):
        detail = activity.detail if isinstance(activity.detail, str) else ""
        detail = detail[:_DETAIL_SCAN]
        age = max(0.0, (now - when).total_seconds() / _SECONDS_PER_DAY)
        for action_pattern, action in c.high_intent.get(kind, ()):
            if age <= action.within_days and action_pattern.search(detail):
                intent.setdefault(action.name, []).append(str(activity.id))
        for rule_pattern, rule in c.activity_rules.get(kind, ()):
            if rule_pattern is None or rule_pattern.search(detail):
                decayed = rule.points * 0.5 ** (age / half_life)
                if rule.max_points is not None:
                    decayed = min(decayed, rule.max_points - used.get(rule.name, 0.0))
                if decayed > 0:
                    used[rule.name] = used.get(rule.name, 0.0) + decayed
                    score += decayed
                    contributions.append(
                        Contribution(rule.name, str(activity.id), rule.points, round(decayed, 4), round(age, 4))
                    )
                break

    hits = tuple(
        HighIntentHit(a.name, len(intent[a.name]), tuple(intent[a.name]))
        for a in engagement.high_intent
        if len(intent.get(a.name, ())) >= a.min_count
    )
    score = round(score, 2)
    return EngagementResult(score, engagement.threshold, score >= engagement.threshold or bool(hits),
                            tuple(contributions), hits)


def _usable(activities: list[Activity], issues: list[str]) -> list[tuple[Activity, ActivityKind, datetime]]:
    """Lead-side activities with a known kind and a readable date, oldest first (stable attribution)."""
    out: list[tuple[Activity, ActivityKind, datetime]] = []
    for activity in activities:
        if activity.by_owner is True:
            continue
        try:
            kind = ActivityKind(activity.kind)
        except (ValueError, TypeError):
            issues.append(f"activity {preview(activity.id)}: unknown kind {preview(activity.kind)!r}, ignored")
            continue
        when = moment(activity.occurred_at)
        if when is None:
            shown = preview(activity.occurred_at)
            issues.append(f"activity {preview(activity.id)}: unreadable date {shown!r}, ignored")
            continue
        out.append((activity, kind, when))
    out.sort(key=lambda item: (item[2], str(item[0].id)))
    return out
