"""Sentry, when CRMSYNC_SENTRY_DSN is set: errors only, scrubbed of record content and secrets.

Events carry the error type and a scrubbed message (`crmsync.redact.scrub_text`); never request
bodies, local variables, breadcrumb data or anything the CRM returned about a person. One event
per error: only `capture` sends; log lines at ERROR are not turned into events (the logging
integration would send a second event for every error the daemon both logs and captures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from crmsync.redact import register_secrets, scrub_text

if TYPE_CHECKING:
    from sentry_sdk._types import DataCollectionUserOptions

_enabled = False

COLLECT_NOTHING: DataCollectionUserOptions = {
    "user_info": False, "cookies": {"mode": "off"}, "http_headers": {"request": {"mode": "off"}}, "http_bodies": [],
    "url_query_params": {"mode": "off"}, "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False}, "database_query_data": False, "queues": False,
    "stack_frame_variables": False, "frame_context_lines": 0,
}
"""sentry-sdk's `data_collection` (2.70+; it replaces the deprecated `send_default_pii`): no category of
automatically collected data. Every field is named: an omitted one defaults to collecting (sentry_sdk
data_collection.py `_resolve_explicit`), and once it is set `include_local_variables` no longer decides
whether frames carry local variables (utils.py `serialize_frame`)."""


def init_sentry(dsn: str, secrets: list[str], release: str, environment: str = "production",
                transport: Any = None) -> None:
    """Start Sentry. `secrets` are the configured credential values: any occurrence is masked.
    `transport` replaces the HTTP transport (tests pass a fake one)."""
    global _enabled
    register_secrets(secrets)
    sentry_sdk.init(dsn=dsn, release=release, environment=environment, data_collection=COLLECT_NOTHING,
                    max_breadcrumbs=0, before_send=scrub_event, traces_sample_rate=0.0, default_integrations=True,
                    transport=transport, integrations=[LoggingIntegration(level=None, event_level=None)])
    _enabled = True


def capture(error: BaseException) -> None:
    if _enabled:
        sentry_sdk.capture_exception(error)


def scrub_event(event: Any, hint: Any = None) -> Any:
    for key in ("request", "extra", "user", "breadcrumbs", "contexts", "logentry"):
        event.pop(key, None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            for key in ("vars", "pre_context", "context_line", "post_context"):
                frame.pop(key, None)
    kept = {key: event[key] for key in _NOT_TEXT if key in event}  # "crmsync@0.1.0" is no email
    return {**_scrub(event), **kept}


_NOT_TEXT = ("release", "environment", "sdk", "modules", "event_id", "timestamp", "platform")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
