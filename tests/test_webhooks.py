"""HubSpot webhooks: signed ones drive a write-back at once; bad, stale and replayed ones are refused or
ignored with a log line and a metric; a dropped webhook is still caught by polling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmsync.daemon import Daemon
from crmsync.sandbox.hubspot.api import HubSpotApp
from crmsync.sandbox.hubspot.webhooks import WebhookSender
from crmsync.settings import HttpSettings, Settings, SyncSettings
from crmsync.store import Store
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot
from tests.test_daemon import wait_for

SECRET = "app-secret-for-tests"


@contextmanager
def daemon_with_webhooks(tmp_path: Path, interval: int) -> Iterator[tuple[HubSpotApp, Daemon, str]]:
    with hubspot(20, real_clock=True) as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'w.db'}")
        settings = Settings(database_url=store.url, http=HttpSettings(port=0),
                            sync=SyncSettings(interval_seconds=interval),
                            hubspot={"access_token": SecretStr(TOKEN), "base_url": url,
                                     "app_secret": SecretStr(SECRET)})
        daemon = Daemon(settings, DEFS, store, {"hubspot": connector(url)})
        daemon.start()
        try:
            wait_for(lambda: "hubspot" in daemon.last_success, what="the first pass")
            yield app, daemon, f"http://127.0.0.1:{daemon.http_port}/webhooks/hubspot"
        finally:
            daemon.stop()


def ask_for_sql_without_budget(app: HubSpotApp) -> str:
    with app.lock:
        contact = next(r for r in app.portal.records["contacts"].values()
                       if r.properties.get("crmsync_stage") == "mql")
        app.portal.update("contacts", contact.id, {"lifecyclestage": "salesqualifiedlead", "crmsync_bant_budget": ""})
    return contact.id


def reverted(app: HubSpotApp, contact_id: str) -> bool:
    return app.portal.records["contacts"][contact_id].properties.get("lifecyclestage") != "salesqualifiedlead"


def post(url: str, body: bytes, signature: str, timestamp: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def sign(url: str, body: bytes, timestamp: str, secret: str = SECRET) -> str:
    source = f"POST{url}{body.decode()}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def metric(daemon: Daemon, result: str) -> float:
    value = daemon.metrics.webhooks.labels(result)._value.get()
    return float(value)


def test_a_signed_webhook_drives_the_write_back_without_polling(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600) as (app, daemon, url):
        sender = WebhookSender(app.portal, url, SECRET)
        try:
            passes = len(daemon.store.runs(100))
            contact_id = ask_for_sql_without_budget(app)
            wait_for(lambda: reverted(app, contact_id), seconds=15, what="the revert driven by the webhook")
            assert len(daemon.store.runs(100)) == passes  # no polling pass ran: the webhook did it
            assert metric(daemon, "accepted") >= 1
            properties = app.portal.records["contacts"][contact_id].properties
            assert "budget: empty" in properties["crmsync_sql_blocked_reason"]
        finally:
            sender.stop()


def test_bad_signature_stale_timestamp_and_replay(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crmsync.webhooks")
    with daemon_with_webhooks(tmp_path, interval=3600) as (app, daemon, url):
        contact_id = next(iter(app.portal.records["contacts"]))
        body = json.dumps([{"eventId": 77, "subscriptionType": "contact.propertyChange",
                            "objectId": int(contact_id), "propertyName": "jobtitle"}]).encode()
        now = str(int(time.time() * 1000))
        assert post(url, body, sign(url, body, now, secret="wrong"), now) == 401
        stale = str(int((time.time() - 600) * 1000))
        assert post(url, body, sign(url, body, stale), stale) == 401
        assert post(url, body, sign(url, body, now), now) == 200
        assert post(url, body, sign(url, body, now), now) == 200  # the same event again: ignored
        assert metric(daemon, "bad_signature") == 1 and metric(daemon, "stale") == 1
        assert metric(daemon, "accepted") == 2 and metric(daemon, "replayed") == 1
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "bad signature" in messages and "stale" in messages and "already seen" in messages
        exposition = daemon.metrics.exposition().decode()
        assert 'crmsync_webhooks_total{result="bad_signature"} 1.0' in exposition


def test_a_dropped_webhook_is_caught_by_polling(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=1) as (app, daemon, url):
        sender = WebhookSender(app.portal, url, SECRET, drop=1.0)
        try:
            contact_id = ask_for_sql_without_budget(app)
            wait_for(lambda: reverted(app, contact_id), seconds=20, what="the poll to catch the change")
            assert sender.dropped >= 1 and metric(daemon, "accepted") == 0
        finally:
            sender.stop()
