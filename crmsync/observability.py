"""Sentry, when CRMSYNC_SENTRY_DSN is set: errors only, scrubbed of emails, tokens and record text.

Events carry the error type and a scrubbed message; never request bodies, local variables,
breadcrumb data or anything the CRM returned about a person.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
TOKEN = re.compile(r"\b(pat-[\w-]+|Bearer\s+\S+|00D\w{12,}![\w.]+|sk_[\w]+)", re.IGNORECASE)
_secrets: list[str] = []
_enabled = False


def init_sentry(dsn: str, secrets: list[str], release: str, environment: str = "production") -> None:
    """Start Sentry. `secrets` are the configured credential values: any occurrence is masked."""
    global _enabled
    _secrets[:] = [s for s in secrets if s and len(s) >= 4]
    sentry_sdk.init(dsn=dsn, release=release, environment=environment, send_default_pii=False,
                    include_local_variables=False, max_breadcrumbs=0, before_send=scrub_event,
                    traces_sample_rate=0.0, default_integrations=True)
    _enabled = True


def capture(error: BaseException) -> None:
    if _enabled:
        sentry_sdk.capture_exception(error)


def scrub_event(event: Any, hint: Any = None) -> Any:
    for key in ("request", "extra", "user", "breadcrumbs", "contexts"):
        event.pop(key, None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return _scrub(event)


def scrub_text(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "[secret]")
    text = EMAIL.sub("[email]", text)
    return TOKEN.sub("[token]", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
