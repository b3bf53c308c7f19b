"""Disqualification reasons: only the governed codes are accepted ("not interested" never is)."""

from __future__ import annotations

from crmsync.model import ReasonCheck
from crmsync.rules.compiled import Compiled, norm
from crmsync.rules.values import preview, text


def check_reason(value: object, c: Compiled) -> ReasonCheck:
    raw = text(value)
    allowed = ", ".join(code.code for code in c.loaded.definitions.reason_codes.codes)
    if raw is None:
        return ReasonCheck("", False, None, f"no reason given; use one of: {allowed}")
    normal = norm(raw[:200])
    if normal in c.not_accepted:
        why = f"{preview(raw)!r} is not an accepted reason; use one of: {allowed}"
        return ReasonCheck(preview(raw), False, None, why)
    code = c.reason_lookup.get(normal)
    if code is None:
        why = f"{preview(raw)!r} is not a governed reason code; use one of: {allowed}"
        return ReasonCheck(preview(raw), False, None, why)
    return ReasonCheck(preview(raw), True, code.code, f"{code.label} -> {code.outcome}")
