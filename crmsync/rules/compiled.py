"""Definitions turned into ready-to-match structures, once per definitions content.

The engine runs tens of thousands of times a second: regexes are compiled and lists turned into
sets here, not on every record. Patterns written in the definitions run with RE2 (linear time, see
`crmsync.definitions.patterns`); keyword lists become Python regexes of escaped literals between
word boundaries (no repeats, so linear too), which keeps Unicode word boundaries RE2 lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crmsync.definitions import LoadedDefinitions
from crmsync.definitions.patterns import Pattern, compile_pattern
from crmsync.definitions.schema import ActivityRule, HighIntentAction, PropertyRule, ReasonCode
from crmsync.model import ActivityKind
from crmsync.rules.calendar import BusinessCalendar


def norm(value: str) -> str:
    """Case- and whitespace-insensitive form used for every list lookup."""
    return " ".join(value.casefold().split())


@dataclass(frozen=True, slots=True)
class Compiled:
    loaded: LoadedDefinitions
    industries: frozenset[str]
    countries: frozenset[str]
    title_keywords: re.Pattern[str] | None
    title_patterns: Pattern | None
    activity_rules: dict[ActivityKind, tuple[tuple[Pattern | None, ActivityRule], ...]]
    property_rules: tuple[tuple[PropertyRule, frozenset[str], Pattern | None], ...]
    high_intent: dict[ActivityKind, tuple[tuple[Pattern, HighIntentAction], ...]]
    direct_inquiries: frozenset[str]
    """Names of the high-intent actions that shorten the first-contact SLA."""
    personal_domains: frozenset[str]
    competitor_domains: frozenset[str]
    competitor_subdomains: tuple[str, ...]
    """".rivalcrm.io" for rivalcrm.io: `str.endswith` takes them all at once."""
    student_title: re.Pattern[str] | None
    student_suffixes: tuple[str, ...]
    placeholders: frozenset[str]
    reason_lookup: dict[str, ReasonCode]
    not_accepted: frozenset[str]
    discovery: Pattern
    calendar: BusinessCalendar
    matches: dict[tuple[ActivityKind, str], tuple[ActivityRule | None, tuple[HighIntentAction, ...]]]

    def title_match(self, title: str) -> str | None:
        """The text of the title that makes it a buyer persona (a keyword first, then a pattern)."""
        for pattern in (self.title_keywords, self.title_patterns):
            match = pattern.search(title) if pattern is not None else None
            if match:
                return match.group(0)
        return None

    def classify(self, kind: ActivityKind, detail: str) -> tuple[ActivityRule | None, tuple[HighIntentAction, ...]]:
        """The scoring rule and the high-intent actions an activity matches, memoised.

        Activity details repeat (the same pages, the same forms), so the regexes run once per
        distinct (kind, detail) rather than once per activity. The memo is bounded.
        """
        key = (kind, detail)
        found = self.matches.get(key)
        if found is None:
            rule = next((r for p, r in self.activity_rules.get(kind, ()) if p is None or p.search(detail)), None)
            intent = tuple(a for p, a in self.high_intent.get(kind, ()) if p.search(detail))
            if len(self.matches) >= _MEMO_LIMIT:
                self.matches.clear()
            found = self.matches[key] = (rule, intent)
        return found


_CACHE: dict[str, Compiled] = {}
_MEMO_LIMIT = 50_000


def compiled(loaded: LoadedDefinitions) -> Compiled:
    """Same content, same compiled form: the cache is keyed by the content hash."""
    found = _CACHE.get(loaded.content_hash)
    if found is None:
        found = _CACHE[loaded.content_hash] = _compile(loaded)
    return found


def _words(words: list[str]) -> str:
    return "|".join(r"\b" + re.escape(w.casefold()) + r"\b" for w in words)


def _any_of(patterns: list[str]) -> Pattern | None:
    return compile_pattern("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _compile(loaded: LoadedDefinitions) -> Compiled:
    d = loaded.definitions
    flags = re.IGNORECASE
    keywords = d.fit.titles.keywords
    activity: dict[ActivityKind, list[tuple[Pattern | None, ActivityRule]]] = {}
    for rule in d.engagement.activity_points:
        pattern = compile_pattern(rule.detail_pattern) if rule.detail_pattern else None
        activity.setdefault(rule.kind, []).append((pattern, rule))
    intent: dict[ActivityKind, list[tuple[Pattern, HighIntentAction]]] = {}
    for action in d.engagement.high_intent:
        intent.setdefault(action.kind, []).append((compile_pattern(action.detail_pattern), action))
    reasons: dict[str, ReasonCode] = {}
    for code in d.reason_codes.codes:
        reasons[norm(code.code)] = code
        reasons[norm(code.code.replace("_", " "))] = code
        reasons[norm(code.label)] = code
    student = d.disqualifiers.student_title_keywords
    return Compiled(
        loaded=loaded,
        industries=frozenset(norm(i) for i in d.fit.industries),
        countries=frozenset(norm(c) for c in d.fit.countries),
        title_keywords=re.compile(_words(keywords), flags) if keywords else None,
        title_patterns=_any_of(d.fit.titles.patterns),
        activity_rules={k: tuple(v) for k, v in activity.items()},
        property_rules=tuple(
            (r, frozenset(norm(v) for v in r.values), compile_pattern(r.pattern) if r.pattern else None)
            for r in d.engagement.property_points
        ),
        high_intent={k: tuple(v) for k, v in intent.items()},
        direct_inquiries=frozenset(a.name for a in d.engagement.high_intent if a.direct_inquiry),
        personal_domains=frozenset(x.casefold() for x in d.disqualifiers.personal_email_domains),
        competitor_domains=frozenset(x.casefold() for x in d.disqualifiers.competitor_domains),
        competitor_subdomains=tuple("." + x.casefold() for x in d.disqualifiers.competitor_domains),
        student_title=re.compile(_words(student), flags) if student else None,
        student_suffixes=tuple(s.casefold() for s in d.disqualifiers.student_email_suffixes),
        placeholders=frozenset(norm(p) for p in d.sql_requirements.placeholders),
        reason_lookup=reasons,
        not_accepted=frozenset(norm(v) for v in d.reason_codes.not_accepted),
        discovery=compile_pattern(d.sla.discovery_pattern),
        calendar=BusinessCalendar(d.calendar),
        matches={},
    )

