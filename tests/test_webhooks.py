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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from pydantic import SecretStr

from crmsync.crms.hubspot.sandbox.api import HubSpotApp
from crmsync.crms.hubspot.sandbox.webhooks import WebhookSender
from crmsync.daemon import Daemon
from crmsync.errors import ConfigError
from crmsync.settings import HttpSettings, Settings, SyncSettings, load_settings
from crmsync.store import Store
from crmsync.webhooks import WebhookIntake
from tests.hubspot_fixtures import DEFS, TOKEN, connector, hubspot
from tests.test_daemon import wait_for

SECRET = "app-secret-for-tests"


PUBLIC_URL = "https://crmsync.example.com/webhooks/hubspot"


@contextmanager
def daemon_with_webhooks(tmp_path: Path, interval: int, *, public_url: str | None = None,
                         metrics_token: str | None = None) -> Iterator[tuple[HubSpotApp, Daemon, str]]:
    """Without `public_url` the signed URL comes from the request (trusted proxy, here none: the Host header)."""
    with hubspot(20, real_clock=True) as (app, url):
        store = Store.open(f"sqlite:///{tmp_path / 'w.db'}")
        http = HttpSettings(port=0, trusted_proxy=public_url is None,
                            metrics_token=SecretStr(metrics_token) if metrics_token else None)
        settings = Settings(database_url=store.url, http=http, sync=SyncSettings(interval_seconds=interval),
                            hubspot={"access_token": SecretStr(TOKEN), "base_url": url,
                                     "app_secret": SecretStr(SECRET), "webhook_url": public_url})
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


def post(url: str, body: bytes, signature: str, timestamp: str, **headers: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp, **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def sign(url: str, body: bytes, timestamp: str, secret: str = SECRET) -> str:
    source = f"POST{url}{body.decode()}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def kinds(daemon: Daemon) -> list[str]:
    return [run["kind"] for run in daemon.store.runs(100)]


def metric(daemon: Daemon, result: str) -> float:
    value = daemon.metrics.webhooks.labels(result)._value.get()
    return float(value)


def test_a_signed_webhook_drives_the_write_back_without_polling(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600) as (app, daemon, url):
        sender = WebhookSender(app.portal, url, SECRET)
        try:
            syncs = kinds(daemon).count("sync")
            contact_id = ask_for_sql_without_budget(app)
            wait_for(lambda: reverted(app, contact_id), seconds=15, what="the revert driven by the webhook")
            assert kinds(daemon).count("sync") == syncs  # no polling pass ran: the webhook did it
            webhook_runs = wait_for(lambda: [r for r in daemon.store.runs(100)
                                             if r["kind"] == "webhook" and r["outcome"] == "ok"],
                                    what="the webhook pass's run row")
            assert webhook_runs[0]["counts"]["written"] >= 1 and webhook_runs[0]["ended_at"] is not None
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


def millis(offset_seconds: float = 0) -> str:
    return str(int((time.time() + offset_seconds) * 1000))


def event(event_id: int, contact_id: str) -> dict[str, object]:
    return {"eventId": event_id, "subscriptionId": 9, "portalId": 1234567, "occurredAt": 1_700_000_000_000 + event_id,
            "subscriptionType": "contact.propertyChange", "objectId": int(contact_id), "propertyName": "jobtitle"}


def webhook_runs(daemon: Daemon) -> list[dict[str, Any]]:
    """Finished webhook passes, newest first."""
    return [run for run in daemon.store.runs(100) if run["kind"] == "webhook" and run["ended_at"] is not None]


def test_a_replay_after_a_restart_is_refused(tmp_path: Path) -> None:
    """The event ids live in the store: a new process still knows them. The signed URL is the public one
    (a proxy in front), so the same signed request is valid for both processes."""
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL) as (app, daemon, url):
        first, second = list(app.portal.records["contacts"])[:2]
        now = millis()
        replayed = json.dumps([event(501, first)]).encode()
        assert post(url, replayed, sign(PUBLIC_URL, replayed, now), now) == 200
        wait_for(lambda: webhook_runs(daemon), what="the first process's webhook pass")
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL) as (app, daemon, url):
        before = len(webhook_runs(daemon))
        assert post(url, replayed, sign(PUBLIC_URL, replayed, now), now) == 200  # HubSpot must not retry it
        assert metric(daemon, "replayed") == 1
        fresh = json.dumps([event(502, second)]).encode()
        assert post(url, fresh, sign(PUBLIC_URL, fresh, now), now) == 200
        runs = wait_for(lambda: webhook_runs(daemon)[: len(webhook_runs(daemon)) - before],
                        what="the second process's webhook pass")
        assert len(runs) == 1 and runs[0]["counts"]["pulled"] == 1  # the replayed contact was not read again


def test_timestamps_outside_five_minutes_are_refused_both_ways(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL) as (app, daemon, url):
        body = json.dumps([event(601, next(iter(app.portal.records["contacts"])))]).encode()
        for offset in (+600, -600, +301):
            stamp = millis(offset)
            assert post(url, body, sign(PUBLIC_URL, body, stamp), stamp) == 401, offset
        for stamp in ("", "soon", "1" * 40, "-5"):
            assert post(url, body, sign(PUBLIC_URL, body, stamp), stamp) == 401, stamp
        assert metric(daemon, "stale") == 7 and metric(daemon, "accepted") == 0
        now = millis(+200)  # within the window, a little ahead (clock skew) is fine
        assert post(url, body, sign(PUBLIC_URL, body, now), now) == 200


@pytest.mark.parametrize("body", [b'{"eventId": 1}', b'"events"', b"[1, 2]", b'[{"objectId": 5}]', b"not json",
                                  b"[" * 100_000, b'[{"eventId": null}]', b"\xff\xfe"])
def test_a_body_that_is_not_a_list_of_events_is_400(tmp_path: Path, body: bytes) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL) as (_app, daemon, url):
        now = millis()
        assert post(url, body, sign(PUBLIC_URL, body.decode("utf-8", "replace").encode(), now), now) == 400
        assert metric(daemon, "malformed") == 1 and metric(daemon, "accepted") == 0


def test_the_signature_covers_the_public_url(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL) as (app, _daemon, url):
        body = json.dumps([event(701, next(iter(app.portal.records["contacts"])))]).encode()
        now = millis()
        assert post(url, body, sign(url, body, now), now) == 401  # signed over the local URL: not what HubSpot signs
        assert post(url, body, sign(PUBLIC_URL, body, now), now) == 200


def test_behind_a_trusted_proxy_the_signed_url_comes_from_its_headers(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600) as (app, _daemon, url):
        contact = next(iter(app.portal.records["contacts"]))
        now = millis()
        body = json.dumps([event(801, contact)]).encode()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "crmsync.example.com"}
        assert post(url, body, sign(PUBLIC_URL, body, now), now, **proxied) == 200
        body = json.dumps([event(802, contact)]).encode()
        forwarded = {"Forwarded": 'for=192.0.2.60;proto=https;host="crmsync.example.com", for=10.0.0.1'}
        assert post(url, body, sign(PUBLIC_URL, body, now), now, **forwarded) == 200
        assert post(url, body, sign(PUBLIC_URL, body, now), now) == 401  # no proxy headers: the local URL


def test_webhooks_need_the_public_url_or_a_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_HUBSPOT__APP_SECRET", "s3cret")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "CRMSYNC_HUBSPOT__WEBHOOK_URL" in str(refused.value) and "s3cret" not in str(refused.value)
    assert "\n" not in str(refused.value)
    monkeypatch.setenv("CRMSYNC_HTTP__TRUSTED_PROXY", "true")
    assert load_settings().http.trusted_proxy is True


def test_metrics_can_require_a_bearer_token(tmp_path: Path) -> None:
    with daemon_with_webhooks(tmp_path, interval=3600, public_url=PUBLIC_URL, metrics_token="m-token") as (
            _app, _daemon, url):
        base = url.removesuffix("/webhooks/hubspot")

        def metrics(authorization: str | None) -> int:
            request = urllib.request.Request(base + "/metrics", headers={"Authorization": authorization}
                                             if authorization else {})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert b"crmsync_webhooks_total" in response.read()
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                assert b"crmsync_" not in exc.read()
                return exc.code

        assert metrics(None) == 401 and metrics("Bearer wrong") == 401 and metrics("m-token") == 401
        assert metrics("Bearer m-token") == 200
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:  # health stays open
            assert response.status == 200


def test_the_store_remembers_event_keys_for_a_bounded_window(database_url: str) -> None:
    store = Store.open(database_url)
    old, now = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC)
    assert store.remember_webhook_events(["a", "b", "a"], old) == ["a", "b"]
    assert store.remember_webhook_events(["b", "c"], now) == ["c"]
    assert store.remember_webhook_events([f"k{i}" for i in range(5)], now) == [f"k{i}" for i in range(5)]
    assert store.forget_webhook_events(now - timedelta(days=3), keep_at_most=4) == 2 + 2  # a, b by age; 2 oldest
    assert store.remember_webhook_events(["a", "b"], now) == ["a", "b"]  # forgotten, so new again


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
SUBSCRIPTIONS = st.sampled_from(["contact.propertyChange", "deal.creation"])
EVENT = st.fixed_dictionaries({"eventId": st.integers(0, 10**12) | st.text(min_size=1, max_size=12)},
                              optional={"objectId": st.integers(1, 10**9), "occurredAt": st.integers(0, 10**13),
                                        "subscriptionType": SUBSCRIPTIONS})


@pytest.fixture(scope="module")
def intake_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store.open(f"sqlite:///{tmp_path_factory.mktemp('intake') / 'i.db'}")


@examples(max_examples=60, deadline=None)
@given(body=st.one_of(JSON.map(json.dumps), st.lists(EVENT, max_size=5).map(json.dumps)))
def test_any_signed_body_is_accepted_or_refused_with_400_never_an_error(intake_store: Store, body: str) -> None:
    handled: list[list[str]] = []
    intake = WebhookIntake(SECRET, intake_store, handled.append, public_url=PUBLIC_URL)
    now = millis()
    headers = {"x-hubspot-request-timestamp": now, "x-hubspot-signature-v3": sign(PUBLIC_URL, body.encode(), now)}
    status = intake.request(headers, "http", "/webhooks/hubspot", "", body.encode())
    value = json.loads(body)
    is_events = isinstance(value, list) and all(isinstance(e, dict) and isinstance(e.get("eventId"), int | str)
                                                 for e in value)
    assert status == (200 if is_events else 400)
    queued = intake.queue.qsize()
    assert queued <= (len(value) if is_events else 0)  # only contact events, each at most once, ever
