"""The daemon's HTTP port: /healthz, /metrics and the HubSpot webhook receiver, an ASGI app under uvicorn.

It faces the internet (HubSpot posts webhooks to a public HTTPS URL), so nothing a client sends can
take more than a bounded share of the process:

- at most `max_connections` open connections: past it, the connection that has waited longest for a
  request (slow or idle) is closed to make room, or the new one when all are in a request (uvicorn's
  `limit_concurrency` answers 503 only once a request has arrived, which bounds no idle connection);
- a request's head and body must arrive within `request_timeout_seconds` of the connection opening
  (or of the first byte after a keep-alive pause), idle keep-alive connections close after
  `keep_alive_seconds`, and a request head past 16 KiB is refused (h11's limit, with reads of 16 KiB):
  slow clients are dropped;
- a body is not read until the app asks for it (reading pauses after the head), never buffered past
  `max_body_bytes` (413, checked against Content-Length before reading, then counted while
  streaming), at most `BODY_SLOTS` bodies are read at once, and only on the webhook path once its
  headers pass the timestamp and signature pre-checks: a connection holds at most one 16 KiB read;
- uvicorn's log records go through crmsync's logging (JSON), never as plain-text tracebacks.

uvicorn runs in a thread with its own event loop; `stop()` (from the daemon's SIGTERM handling)
stops it and waits for the thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import resource
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from crmsync.errors import ConfigError
from crmsync.settings import HttpSettings

log = logging.getLogger("crmsync.http")
BODY_SLOTS = 8
HEAD_LIMIT = 16 * 1024
READ_SIZE = 16 * 1024
FD_RESERVE = 128  # files the daemon keeps for its store, CRM calls and logs
WEBHOOK_PATH = "/webhooks/hubspot"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Routes:
    """What the port serves, as plain callables (the daemon provides them)."""

    health: Callable[[], tuple[bool, dict[str, Any]]]
    metrics: Callable[[], bytes]
    refused: Callable[[str], None]  # counts a refusal by reason: evicted, connections, timeout, too_large
    # headers -> a status before the body is read, or None to go on
    webhook_precheck: Callable[[Mapping[str, str]], int | None] | None = None
    # (headers, scheme, path, query, body) -> the status
    webhook: Callable[[Mapping[str, str], str, str, str, bytes], int] | None = None


class App:
    """The ASGI application."""

    def __init__(self, routes: Routes, settings: HttpSettings) -> None:
        self.routes = routes
        self.max_body = settings.max_body_bytes
        token = settings.metrics_token
        self.metrics_token = token.get_secret_value() if token is not None else None
        self.body_slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if path == "/healthz" and method in ("GET", "HEAD"):
            ok, body = self.routes.health()
            await _answer(send, 200 if ok else 503, json.dumps(body).encode())
        elif path == "/metrics" and method in ("GET", "HEAD"):
            if not self._may_read_metrics(headers):
                await _answer(send, 401, b'{"error": "a bearer token is required"}',
                              [(b"www-authenticate", b'Bearer realm="metrics"')])
                return
            exposition = await asyncio.get_running_loop().run_in_executor(None, self.routes.metrics)
            await _answer(send, 200, exposition, content_type=b"text/plain; version=0.0.4")
        elif path == WEBHOOK_PATH and self.routes.webhook is not None:
            if method != "POST":
                await _answer(send, 405, b'{"error": "method not allowed"}', close=True)
                return
            await self._webhook(scope, headers, receive, send)
        else:
            await _answer(send, 404, b'{"error": "not found"}', close=method not in ("GET", "HEAD"))

    def _may_read_metrics(self, headers: Mapping[str, str]) -> bool:
        if self.metrics_token is None:
            return True
        given = headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.metrics_token}".encode())

    async def _webhook(self, scope: Scope, headers: Mapping[str, str], receive: Receive, send: Send) -> None:
        assert self.routes.webhook is not None and self.routes.webhook_precheck is not None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or len(length) > 12):
            await _answer(send, 400, b'{"error": "bad Content-Length"}', close=True)
            return
        if length is not None and int(length) > self.max_body:
            self.routes.refused("too_large")
            await _answer(send, 413, b'{"error": "body too large"}', close=True)
            return
        refused = self.routes.webhook_precheck(headers)
        if refused is not None:
            await _answer(send, refused, b'{"error": "refused"}', close=True)
            return
        if self.body_slots is None:
            self.body_slots = asyncio.Semaphore(BODY_SLOTS)
        try:
            async with self.body_slots:
                body = await self._read_body(receive)
        except _Disconnected:
            return
        if body is None:
            self.routes.refused("too_large")
            await _answer(send, 413, b'{"error": "body too large"}', close=True)
            return
        scheme, query = scope["scheme"], scope["query_string"].decode("latin-1")
        status = await asyncio.get_running_loop().run_in_executor(
            None, self.routes.webhook, headers, scheme, scope["path"], query, body)
        await _answer(send, status, b"{}")

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The body; None once it passes the cap."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Disconnected(Exception):
    """The client went away before its body was in."""


async def _answer(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None, *,
                  content_type: bytes = b"application/json", close: bool = False) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    if close:  # the rest of the request is not read: do not keep the connection
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request to arrive, and a connection cap that makes
    room by closing the connection that has waited longest for a request (slow or idle): a flood of
    slow connections cannot lock out a quick request such as /healthz."""

    max_connections: int = 1024
    request_timeout: float = 10.0
    refused: Callable[[str], None] = staticmethod(lambda reason: None)
    waiting: dict[GuardedH11Protocol, None] = {}  # noqa: RUF012 - one per server (HttpServer), oldest first
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio reads up to 256 KiB a time (its transports' `max_size`): one read is what a connection
        # buffers before anything is checked, so keep it to the head limit
        if hasattr(transport, "max_size"):
            transport.max_size = READ_SIZE
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            oldest = next(iter(self.waiting), None)
            if oldest is None:  # every other connection is in a request: this one goes
                self._close("connections")
                return
            oldest._close("evicted")
        self._wait()

    def data_received(self, data: bytes) -> None:
        if self.deadline is None and self.conn.their_state is h11.IDLE:
            self._wait()  # a new request after a keep-alive pause
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY and self.cycle is not None and not self.cycle.response_started:
            self.flow.pause_reading()  # the body waits in the client's socket until the app asks for it
        elif self.conn.their_state is not h11.IDLE:
            self._busy()  # the request is in (or the connection is done)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            self.waiting[self] = None  # idle between requests: uvicorn's keep-alive timeout closes it
        elif self.conn.their_state is h11.SEND_BODY:
            self._wait()  # a pipelined request is arriving

    def connection_lost(self, exc: Exception | None) -> None:
        self._busy()
        super().connection_lost(exc)

    def _wait(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(self.request_timeout, self._timed_out)
        self.waiting[self] = None

    def _busy(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.waiting.pop(self, None)

    def _close(self, reason: str) -> None:
        self._busy()
        self.refused(reason)
        self.transport.close()

    def _timed_out(self) -> None:
        self.deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._close("timeout")


class HttpServer:
    """uvicorn on its own thread and event loop, listening on a socket bound here (so a port in use
    is one clear error at start-up)."""

    def __init__(self, routes: Routes, settings: HttpSettings) -> None:
        self.settings = settings
        limit = connection_cap(settings.max_connections)
        protocol = type("CrmsyncH11Protocol", (GuardedH11Protocol,), {
            "max_connections": limit, "request_timeout": settings.request_timeout_seconds,
            "refused": staticmethod(routes.refused), "waiting": {}})
        config = uvicorn.Config(
            App(routes, settings), http=protocol, ws="none", lifespan="off", interface="asgi3",
            log_config=None, access_log=False, server_header=False, proxy_headers=False,
            timeout_keep_alive=settings.keep_alive_seconds, timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=HEAD_LIMIT, backlog=min(2048, limit))
        self.server = uvicorn.Server(config)
        self.socket: socket.socket | None = None
        self.thread: threading.Thread | None = None
        route_uvicorn_logs()

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1]) if self.socket else 0

    def start(self) -> None:
        self.socket = listen(self.settings.host, self.settings.port)
        self.thread = threading.Thread(target=self._run, name="crmsync-http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.socket is not None:
            self.socket.close()

    def _run(self) -> None:
        assert self.socket is not None
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_loop_error)
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.socket]))
        except BaseException as exc:  # uvicorn exits with SystemExit on a startup failure
            log.error("the HTTP server stopped", extra={"error": exc.__class__.__name__})
        finally:
            loop.close()


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} (CRMSYNC_HTTP__HOST / CRMSYNC_HTTP__PORT): "
                          f"{exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def connection_cap(wanted: int) -> int:
    """`wanted`, or fewer when the process may not open that many files: the soft limit is raised to the
    hard one first, and `FD_RESERVE` files stay free for the store and the CRM calls."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + FD_RESERVE)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    room = wanted if soft == resource.RLIM_INFINITY else max(1, soft - FD_RESERVE)
    if room < wanted:
        log.warning("fewer HTTP connections than CRMSYNC_HTTP__MAX_CONNECTIONS: the open-file limit is low",
                    extra={"max_connections": room, "open_file_limit": soft})
    return min(wanted, room)


class _Forward(logging.Handler):
    """uvicorn's records, re-emitted under crmsync.http.* so crmsync's handlers format them."""

    def emit(self, record: logging.LogRecord) -> None:
        record.name = f"crmsync.http.{record.name}"
        record.__dict__.pop("color_message", None)
        logging.getLogger(record.name).handle(record)


def route_uvicorn_logs() -> None:
    """uvicorn's warnings and errors as crmsync log records (its access log stays off)."""
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.handlers[:] = [_Forward()]
    uvicorn_logger.propagate = False
    uvicorn_logger.setLevel(logging.WARNING)
    for name in ("uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    error = context.get("exception")
    log.warning("HTTP event loop error", extra={"detail": str(context.get("message", ""))[:200],
                                                "error": error.__class__.__name__ if error else None})
