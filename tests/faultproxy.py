"""A hostile network between a CRM client library and a sandbox: a small threaded HTTP proxy on
127.0.0.1 that injects, per route and method, the faults a sandbox's own `--faults` never produces.

Kinds (what the client sees; whether the CRM got the request):

- `html502`, `html504`: a gateway's HTML error page; the request WAS forwarded (the gateway gave up
  waiting for the answer, so a write may have happened).
- `html503`: an HTML "service unavailable" page; the request was not forwarded.
- `reset_before`: forwarded, then the connection is reset before any byte of the answer.
- `reset_during`: forwarded, then the status line, headers and half the body are sent and the
  connection is reset.
- `truncated`: forwarded; the answer is cut in half, with a Content-Length that matches the cut
  (so the client reads a complete, malformed body).
- `empty`: forwarded; the answer is `200` with an empty body.
- `slow`: forwarded; the answer is sent `slow_seconds` later (longer than the client's timeout).
- `twice`: the request is delivered twice; the client gets the second answer.
- `close_after`: forwarded; the whole answer is sent, then the proxy closes the kept-alive connection (FIN,
  no `Connection: close` header), as a server whose keep-alive idle timeout ended ("A client, server, or
  proxy MAY close the transport connection at any time", RFC 9112 section 9.5).
- `unauthorized`: not forwarded; a `401` with the CRM's own error body.
- `daily_limit`: not forwarded; the CRM's own "daily API quota used up" answer: HubSpot `429` with
  `policyName: DAILY`, Salesforce `403 REQUEST_LIMIT_EXCEEDED`.

Deterministic: each `Fault` applies to the matching requests number `skip + 1` to `skip + times`
(in arrival order); `log` records every request and what was done to it. A `Mix` is a seeded random
mix of kinds for a soak: the same seed and the same sequence of requests give the same faults.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

KINDS = ("html502", "html503", "html504", "reset_before", "reset_during", "truncated", "empty", "slow", "twice",
         "unauthorized")
REFUSALS = ("daily_limit",)  # the CRM's own answers, not network faults (not in KINDS' fault matrix)
CLOSES = ("close_after",)  # a right answer on a connection then closed: no fault of the answer (not in the matrix)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te"}


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str = ""
    """A regular expression searched in the request path (with its query string)."""
    times: int = 1
    skip: int = 0
    seen: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS + REFUSALS + CLOSES:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS + REFUSALS + CLOSES)}")

    def take(self, method: str, path: str) -> bool:
        """Whether this request gets the fault (counts the matching requests)."""
        if (self.method and method != self.method) or not re.search(self.path, path):
            return False
        self.seen += 1
        return self.skip < self.seen <= self.skip + self.times

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None:
        return self.kind if self.take(method, path) else None


@dataclass
class Mix:
    """Each matching request gets, with probability `rate`, one of `kinds` (drawn from `seed`); an
    `unauthorized` starts a 401 outage: the next `outage` requests through this rule get one too."""

    rate: float
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    method: str | None = None
    path: str = ""
    outage: int = 3
    _random: random.Random = field(init=False, repr=False)
    _left: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; one of {', '.join(KINDS)}")
        self._random = random.Random(self.seed)

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None:
        if (self.method and method != self.method) or not re.search(self.path, path):
            return None
        if self._left:
            self._left -= 1
            return "unauthorized"
        if self._random.random() >= self.rate:
            return None
        kind = self._random.choice(self.kinds)
        if kind == "unauthorized":
            self._left = self.outage - 1
        return kind


class Rule(Protocol):
    """What the proxy asks of a fault rule: the kind for this request (None: not this rule's)."""

    def pick(self, method: str, path: str, body: bytes = b"") -> str | None: ...


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    action: str
    """"forwarded", or the fault kind."""
    at: float = field(default=0.0, compare=False)
    """time.time() when it arrived"""
    body: bytes = field(default=b"", compare=False, repr=False)


def _html(status: int, reason: str) -> bytes:
    return (f"<!DOCTYPE html><html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>"
            f"<p>The server encountered a temporary error.</p><hr><address>nginx</address></body></html>").encode()


def _unauthorized_body(path: str) -> bytes:
    """The CRM's own 401 shape: Salesforce [SF-ERR] (specs/salesforce/NOTES.md), the OAuth error of
    its token endpoint, or HubSpot's error object (as the HubSpot sandbox answers a bad token)."""
    if path.startswith("/services/oauth2/"):
        body: Any = {"error": "invalid_client", "error_description": "invalid client credentials"}
    elif path.startswith("/services/"):
        body = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    else:
        body = {"status": "error", "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION", "correlationId": "00000000-0000-0000-0000-000000000000"}
    return json.dumps(body).encode()


def _daily_limit(path: str) -> tuple[int, str, bytes]:
    """The CRM's daily-limit answer. HubSpot: the 429 body quoted in its usage-details doc
    (specs/hubspot/NOTES.md, "Rate limits / 429": policyName DAILY, errorType RATE_LIMIT). Salesforce:
    403 REQUEST_LIMIT_EXCEEDED (REST API "Status Codes and Error Responses", errorcodes.htm), as
    its sandbox answers past `api_limit`."""
    if path.startswith("/services/"):
        return 403, "Forbidden", json.dumps([{"message": "TotalRequests Limit exceeded.",
                                              "errorCode": "REQUEST_LIMIT_EXCEEDED"}]).encode()
    return 429, "Too Many Requests", json.dumps({
        "status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
        "correlationId": "00000000-0000-0000-0000-000000000000", "policyName": "DAILY",
        "requestId": "00000000-0000-0000-0000-000000000001"}).encode()


class FaultProxy:
    """`with FaultProxy(upstream_url, [Fault("empty", "GET", "/events/")]) as proxy:` use `proxy.url`."""

    def __init__(self, upstream: str, faults: list[Rule] | None = None, *, slow_seconds: float = 1.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = list(faults or [])
        self.slow_seconds = slow_seconds
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # a short poll: shutdown() waits for the next one (the default 0.5 s, on every proxy a test stops)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def injected(self) -> list[Logged]:
        return [entry for entry in self.log if entry.action != "forwarded"]

    def _fault_for(self, method: str, path: str, body: bytes = b"") -> str:
        with self._lock:
            kind = next((k for f in self.faults if (k := f.pick(method, path, body))), "forwarded")
            self.log.append(Logged(method, path, kind, time.time(), body))
            return kind

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, list[
            tuple[str, str]], bytes]:
        connection = HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are two writes: with Nagle's algorithm the body of a kept-alive answer waits
            # for the client's delayed ACK (~40 ms a call), as in crmsync/sandbox/http.py
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if body:
                    headers["Content-Length"] = str(len(body))
                kind = proxy._fault_for(self.command, self.path, body)
                if kind == "html503":
                    return self._send(503, "Service Unavailable", [("Content-Type", "text/html")],
                                      _html(503, "Service Unavailable"))
                if kind == "unauthorized":
                    return self._send(401, "Unauthorized", [("Content-Type", "application/json")],
                                      _unauthorized_body(self.path))
                if kind == "daily_limit":
                    code, text, refusal = _daily_limit(self.path)
                    return self._send(code, text, [("Content-Type", "application/json")], refusal)
                try:
                    status, reason, upstream_headers, payload = proxy._forward(self.command, self.path, headers, body)
                    if kind == "twice":
                        status, reason, upstream_headers, payload = proxy._forward(self.command, self.path, headers,
                                                                                   body)
                except (OSError, HTTPException):  # the upstream hung up (the sandbox's own `timeout`): so do we
                    return self._reset()
                kept = [(k, v) for k, v in upstream_headers if k.lower() not in HOP_BY_HOP]
                if kind in ("html502", "html504"):
                    code, text = (502, "Bad Gateway") if kind == "html502" else (504, "Gateway Timeout")
                    return self._send(code, text, [("Content-Type", "text/html")], _html(code, text))
                if kind == "reset_before":
                    return self._reset()
                if kind == "reset_during":
                    self._head(status, reason, kept, len(payload))
                    self.wfile.write(payload[:len(payload) // 2])
                    self.wfile.flush()
                    return self._reset()
                if kind == "truncated":
                    payload = payload[:len(payload) // 2]
                elif kind == "empty":
                    status, reason, payload = 200, "OK", b""
                elif kind == "slow":
                    time.sleep(proxy.slow_seconds)
                self._send(status, reason, kept, payload)
                if kind == "close_after":
                    self.close_connection = True

            def _head(self, status: int, reason: str, headers: list[tuple[str, str]], length: int) -> None:
                self.send_response_only(status, reason)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _send(self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes) -> None:
                try:
                    self._head(status, reason, headers, len(payload))
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:  # the client gave up (timeout) and closed: nothing more to do
                    self.close_connection = True

            def _reset(self) -> None:
                """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        return Handler
