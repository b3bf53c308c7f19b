"""Making text safe for where it goes: record content and secrets out of error texts, passwords
out of URLs, control characters out of terminals, formulas out of spreadsheets. Values from the
CRM are typed by anyone who fills a web form, and are personal data.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"[^\s@'\"<>(),;:\[\]{}/*]+@[\w-]+(?:\.[\w-]+)*")
TOKEN = re.compile(r"\b(pat-[\w-]+|Bearer\s+\S+|00D\w{12,}![\w.]+|sk_[\w]+)", re.IGNORECASE)
_QUOTED = re.compile(r"""(?<!\w)(?P<open>["'“‘])(?P<value>(?:\\.|[^"'”’\\]){0,2000}?)(?P<close>["'”’])"""
                     r"""(?!\w)(?P<key>\s*:)?""")
_IDENTIFIER = re.compile(r"[A-Z][A-Z0-9_]*|[a-z][a-z0-9]*(?:_[a-z0-9]+)+|[A-Za-z][A-Za-z0-9_]*__c|\[\w+\]")
"""Quoted text kept as it is: error codes (INVALID_EMAIL), API names (hs_lead_status, CRM_Stage__c)."""
_AFTER_LABEL = re.compile(r"(?P<label>\b(?:value|values|picklist field)\s*:\s*)(?P<value>[^;\]\[}{\"'\n]+)",
                          re.IGNORECASE)
_secrets: list[str] = []
MAX_TEXT = 4000
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def register_secrets(values: list[str]) -> None:
    """The configured credentials: `scrub_text` replaces any occurrence of them."""
    _secrets[:] = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def scrub_text(text: str) -> str:
    """An error text without record content or secrets, for logs, the store and Sentry.

    CRM error messages quote the values they refuse (an email, a name, BANT text) and our own
    record errors quote values with repr: every quoted value goes, except error codes and API
    names, which say what failed without saying about whom; so do emails, tokens, configured
    secrets, URL passwords and what follows "value:". The structure of the message stays.
    Longer texts are cut at `MAX_TEXT` characters first.
    """
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "… (cut)"
    for secret in _secrets:
        text = text.replace(secret, "[secret]")
    text = TOKEN.sub("[token]", safe_url(text))
    text = EMAIL.sub("[email]", text)
    text = _QUOTED.sub(_quoted, text)
    return _AFTER_LABEL.sub(lambda m: f"{m['label']}[value]", text)


def _quoted(match: re.Match[str]) -> str:
    if match["key"] or _IDENTIFIER.fullmatch(match["value"]):
        return match[0]
    return f"{match['open']}[value]{match['close']}"


def safe_url(text: str) -> str:
    """The text with the password of every URL in it replaced by ***
    (postgresql://crmsync:secret@db/x -> postgresql://crmsync:***@db/x)."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def terminal_safe(text: str) -> str:
    """The text without control characters (ESC, BEL, CR, ...) and bidirectional overrides, which
    would let a CRM value rewrite or hide what a person reads in a terminal. Newlines and tabs stay."""
    return _TERMINAL_UNSAFE.sub("", text)


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading
    apostrophe (OWASP "CSV injection"). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
