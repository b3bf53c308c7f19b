"""Disqualifiers beat everything: no score or high-intent action makes these records MQL."""

from __future__ import annotations

from crmsync.model import Contact, DisqualifierHit
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.values import preview, text


def find_disqualifiers(contact: Contact, domain: str | None, c: Compiled) -> tuple[DisqualifierHit, ...]:
    """`domain` is the contact's email domain, already read by the caller (None when unusable)."""
    hits: list[DisqualifierHit] = []
    if domain is not None:
        company = text(contact.company)
        no_company = company is None or norm(company[:200]) in c.placeholders
        if domain in c.personal_domains and no_company:
            hits.append(DisqualifierHit("personal_email", domain, "personal email domain and no company data"))
        if domain in c.competitor_domains or domain.endswith(c.competitor_subdomains):
            hits.append(DisqualifierHit("competitor", domain, "email domain belongs to a competitor"))
        if c.student_suffixes and domain.endswith(c.student_suffixes):
            hits.append(DisqualifierHit("student", domain, "student email domain"))
    title = text(contact.title)
    if title is not None and c.student_title is not None:
        match = c.student_title.search(title[:1000])
        if match:
            hits.append(DisqualifierHit("student", preview(title), f"title says {match.group(0)!r}"))
    return tuple(hits)
