"""Making text safe for where it goes: passwords out of URLs, control characters out of terminals,
formulas out of spreadsheets. Values from the CRM are typed by anyone who fills a web form.
"""

from __future__ import annotations

import re
from typing import Any

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
