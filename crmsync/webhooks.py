"""HubSpot webhooks into the daemon: checked, deduplicated in the store, answered fast, processed in batches.

A request is accepted only when, in this order (each refusal is one JSON log line and a count in
`crmsync_webhooks_total{result}`):

1. `X-HubSpot-Request-Timestamp` is within five minutes of now, either way ("Reject the request if
   the timestamp is older than 5 minutes":
   https://developers.hubspot.com/changelog/introducing-version-3-of-webhook-signatures; a
   future-dated one is refused as well) -> 401 `stale`;
2. `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256, keyed with the app secret, of method + URI +
   body + timestamp (same page; hubspot-api-client's `Signature` does the arithmetic) -> 401
   `bad_signature`;
3. the body is a JSON list of event objects, each with an `eventId` -> 400 `malformed`.

Events already remembered in the store (for `CRMSYNC_HUBSPOT__WEBHOOK_DEDUPE_DAYS`, at most
`REMEMBERED_AT_MOST` of them) are ignored (`replayed`): a replay is refused after a restart too, and
on every replica sharing the store. The contact ids go on a bounded queue; a worker takes up to 100
at a time and sends them through the same decide / outbox path as polling. Polling goes on as the
safety net for anything dropped.

Deletions are applied before the answer, on whichever replica receives them: `contact.deletion` (a
contact deleted, restorable for 90 days) and `contact.privacyDeletion` (a GDPR delete, permanent; it
"will also trigger the normal contact.delete event":
https://developers.hubspot.com/changelog/now-live-webhooks-now-support-privacy-compliant-contact-deletions)
erase the contact from the store (crmsync.sync.erasure) before the events are remembered: when the
store fails, the answer is 503 and HubSpot delivers them again. Erasing twice changes nothing, so a
deletion event is applied even when replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hubspot.utils.signature import Signature

from crmsync.store import Store
from crmsync.sync import erasure

log = logging.getLogger("crmsync.webhooks")
MAX_SKEW_SECONDS = 300
REMEMBERED_AT_MOST = 1_000_000
PRUNE_EVERY_SECONDS = 3600
QUEUE_LIMIT = 10_000
BATCH = 100
BATCH_WAIT = 0.3
SIGNATURE = "x-hubspot-signature-v3"
TIMESTAMP = "x-hubspot-request-timestamp"
DELETIONS = {"contact.deletion", "contact.privacyDeletion"}


class WebhookIntake:
    def __init__(self, secret: str, store: Store, handle: Callable[[list[str]], None], *, crm: str = "hubspot",
                 dedupe_days: int = 3,
                 public_url: str | None = None, trusted_proxy: bool = False,
                 count: Callable[[str], None] = lambda result: None,
                 erased: Callable[[int], None] = lambda n: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.crm = crm
        self.public_url = public_url
        self.trusted_proxy = trusted_proxy
        self.store = store
        self.handle = handle
        self.dedupe = timedelta(days=dedupe_days)
        self.count = count
        self.erased = erased
        self.clock = clock
        self.queue: queue.Queue[str] = queue.Queue(maxsize=QUEUE_LIMIT)
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._work, name="crmsync-webhooks", daemon=True)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.worker.is_alive():
            self.worker.join(timeout=10)

    def precheck(self, headers: Mapping[str, str]) -> int | None:
        """Refuse before the body is read: 401 without a signature or with a timestamp out of the window."""
        timestamp = headers.get(TIMESTAMP, "")
        if not _fresh(timestamp, self.clock()):
            log.warning("webhook refused: stale timestamp (missing, or more than 5 minutes from now)",
                        extra={"timestamp": timestamp[:32]})
            self.count("stale")
            return 401
        if not headers.get(SIGNATURE):
            return self._bad_signature()
        return None

    def request(self, headers: Mapping[str, str], scheme: str, path: str, query: str, body: bytes) -> int:
        """A POST to the webhook path, as the HTTP server saw it."""
        uri = signed_uri(headers, scheme, path, query, self.public_url, trusted_proxy=self.trusted_proxy)
        return self.receive("POST", uri, headers, body)

    def receive(self, method: str, uri: str, headers: Mapping[str, str], body: bytes) -> int:
        """The HTTP status to answer (header names in lower case); the work happens on the worker thread."""
        refused = self.precheck(headers)
        if refused is not None:
            return refused
        text = body.decode("utf-8", "replace")
        expected = Signature.get_signature(self.secret, text, "v3", uri, method, headers[TIMESTAMP])
        if not hmac.compare_digest(expected.encode(), headers[SIGNATURE].encode()):
            return self._bad_signature()
        events = _events(text)
        if events is None:
            log.warning("webhook refused: the body is not a JSON list of event objects with an eventId")
            self.count("malformed")
            return 400
        try:
            self._erase([e for e in events if e.get("subscriptionType") in DELETIONS])
        except Exception as exc:  # the store failed: HubSpot retries a 5xx answer
            log.warning("webhook deletions not applied: the store failed; HubSpot will retry",
                        extra={"error": exc.__class__.__name__})
            self.count("erase_failed")
            return 503
        keys = [_key(e) for e in events]
        fresh = set(self.store.remember_webhook_events(keys, datetime.now(UTC)))
        for event, key in zip(events, keys, strict=True):
            if key not in fresh:
                self.count("replayed")
                log.info("webhook event already seen, ignored", extra={"event_id": str(event["eventId"])[:64]})
                continue
            fresh.discard(key)  # the same event twice in one body counts once
            if event.get("subscriptionType") in DELETIONS:
                continue  # erased above
            if str(event.get("subscriptionType", "")).startswith("contact.") and event.get("objectId"):
                self._enqueue(str(event["objectId"]))
        self.count("accepted")
        return 200

    def _erase(self, deletions: list[dict[str, Any]]) -> None:
        ids = [str(e["objectId"])[:64] for e in deletions if e.get("objectId")]
        if ids:
            self.erased(erasure.erase(self.store, self.crm, ids, "webhook"))

    def _bad_signature(self) -> int:
        log.warning("webhook refused: bad signature")
        self.count("bad_signature")
        return 401

    def _enqueue(self, record_id: str) -> None:
        try:
            self.queue.put_nowait(record_id)
        except queue.Full:  # polling picks the record up
            self.count("overflow")

    def _work(self) -> None:
        pruned_at = 0.0
        while not self.stopping.is_set():
            if time.monotonic() - pruned_at > PRUNE_EVERY_SECONDS:
                pruned_at = time.monotonic()
                self._prune()
            try:
                first = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            ids = [first]
            deadline = time.monotonic() + BATCH_WAIT  # a burst becomes one batch
            while len(ids) < BATCH and time.monotonic() < deadline:
                try:
                    ids.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self.handle(list(dict.fromkeys(ids)))
            except Exception as exc:  # the safety net: polling catches what a failed batch missed
                log.warning("webhook batch failed; polling will catch up", extra={"error": str(exc)[:500]})

    def _prune(self) -> None:
        try:
            dropped = self.store.forget_webhook_events(datetime.now(UTC) - self.dedupe, REMEMBERED_AT_MOST)
        except Exception as exc:  # the next prune tries again
            log.warning("forgetting old webhook events failed", extra={"error": str(exc)[:500]})
            return
        if dropped:
            log.info("old webhook events forgotten", extra={"count": dropped})


def _fresh(timestamp: str, now: float) -> bool:
    """HubSpot's timestamp is milliseconds since the epoch."""
    if not timestamp.isdigit() or len(timestamp) > 16:
        return False
    return abs(int(timestamp) / 1000 - now) <= MAX_SKEW_SECONDS


def _events(text: str) -> list[dict[str, Any]] | None:
    try:
        events = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    if not isinstance(events, list):
        return None
    if not all(isinstance(e, dict) and isinstance(e.get("eventId"), int | str) for e in events):
        return None
    return events


def _key(event: dict[str, Any]) -> str:
    """What identifies an event across retries (a retry changes only attemptNumber and the request's
    timestamp): HubSpot does not promise that `eventId` alone is unique, so the portal, subscription and
    occurrence time are part of it (unconfirmed; see docs/hubspot.md)."""
    parts = [str(event.get(name, "")) for name in ("portalId", "subscriptionId", "eventId", "occurredAt")]
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


def signed_uri(headers: Mapping[str, str], scheme: str, path: str, query: str, configured: str | None, *,
               trusted_proxy: bool) -> str:
    """The URI HubSpot signed: the configured public URL; else, behind a trusted proxy, what its
    Forwarded / X-Forwarded-* headers say the request was (settings refuse webhooks with neither)."""
    if configured:
        return configured
    forwarded = _forwarded(headers.get("forwarded", "")) if trusted_proxy else {}
    proto = forwarded.get("proto") or (headers.get("x-forwarded-proto", "") if trusted_proxy else "") or scheme
    host = forwarded.get("host") or (headers.get("x-forwarded-host", "") if trusted_proxy else "") \
        or headers.get("host", "")
    return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}{path}" + (f"?{query}" if query else "")


def _forwarded(value: str) -> dict[str, str]:
    """The first element of an RFC 7239 Forwarded header (the proxy nearest the client)."""
    first = value.split(",")[0]
    pairs = (part.split("=", 1) for part in first.split(";") if "=" in part)
    return {name.strip().lower(): raw.strip().strip('"') for name, raw in pairs}
