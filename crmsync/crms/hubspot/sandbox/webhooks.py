"""The HubSpot sandbox sends webhooks like HubSpot: contact creation and property changes, batched,
signed with X-HubSpot-Signature-v3, with optional drops and duplicates for testing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from crmsync.crms.hubspot.sandbox.state import Portal


class WebhookSender:
    def __init__(self, portal: Portal, url: str, secret: str, *, drop: float = 0.0, duplicate: float = 0.0,
                 seed: int = 0, portal_id: int = 1234567) -> None:
        self.url, self.secret = url, secret
        self.drop, self.duplicate = drop, duplicate
        self.random = random.Random(seed)
        self.portal_id = portal_id
        self.ids = itertools.count(1)
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.sent = self.dropped = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._send_loop, name="sandbox-webhooks", daemon=True)
        portal.on_change.append(self.changed)
        self.thread.start()

    def changed(self, object_type: str, record_id: str, properties: dict[str, str]) -> None:
        if object_type != "contacts":
            return
        name = next(iter(properties), "hs_lastmodifieddate")
        event = {"eventId": next(self.ids), "subscriptionId": 1, "portalId": self.portal_id, "appId": 1,
                 "occurredAt": int(time.time() * 1000), "subscriptionType": "contact.propertyChange",
                 "attemptNumber": 0, "objectId": int(record_id) if record_id.isdigit() else record_id,
                 "propertyName": name, "propertyValue": properties.get(name, ""), "changeSource": "CRM"}
        if self.random.random() < self.drop:
            self.dropped += 1
            return
        self.queue.put(event)
        if self.random.random() < self.duplicate:
            self.queue.put(dict(event))

    def deleted(self, record_id: str, subscription_type: str) -> None:
        """A contact deleted (`contact.deletion`) or GDPR-deleted (`contact.privacyDeletion`): the common
        event fields, no property (crmsync.crms.hubspot.sandbox.deletion). Never dropped: drop rates apply to
        property changes, which polling catches up."""
        self.queue.put({"eventId": next(self.ids), "subscriptionId": {"contact.deletion": 2}.get(subscription_type, 3),
                        "portalId": self.portal_id, "appId": 1, "occurredAt": int(time.time() * 1000),
                        "subscriptionType": subscription_type, "attemptNumber": 0,
                        "objectId": int(record_id) if record_id.isdigit() else record_id, "changeSource": "CRM"})

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _send_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                events = [self.queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(events) < 100:
                try:
                    events.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._post(events)

    def _post(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps(events).encode()
        timestamp = str(int(time.time() * 1000))
        source = f"POST{self.url}{body.decode()}{timestamp}"
        signature = base64.b64encode(hmac.new(self.secret.encode(), source.encode(), hashlib.sha256).digest()).decode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": timestamp, "X-HubSpot-Signature-Version": "v3"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
            self.sent += len(events)
        except (urllib.error.URLError, OSError):
            self.dropped += len(events)  # HubSpot would retry; the sandbox lets polling catch up
