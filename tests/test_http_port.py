"""The daemon's HTTP port against hostile clients (issue 15): `crmsync run` in its own process, attacked
over loopback from this one. Big bodies are refused before they are read (RSS measured in /proc),
slow connections are closed by the timeouts while /healthz and the sync go on, connections beyond the
cap are closed at once, and whatever arrives, stderr carries JSON lines only."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmsync.crms.hubspot.sandbox.api import HubSpotApp
from tests.builders import ROOT
from tests.hubspot_fixtures import TOKEN, hubspot
from tests.test_daemon import wait_for

MB = 1024 * 1024
PUBLIC_URL = "https://crmsync.example.com/webhooks/hubspot"


@dataclass
class Served:
    app: HubSpotApp
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def rss(self) -> int:
        """Resident set size of the daemon, in bytes (/proc/PID/status VmRSS)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return parse(read_all(sock))

    def metric(self, name: str) -> float:
        _status, body = self.get("/metrics")
        line = next((line for line in body.decode().splitlines() if line.startswith(name + " ")), None)
        return float(line.split()[-1]) if line else 0.0


@contextmanager
def daemon(tmp_path: Path, **http: str) -> Iterator[Served]:
    with hubspot(10, real_clock=True) as (app, url):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url,
                    "CRMSYNC_HUBSPOT__APP_SECRET": "app-secret", "CRMSYNC_HUBSPOT__WEBHOOK_URL": PUBLIC_URL,
                    "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'port.db'}", "CRMSYNC_HTTP__PORT": "0",
                    "CRMSYNC_SYNC__INTERVAL_SECONDS": "1", "CRMSYNC_LOG_FORMAT": "json"})
        env.update({f"CRMSYNC_HTTP__{key.upper()}": value for key, value in http.items()})
        log = tmp_path / "daemon.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            port = wait_for(lambda: started_port(log), what="the daemon's 'daemon started' line")
            yield Served(app, process, port, log)
            process.terminate()
            assert process.wait(timeout=20) == 0  # SIGTERM stops the port with the rest: exit 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def started_port(log: Path) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        if '"daemon started"' in line:
            return int(json.loads(line)["http"].rsplit(":", 1)[1])
    return None


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def post_streaming(port: int, headers: str, total: int, *, chunked: bool, measure: Served) -> tuple[int, int, int]:
    """Send a POST of `total` bytes, as fast as the server takes them, until it answers. Returns the
    status, the bytes sent and the daemon's largest RSS seen while sending."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(f"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\n{framing}\r\n{headers}\r\n".encode())
    piece = b"[" + b" " * (256 * 1024 - 1)
    frame = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
    sent, peak = 0, measure.rss()
    deadline = time.monotonic() + 60
    try:
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                break  # the server answered (or closed)
            if writable:
                sent += sock.send(frame)
                peak = max(peak, measure.rss())
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while we were still sending: read what it said
    response = b""
    try:
        while chunk := sock.recv(65536):
            response += chunk
            if b"\r\n\r\n" in response:
                break
    except ConnectionResetError:
        pass
    sock.close()
    peak = max(peak, measure.rss())
    return (parse(response)[0] if response else 0), sent, peak


def test_a_100_mb_unsigned_post_gets_413_before_it_is_read(tmp_path: Path) -> None:
    with daemon(tmp_path) as served:
        assert served.get("/healthz")[0] == 200
        before = served.rss()
        status, sent, peak = post_streaming(served.port, "", 100 * MB, chunked=False, measure=served)
        assert status == 413
        stamp = str(int(time.time() * 1000))  # signature header and a fresh timestamp: the body is read...
        signed = f"X-HubSpot-Request-Timestamp: {stamp}\r\nX-HubSpot-Signature-v3: forged\r\n"
        chunked_status, chunked_sent, chunked_peak = post_streaming(served.port, signed, 100 * MB, chunked=True,
                                                                    measure=served)
        assert chunked_status == 413  # ...and counted as it streams, refused past 1 MiB
        growth = max(peak, chunked_peak) - before
        print(f"RSS before {before / MB:.1f} MB, peak {max(peak, chunked_peak) / MB:.1f} MB "
              f"(+{growth / MB:.1f} MB); sent {sent / MB:.1f} MB with Content-Length, "
              f"{chunked_sent / MB:.1f} MB chunked")
        assert growth < 20 * MB
        assert chunked_sent < 100 * MB and served.metric('crmsync_http_refused_total{reason="too_large"}') == 2
        assert served.get("/healthz")[0] == 200


def test_many_connections_with_forged_heads_and_big_bodies_stay_small(tmp_path: Path) -> None:
    """300 clients each pass the header pre-checks (a fresh timestamp, any signature) and push 900 KB:
    only 8 bodies are read at a time and the others wait in the clients' sockets, not in the daemon."""
    with daemon(tmp_path, request_timeout_seconds="4") as served:
        assert served.get("/healthz")[0] == 200
        before = peak = served.rss()
        stamp = int(time.time() * 1000)
        head = (b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                b"X-HubSpot-Signature-v3: forged\r\nX-HubSpot-Request-Timestamp: %d\r\n\r\n" % stamp)
        clients = []
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.send(head + b"[" + b" " * 900_000)
            clients.append(sock)
            peak = max(peak, served.rss())

        def all_closed() -> bool:
            nonlocal peak
            peak = max(peak, served.rss())
            return all(closed_by_server(sock) or answered(sock) for sock in clients)

        try:
            wait_for(all_closed, seconds=60, what="every client answered or timed out")
        finally:
            for sock in clients:
                sock.close()
        print(f"300 forged 900 KB posts: RSS +{(peak - before) / MB:.1f} MB at the peak")
        assert peak - before < 40 * MB


def answered(sock: socket.socket) -> bool:
    try:
        return sock.recv(12, socket.MSG_PEEK).startswith(b"HTTP/1.1 ")
    except (BlockingIOError, ConnectionResetError):
        return False


@pytest.fixture
def many_files() -> Iterator[int]:
    """Raise this process's open-file limit for the client side; the number of slow connections to open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield min(1000, wanted - 200)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_slow(port: int, count: int) -> list[socket.socket]:
    """Connections that never finish their request: silent, half a head, or a head that passes the webhook
    pre-checks (so the body is waited for) and part of a body."""
    stamp = int(time.time() * 1000)
    partial = [b"", b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nX-Hub",
               b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nX-HubSpot-Signature-v3: s\r\n"
               b"X-HubSpot-Request-Timestamp: %d\r\n\r\n[{\"eventId\": 1" % stamp]
    sockets = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if partial[i % 3]:
            sock.sendall(partial[i % 3])
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    poller = select.poll()  # not select.select: its descriptors must be below 1,024 (FD_SETSIZE)
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(65536, socket.MSG_PEEK) == b""
    except (ConnectionResetError, BlockingIOError):
        return True


def test_1000_slow_connections_neither_stop_healthz_nor_the_sync_and_are_timed_out(
        tmp_path: Path, many_files: int) -> None:
    with daemon(tmp_path, request_timeout_seconds="8", max_connections="1100") as served:
        searches = wait_for(lambda: served.app.call_counts().get("objects.search"), what="a first pull")
        opened = time.monotonic()
        slow = open_slow(served.port, many_files)
        try:
            status, body = wait_for(lambda: served.get("/healthz"), what="/healthz during the attack")
            answered = time.monotonic() - opened
            still_open = sum(not closed_by_server(sock) for sock in slow)
            assert status == 200 and json.loads(body)["ok"] is True
            wait_for(lambda: served.app.call_counts().get("objects.search", 0) > searches, seconds=30,
                     what="a sync pass during the attack")
            wait_for(lambda: all(closed_by_server(sock) for sock in slow), seconds=60,
                     what="the server to close every slow connection")
            closed = time.monotonic() - opened
        finally:
            for sock in slow:
                sock.close()
        print(f"{len(slow)} slow connections: /healthz answered after {answered:.2f} s with {still_open} of them "
              f"open; all closed by the server {closed:.1f} s after they opened")
        assert still_open == len(slow)  # /healthz answered while every slow connection was held
        assert served.metric('crmsync_http_refused_total{reason="timeout"}') == len(slow)
        assert served.metric('crmsync_http_refused_total{reason="connections"}') == 0


def test_past_the_cap_the_longest_waiting_connections_make_room(tmp_path: Path) -> None:
    """The issue's case: more slow connections than the port takes (there, an open-file limit of 1,024).
    /healthz still answers at once: the slow connections waiting longest are closed to make room, long
    before the request timeout would."""
    with daemon(tmp_path, request_timeout_seconds="120", max_connections="50") as served:
        slow = open_slow(served.port, 200)
        try:
            status, _body = wait_for(lambda: served.get("/healthz"), seconds=20, what="/healthz past the cap")
            assert status == 200
            evicted = wait_for(lambda: [closed_by_server(sock) for sock in slow].count(True) >= 150 or None,
                               seconds=20, what="the oldest slow connections to be closed")
            assert evicted
            newest = slow[-40:]  # the newest ones are the ones still held
            assert sum(closed_by_server(sock) for sock in newest) <= 2
        finally:
            for sock in slow:
                sock.close()
        assert served.metric('crmsync_http_refused_total{reason="evicted"}') >= 150
        assert served.metric('crmsync_http_refused_total{reason="timeout"}') == 0


def test_malformed_requests_get_answers_and_the_log_stays_json(tmp_path: Path) -> None:
    garbage = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello
               b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n",  # a 70 KB head
               b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
               b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
               b"GARBAGE\r\n\r\n", b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 1000 + b"\r\n\r\n",
               b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"]
    with daemon(tmp_path, request_timeout_seconds="3") as served:
        answers = []
        for request in garbage:
            with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
                try:
                    sock.sendall(request)
                    answers.append(sock.recv(12))
                except ConnectionResetError:
                    answers.append(b"reset")
        # a TLS hello may be dropped without an answer; every HTTP-shaped request gets a 4xx
        assert answers[0].startswith((b"HTTP/1.1 4", b"reset")) or answers[0] == b"", answers
        assert all(answer.startswith(b"HTTP/1.1 4") for answer in answers[1:]), answers
        assert served.get("/healthz")[0] == 200
    lines = served.log.read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)  # no plain-text traceback, ever
    assert not any("Traceback" in line for line in lines)


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid"])
def test_a_port_that_cannot_be_listened_on_is_one_line_and_exit_2(tmp_path: Path, host: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        env.update({"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": "http://127.0.0.1:9",
                    "CRMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "CRMSYNC_HTTP__HOST": host,
                    "CRMSYNC_HTTP__PORT": str(taken.getsockname()[1])})
        result = subprocess.run([sys.executable, "-m", "crmsync", "run"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot listen on"), result.stderr
