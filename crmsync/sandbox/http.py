"""A small HTTP server for the sandboxes: routing, auth, rate limits, faults and call counts.

The CRM-specific apps (HubSpot, Salesforce) only declare routes and handle requests; everything
a real API does around a request (401s, 429 with Retry-After, injected 5xx and timeouts, counting
calls per endpoint) happens here once. Plain HTTP on loopback, one thread per connection.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crmsync.sandbox.faults import Fault, FaultInjector
from crmsync.sandbox.ratelimit import RateLimiter


class HttpError(Exception):
    """Raised by handlers: becomes a response with the app's error shape."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    partial_fault: bool = False

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, f"Invalid input JSON: {exc}") from None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Repeated or comma-separated query values (`properties=a&properties=b` or `properties=a,b`)."""
        return [part for value in self.query.get(name, []) for part in value.split(",") if part]


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    endpoint: str
    internal: bool = False
    batch: bool = False


class SandboxApp:
    """Base of a CRM emulator: subclasses add routes and implement `authenticate` and `error`."""

    def __init__(self, *, faults: str = "", seed: int = 0, rate_limit: str | None = None,
                 timeout_hang_seconds: float = 1.0) -> None:
        self.routes: list[Route] = []
        self.faults = FaultInjector(faults, seed)
        self.limiter = RateLimiter.parse(rate_limit) if rate_limit else None
        self.timeout_hang_seconds = timeout_hang_seconds
        self.calls: Counter[tuple[str, int]] = Counter()
        self.connections = 0  # TCP connections accepted (a client that keeps its connections opens few)
        self.lock = threading.RLock()
        self._count_lock = threading.Lock()

    # --- declared by subclasses ---------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """None when the request may go on; else the 401 to send."""
        return None

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return Response(status, {"message": message, **extra})

    def rate_limit_headers(self, limit: int, remaining: int, window_ms: int) -> dict[str, str]:
        return {}

    def rate_limited(self, retry_after: int) -> Response:
        return Response(429, {"message": "rate limited"}, {"Retry-After": str(retry_after)})

    def fault_response(self, status: int) -> Response:
        return self.error(status, "injected fault")

    # --- routing --------------------------------------------------------------------------------

    def route(self, method: str, path: str, endpoint: str | None = None, *, internal: bool = False,
              batch: bool = False) -> Callable[[Handler], Handler]:
        """Register a handler; `{name}` in the path becomes a named group passed as a keyword."""
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "/?$")

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, regex, handler, endpoint or f"{method} {path}", internal, batch))
            return handler

        return register

    def control_routes(self) -> None:
        """The `/__sandbox/` endpoints every emulator has: call counts (and their reset) and faults."""

        @self.route("GET", "/__sandbox/counts", internal=True)
        def counts(request: Request) -> Response:
            return Response(200, {"calls": self.call_counts(), "by_status": self.call_counts_by_status(),
                                  "faults": {f.value: n for f, n in self.faults.injected.items()},
                                  **self.extra_counts()})

        @self.route("POST", "/__sandbox/counts/reset", internal=True)
        def reset_counts(request: Request) -> Response:
            self.reset_counts()
            return Response(200, {"reset": True})

        @self.route("POST", "/__sandbox/faults", internal=True)
        def faults(request: Request) -> Response:
            body = request.json()
            try:
                self.faults.set(str(body.get("spec", "")), body.get("seed"))
            except ValueError as exc:
                raise HttpError(400, str(exc)) from None
            return Response(200, {"faults": body.get("spec", "")})

    def extra_counts(self) -> dict[str, Any]:
        return {}

    def call_counts(self) -> dict[str, int]:
        """Calls per endpoint (all statuses), for comparing with the minimum a task needs."""
        out: Counter[str] = Counter()
        with self._count_lock:
            for (endpoint, _status), n in self.calls.items():
                out[endpoint] += n
        return dict(out)

    def call_counts_by_status(self) -> list[dict[str, Any]]:
        with self._count_lock:
            return [{"endpoint": e, "status": s, "count": n} for (e, s), n in sorted(self.calls.items())]

    def reset_counts(self) -> None:
        with self._count_lock:
            self.calls.clear()

    def dispatch(self, request: Request) -> Response | None:
        """The response to send, or None to drop the connection (an injected timeout)."""
        route, params, allowed = self._match(request)
        if route is None:
            if allowed:
                return self.error(405, f"Method {request.method} not allowed on {request.path}")
            return self.error(404, f"No route for {request.method} {request.path}")
        if route.internal:
            return self._run(route, request, params)
        response = self._guarded(route, request, params)
        with self._count_lock:
            self.calls[(route.endpoint, response.status if response is not None else 0)] += 1
        return response

    def _match(self, request: Request) -> tuple[Route | None, dict[str, str], bool]:
        allowed = False
        for route in self.routes:
            found = route.pattern.match(request.path)
            if found:
                if route.method == request.method:
                    return route, found.groupdict(), True
                allowed = True
        return None, {}, allowed

    def _guarded(self, route: Route, request: Request, params: dict[str, str]) -> Response | None:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        extra_headers: dict[str, str] = {}
        if self.limiter is not None:
            allowed, remaining, retry_after = self.limiter.take()
            if not allowed:
                response = self.rate_limited(retry_after)
                response.headers.update(self.rate_limit_headers(self.limiter.limit, 0, self.limiter.window_ms))
                return response
            extra_headers = self.rate_limit_headers(self.limiter.limit, remaining, self.limiter.window_ms)
        fault = self.faults.draw(batch=route.batch)
        if fault is Fault.TIMEOUT:
            time.sleep(self.timeout_hang_seconds)
            return None
        if fault in (Fault.PARTIAL, Fault.LOCKED):  # per-record failures inside a batch answer
            request.partial_fault = True
        elif fault is not None:
            response = self.fault_response(int(fault.value))
            response.headers.update(extra_headers)
            return response
        response = self._run(route, request, params)
        response.headers.update(extra_headers)
        return response

    def _run(self, route: Route, request: Request, params: dict[str, str]) -> Response:
        try:
            with self.lock:
                return route.handler(request, **params)
        except HttpError as exc:
            return self.error(exc.status, exc.message, **exc.extra)


class SandboxServer:
    """Serves a SandboxApp on loopback in a background thread: `with SandboxServer(app) as s: s.url`."""

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        handler = _handler_for(app)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxServer:
        # a short poll: stop() waits for the next one (the default 0.5 s, on every sandbox a test or the demo stops)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(app: SandboxApp) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: without it a kept-alive answer waits ~40 ms

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo
            return

        def setup(self) -> None:  # once per accepted connection (socketserver.StreamRequestHandler)
            super().setup()
            with app._count_lock:
                app.connections += 1

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
            response = app.dispatch(request)
            if response is None:  # an injected timeout: hang up without answering
                self.close_connection = True
                return
            payload = response.encoded()
            self.send_response(response.status)
            if payload or response.status not in (204, 304):
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return _Handler
