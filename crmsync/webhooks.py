"""HubSpot webhooks into the daemon: verified, deduplicated, answered fast, processed in batches.

A request is accepted only with a valid `X-HubSpot-Signature-v3` (HMAC-SHA256 with the app secret
over method, URI, body and timestamp; hubspot-api-client's `Signature` does the arithmetic) and a
timestamp younger than five minutes. Event ids already seen are ignored (a replay or a retry). The
contact ids go on a queue; a worker takes up to 100 at a time and sends them through the same
decide / outbox path as polling (`SyncPass.react`). Polling goes on as the safety net.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from hubspot.utils.signature import Signature

log = logging.getLogger("crmsync.webhooks")
SEEN_LIMIT = 100_000
BATCH = 100
BATCH_WAIT = 0.3


class WebhookIntake:
    def __init__(self, secret: str, handle: Callable[[list[str]], None],
                 count: Callable[[str], None] = lambda result: None) -> None:
        self.secret = secret
        self.handle = handle
        self.count = count
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()
        self.queue: queue.Queue[str] = queue.Queue()
        self.stopping = threading.Event()
        self.worker = threading.Thread(target=self._work, name="crmsync-webhooks", daemon=True)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.stopping.set()
        self.worker.join(timeout=10)

    def receive(self, method: str, uri: str, headers: dict[str, str], body: bytes) -> int:
        """The HTTP status to answer; the work itself happens on the worker thread."""
        signature = _header(headers, "X-HubSpot-Signature-v3")
        timestamp = _header(headers, "X-HubSpot-Request-Timestamp")
        text = body.decode("utf-8", "replace")
        try:
            valid = bool(signature) and Signature.is_valid(signature, self.secret, text, uri, method, "v3", timestamp)
        except Exception:  # the library raises on a missing, malformed or stale timestamp
            log.warning("webhook refused: stale or missing timestamp", extra={"timestamp": timestamp})
            self.count("stale")
            return 401
        if not valid:
            log.warning("webhook refused: bad signature", extra={"uri": uri})
            self.count("bad_signature")
            return 401
        try:
            events = json.loads(text)
        except ValueError:
            self.count("malformed")
            return 400
        fresh = 0
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, dict):
                continue
            event_id = str(event.get("eventId", ""))
            with self.lock:
                if event_id in self.seen:
                    self.count("replayed")
                    log.info("webhook event already seen, ignored", extra={"event_id": event_id})
                    continue
                self.seen[event_id] = None
                if len(self.seen) > SEEN_LIMIT:
                    self.seen.popitem(last=False)
            if str(event.get("subscriptionType", "")).startswith("contact.") and event.get("objectId"):
                self.queue.put(str(event["objectId"]))
                fresh += 1
        self.count("accepted")
        return 200

    def _work(self) -> None:
        while not self.stopping.is_set():
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
                log.warning("webhook batch failed; polling will catch up", extra={"error": str(exc)})


def _header(headers: dict[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def source_uri(headers: dict[str, Any], path: str, configured: str | None) -> str:
    """The URI HubSpot signed: the configured public URL, else what this request says it was."""
    if configured:
        return configured
    return f"http://{_header(headers, 'Host')}{path}"
