"""Nothing lost, nothing written twice: SIGKILL mid-run, injected faults, and what reaches Sentry."""

from __future__ import annotations

import gzip
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from crmsync.crms.hubspot.sandbox import HubSpotApp
from crmsync.store import Store
from crmsync.sync import SyncPass
from tests.builders import ROOT, scaled
from tests.hubspot_fixtures import DEFS, TOKEN, FakeClock, connector, fast_retry, hubspot
from tests.test_cli import run

OWNED = ("lifecyclestage", "hs_lead_status", "crmsync_stage", "crmsync_fit", "crmsync_fit_reasons",
         "crmsync_sql_blocked_reason", "crmsync_dq_reason_status", "crmsync_definitions_version", "crmsync_dq_reason")
STAMPS = ("crmsync_mql_at", "crmsync_sal_at", "crmsync_sql_at", "crmsync_recycled_at")


def crm_state(app: HubSpotApp) -> dict[str, Any]:
    """What crmsync is responsible for in the portal; timestamps by presence (runs happen at different times)."""
    contacts = {cid: tuple(r.properties.get(p) for p in OWNED) + tuple(bool(r.properties.get(p)) for p in STAMPS)
                for cid, r in app.portal.records["contacts"].items()}
    linked = {tid: cid for cid, tids in app.portal.associations["tasks"].items() for tid in tids}
    tasks = sorted((linked.get(tid), r.properties.get("hs_task_subject"), r.properties.get("hs_task_body"))
                   for tid, r in app.portal.records["tasks"].items())
    return {"contacts": contacts, "tasks": tasks}


def env(url: str, db: Path) -> dict[str, str]:
    return {"CRMSYNC_HUBSPOT__ACCESS_TOKEN": TOKEN, "CRMSYNC_HUBSPOT__BASE_URL": url,
            "CRMSYNC_DATABASE_URL": f"sqlite:///{db}", "CRMSYNC_LOG_FORMAT": "json"}


# A process that imports crmsync once, then forks one `crmsync sync --once` per line of environment it
# reads (JSON), and writes the child's pid, then its wait status, one line each. Forked from a process
# without threads, each child is a real `crmsync sync --once` process of its own (its own store
# connection, its own sockets), killed by a real SIGKILL, as `python -m crmsync` would be; it only skips
# the ~1.1 s of CPU that importing crmsync costs a fresh interpreter, paid once instead of per trial.
FORK_SERVER = """
import json, os, sys
import crmsync.cli, crmsync.connectors.registry, crmsync.store, crmsync.sync  # what a sync imports
for line in sys.stdin:
    env = json.loads(line)
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["crmsync", "sync", "--once"]
        code = 0
        try:
            crmsync.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class Daemons:
    """`crmsync sync --once` processes forked from one that imported crmsync (FORK_SERVER); one at a time."""

    def __init__(self) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], cwd=ROOT, env=clean, bufsize=0,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""

    def start(self, env: dict[str, str]) -> int:
        """A new `crmsync sync --once` with these environment variables (the whole environment): its pid."""
        assert self.server.stdin is not None
        self.server.stdin.write((json.dumps(env) + "\n").encode())
        line = self._line(timeout=30)  # the first waits for the server's imports
        assert line is not None, "the fork server did not start a daemon"
        return int(line)

    def status(self, timeout: float = 0.0) -> int | None:
        """The running daemon's wait status once it has ended (None: still running after `timeout` s)."""
        line = self._line(timeout)
        return None if line is None else int(line)

    def _line(self, timeout: float) -> str | None:
        assert self.server.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.server.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.server.stdout.fileno(), 4096)
            assert chunk, f"the fork server ended (exit {self.server.wait()})"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        assert self.server.stdin is not None
        self.server.stdin.close()
        self.server.wait(timeout=10)  # reaped: its children's CPU counts in this process's children


def test_sigkill_at_random_points_ends_in_the_same_state(tmp_path: Path) -> None:
    """A `crmsync sync --once` process SIGKILLed at a chosen call of its run, then restarted, ends the
    CRM in the state of an uninterrupted run: one kill in each part of the run (early, middle, late).
    The processes are forked from one that imported crmsync (`Daemons`): real processes, real kills."""
    # two pages of writes or more (HubSpot's batch update takes 100 records): kills land between and
    # inside them; 150 seeded contacts make 148 writes (checked below), 200 or 400 cost more CPU per run
    contacts = scaled(ci=150, nightly=400)
    with hubspot(contacts, real_clock=True) as (reference_app, url):
        assert run("sync", "--once", env=env(url, tmp_path / "ref.db")).returncode == 0
        expected = crm_state(reference_app)
        calls_in_a_run = sum(reference_app.call_counts().values())
    written = [c for c in expected["contacts"].values() if c[OWNED.index("crmsync_definitions_version")]]
    assert len(written) > 100, len(written)
    assert len(expected["tasks"]) == len(set(expected["tasks"]))
    rnd = random.Random(2026)
    killed_mid_run = 0
    trials = scaled(ci=3, nightly=10)
    daemons = Daemons()
    try:
        for trial in range(trials):
            db = tmp_path / f"trial{trial}.db"
            with hubspot(contacts, real_clock=True) as (app, url):
                full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}, **env(url, db)}
                pid = daemons.start(full_env)
                deadline = time.monotonic() + 30
                span = (calls_in_a_run - 1) / trials  # one kill in each part of the run: early, middle, late
                target = rnd.randint(1 + int(trial * span), max(1 + int(trial * span), int((trial + 1) * span)))
                status = None
                while (status := daemons.status()) is None and sum(app.call_counts().values()) < target \
                        and time.monotonic() < deadline:
                    time.sleep(0.002)
                if status is None:
                    os.kill(pid, signal.SIGKILL)
                    status = daemons.status(timeout=10)
                    assert status is not None, f"trial {trial}: the daemon outlived SIGKILL"
                if os.WIFSIGNALED(status):
                    assert os.WTERMSIG(status) == signal.SIGKILL
                    killed_mid_run += 1
                else:
                    assert os.waitstatus_to_exitcode(status) == 0, f"trial {trial}: the daemon failed on its own"
                for _ in range(2):  # the restart, then a pass on crmsync's own writes
                    result = run("sync", "--once", env=env(url, db))
                    assert result.returncode == 0, result.stderr
                state = crm_state(app)
                assert state == expected, f"trial {trial}: state differs after a kill at call {target}"
                store = Store.open(f"sqlite:///{db}")
                assert store.outbox_depth() == 0
                assert "running" not in {r["outcome"] for r in store.runs(20)}  # the killed run was closed
    finally:
        daemons.close()
    assert killed_mid_run >= trials - 1


def test_ten_percent_faults_end_in_the_fault_free_state(tmp_path: Path) -> None:
    """A pass with ~10% of its calls failing (429, 5xx, timeouts, partial batch failures) ends the portal
    as a fault-free pass does. The faults drawn depend on the seed and the number of calls: 300 contacts
    (~45 calls) with fault seed 3 draw 5 faults of 4 kinds (429, 500, 503, and a partial failure that
    leaves writes in the outbox for the next flush); nightly's 600 draw 9 of 5 kinds, a timeout among
    them. (600 contacts with seed 5, before, drew neither a partial failure nor a timeout, at twice the
    CPU.) What is drawn is checked below: a change of seed or size that draws less fails, not proves less."""
    contacts = scaled(ci=300, nightly=600)
    # Enterprise: the events API adds its pages to the calls the faults are drawn on
    with hubspot(contacts, seed=11, tier="enterprise") as (clean, url):
        SyncPass(Store.open(f"sqlite:///{tmp_path / 'clean.db'}"), connector(url), DEFS).run()
        expected = crm_state(clean)
    clock = FakeClock()
    faults = "429:0.03,500:0.02,502:0.01,503:0.02,timeout:0.01,207:0.01"
    with hubspot(contacts, seed=11, faults=faults, fault_seed=3, timeout_hang_seconds=0.2, tier="enterprise") \
            as (app, url):
        conn = connector(url, retry=fast_retry(clock, attempts=10), timeout=0.1)
        store = Store.open(f"sqlite:///{tmp_path / 'faulty.db'}")
        SyncPass(store, conn, DEFS).run()
        while store.outbox_depth():  # retriable partial failures left in the outbox go out on the next flush
            SyncPass(store, conn, DEFS).flush()
        injected = {fault.value: n for fault, n in app.faults.injected.items()}
        assert sum(injected.values()) >= 4 and len(injected) >= 4 and "207" in injected, injected
        assert crm_state(app) == expected


def test_the_governor_keeps_below_the_rate_limit() -> None:
    clock = FakeClock()
    with hubspot(2000, rate_limit="10/1s") as (app, url):
        assert app.limiter is not None
        app.limiter.clock = clock
        conn = connector(url, retry=fast_retry(clock))
        conn.governor.share = 0.5
        # batch reads: search answers carry no rate-limit headers (it is paced on its own, test_hubspot_batches)
        found = conn.read(list(app.portal.records["contacts"]))
        assert len(found.contacts) == 2000
        statuses = {row["status"] for row in app.call_counts_by_status()}
        assert statuses == {200}, app.call_counts_by_status()
        assert conn.governor.waited > 0


class FakeSentry:
    """A loopback endpoint that accepts Sentry envelopes and keeps their bodies."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                bodies.append(raw.decode("utf-8", "replace"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"


def test_sentry_events_carry_no_email_token_or_bant_text(tmp_path: Path) -> None:
    sentry = FakeSentry()
    secret_token = "pat-na1-11111111-2222-3333-4444-555555555555"
    with hubspot(30, real_clock=True, token=secret_token) as (app, _url):
        first = next(iter(app.portal.records["contacts"].values()))
        email = first.properties["email"]
        bant = "Inbound demo requests sit for days; they lose roughly a third to slow follow-up"
        script = (
            "import logging, sentry_sdk\n"
            "from crmsync.observability import init_sentry, capture\n"
            f"init_sentry({sentry.dsn!r}, [{secret_token!r}], release='test')\n"
            "from crmsync.errors import RecordError, RetriableError\n"
            f"capture(RecordError('1', 'write refused for {email}: Bearer {secret_token}'))\n"
            f"capture(RetriableError('HubSpot answered 503 for token {secret_token} and {email}'))\n"
            f"logging.getLogger('crmsync.sync').error('bad record %s', {email!r})\n"
            "sentry_sdk.flush(5)\n"
        )
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=full_env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 10
        while len(sentry.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sentry.bodies) >= 2
        payload = "\n".join(sentry.bodies)
        assert "RecordError" in payload and "[email]" in payload
        for leaked in (email, secret_token, bant, email.split("@")[0]):
            assert leaked not in payload
        assert json.loads(sentry.bodies[0].splitlines()[0])  # a real envelope header
    sentry.server.shutdown()
