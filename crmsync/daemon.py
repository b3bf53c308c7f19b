"""`crmsync run`: scheduled incremental syncs per CRM, one replica at a time, with /healthz and /metrics.

Each CRM's sync is an APScheduler job (coalesced, one instance at a time). Before a pass the
daemon takes the stream's lease in the store; a standby replica finds it held and waits, and
takes over once the holder stops renewing it. SIGTERM/SIGINT stop between pages: the pass
flushes its outbox, the lease is released and the process exits 0.

A CRM that refuses with its daily quota (`QuotaError`) is paused until `resume_at`: the pause is kept
in the store (every replica, and a restarted one, honours it), no pass, SLA sweep or webhook batch
of that CRM runs before then, and it is reported once (docs/operations.md, "Daily quota"). Once a
day the retention job drops the inputs behind decisions older than CRMSYNC_INPUTS_RETENTION_DAYS.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from crmsync import retention
from crmsync.connectors import registry
from crmsync.connectors.base import Connector
from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.errors import CrmsyncError, DefinitionsError, FatalError, LeaseLost, QuotaError
from crmsync.metrics import Metrics
from crmsync.observability import capture
from crmsync.reporting.contract import contract_alerts
from crmsync.server import HttpServer, Routes
from crmsync.settings import Settings
from crmsync.store import Store
from crmsync.store.kinds import RunOutcome
from crmsync.sync import PassReport, SyncPass
from crmsync.sync.lease import Lease
from crmsync.sync.sanitize import failure, storable
from crmsync.sync.window import live
from crmsync.webhooks import WebhookIntake

log = logging.getLogger("crmsync.daemon")

RETENTION_EVERY = timedelta(days=1)
RETENTION_FIRST = timedelta(minutes=10)  # after a start: the first passes go first


class Daemon:
    def __init__(self, settings: Settings, definitions: LoadedDefinitions, store: Store,
                 connectors: dict[str, Connector], *, holder: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.definitions = definitions  # CRMSYNC_DEFINITIONS, until a version is activated (`_follow_active`)
        self.unusable: tuple[str, str] | None = None  # an activated version that could not be loaded
        self.store = store
        self.connectors = connectors
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.interval = settings.sync.interval_seconds
        self.lease_ttl = timedelta(seconds=settings.sync.lease_seconds or max(15, 3 * self.interval))
        self.unhealthy_after = settings.sync.unhealthy_after_failed_passes
        self.failed_passes: dict[str, int] = dict.fromkeys(connectors, 0)  # consecutive, per CRM
        self.health_threshold = timedelta(seconds=max(120, 5 * self.interval))
        self.metrics = Metrics()
        self.started_at = clock()
        self.last_success: dict[str, datetime] = {}
        self.pauses: dict[str, tuple[datetime, str]] = {}  # CRMs paused for their quota: (until, why)
        self.resumed_at: dict[str, datetime] = {}  # when a CRM's last pause ended (its health age starts there)
        self.stopping = threading.Event()
        self.leases: dict[str, Lease] = {}
        self.locks = {name: threading.Lock() for name in connectors}  # a CRM's sync and sweep never overlap
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.http: HttpServer | None = None
        self.webhooks = self._webhook_intake()
        for name, connector in connectors.items():
            self._instrument(name, connector)

    def _webhook_intake(self) -> WebhookIntake | None:
        """The intake of the connected CRM whose settings turn its webhooks on (HubSpot's; one at most)."""
        found = next(((crm.name, hooks) for crm in registry.REGISTRY if crm.name in self.connectors
                      and (hooks := crm.webhooks(self.settings)) is not None), None)
        if found is None:
            return None
        name, hooks = found
        return WebhookIntake(hooks.secret, self.store, partial(self.react, name), crm=name,
                             dedupe_days=hooks.dedupe_days, public_url=hooks.public_url,
                             trusted_proxy=self.settings.http.trusted_proxy,
                             count=lambda result: self.metrics.webhooks.labels(result).inc(),
                             erased=lambda n: self.metrics.erased.labels(name, "webhook").inc(n))

    def _instrument(self, name: str, connector: Any) -> None:
        connector.on_call = lambda what, status: self.metrics.api_call(name, what, status)
        retry = getattr(connector, "retry", None)
        if retry is not None:
            connector.retry = replace(retry, on_retry=lambda error, wait: self.metrics.retries.labels(name).inc())
            connector.governor.sleep = connector.retry.sleep

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.http = _serve_http(self)
        for name in self.connectors:
            seconds = registry.get(name).poll_seconds(self.settings)
            self.scheduler.add_job(self.sync, "interval", seconds=seconds, args=[name], id=f"sync:{name}",
                                   coalesce=True, max_instances=1, next_run_time=datetime.now(UTC))
            self.scheduler.add_job(self.sweep, "interval", seconds=self.settings.sync.sla_sweep_seconds, args=[name],
                                   id=f"sla:{name}", coalesce=True, max_instances=1)
        self.scheduler.add_job(self.prune, "interval", seconds=RETENTION_EVERY.total_seconds(), id="retention",
                               coalesce=True, max_instances=1, next_run_time=datetime.now(UTC) + RETENTION_FIRST)
        self.scheduler.start()
        if self.webhooks is not None:
            self.webhooks.start()
        self.contract()
        log.info("daemon started", extra={"holder": self.holder, "crms": sorted(self.connectors),
                                          "interval_seconds": self.interval, "mode": self.settings.mode,
                                          "http": f"{self.settings.http.host}:{self.http_port}",
                                          "definitions": self.definitions.path,
                                          "definitions_version": self.definitions.version})

    @property
    def http_port(self) -> int:
        return self.http.port if self.http else 0

    def stop(self) -> None:
        """Finish the current page, flush, release the leases, stop serving."""
        self.stopping.set()
        if self.webhooks is not None:
            self.webhooks.stop()
        self.scheduler.shutdown(wait=True)
        for name in list(self.leases):
            self.store.release_lease(name, self.holder)
        self.leases.clear()
        if self.http is not None:
            self.http.stop()
        log.info("daemon stopped", extra={"holder": self.holder})

    def run_forever(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.start()
        self.stopping.wait()
        self.stop()
        return 0

    # --- the job --------------------------------------------------------------------------------

    def sync(self, name: str) -> PassReport | None:
        if self.stopping.is_set():
            return None
        with self.locks[name]:
            self._follow_active()
            return self._sync(name)

    def sweep(self, name: str) -> PassReport | None:
        """Move the SLA clocks of this CRM's records (only the replica holding the stream's lease); the
        pass records its own run row (`SyncPass.sweep`)."""
        if self.stopping.is_set() or f"sync:{name}" not in self.leases:
            return None
        with self.locks[name]:
            if self._paused(name):  # the clocks due now stay due: the first sweep after the pause moves them
                return None
            self._follow_active()
            try:
                report = self._pass(name, lease=self.leases.get(f"sync:{name}")).sweep()
            except LeaseLost:  # another replica took over: it sweeps from now on
                self.leases.pop(f"sync:{name}", None)
                return None
            except QuotaError as exc:
                self._pause(name, exc)
                return None
            except CrmsyncError as exc:
                log.warning("SLA sweep failed, will retry", extra={"crm": name, "error": str(exc)})
                capture(exc)
                return None
            self.contract()
            return report

    def react(self, name: str, record_ids: list[str]) -> None:
        """A webhook batch of `name` (the intake's CRM): only the replica holding the stream's lease acts
        on it, with the definitions activated by then (a batch is a pass boundary too). While the CRM is
        paused the batch is left to the first pass after the pause (its cursor has not moved past these
        records)."""
        if self.stopping.is_set() or f"sync:{name}" not in self.leases:
            return
        with self.locks[name]:
            if self._paused(name):
                return
            self._follow_active()
            try:  # the pass records its own run row (`SyncPass.react`), failed ones too
                report = self._pass(name, lease=self.leases.get(f"sync:{name}")).react(record_ids)
            except QuotaError as exc:
                self._pause(name, exc)
                return
            self.metrics.record_pass(report)

    def _follow_active(self) -> None:
        """At a pass boundary: when `crmsync definitions activate` recorded another version than the
        one in use, load its file and use it from this pass on. A file that is missing, invalid or no
        longer holds the activated content is logged once and the current definitions stay."""
        active = self.store.active_definitions()
        if active is None or active["hash"] == self.definitions.content_hash:
            return
        wanted = (str(active["version"]), str(active["hash"]))
        if wanted == self.unusable:
            return
        try:
            loaded = load_activated(active)
        except (DefinitionsError, ValueError) as exc:
            self.unusable = wanted
            log.error("activated definitions not usable; keeping the current ones",
                      extra={"version": wanted[0], "path": active["path"], "error": str(exc)[:500],
                             "using": self.definitions.version})
            return
        log.info("definitions changed", extra={"from": self.definitions.version, "to": loaded.version,
                                               "hash": loaded.content_hash, "path": active["path"]})
        self.definitions = loaded

    def contract(self) -> dict[str, Any]:
        """The contract's figures; a figure below its floor is logged and flagged in /metrics."""
        now = self.clock()
        review = datetime.combine(self.definitions.definitions.governance.next_review_date, datetime.min.time(), UTC)
        self.metrics.review_due.set(review.timestamp())
        self.metrics.review_overdue.set(1 if review < now else 0)
        figures = self.store.contract(now)
        alerts = contract_alerts(figures, self.definitions.definitions.sla)
        for figure, below in alerts.items():
            if below:
                log.warning("contract figure below its floor", extra={"figure": figure, "value": figures[figure]})
        self.metrics.record_contract(figures, alerts)
        return figures

    def _sync(self, name: str) -> PassReport | None:
        lease = Lease.take(self.store, f"sync:{name}", self.holder, self.lease_ttl)
        if lease is None:
            self.leases.pop(f"sync:{name}", None)
            self.metrics.standby.labels(name).set(1)
            log.info("standby: another replica holds the lease", extra={"crm": name})
            return None
        self.leases[lease.name] = lease
        self.metrics.standby.labels(name).set(0)
        if self._paused(name):
            return None
        syncer = self._pass(name, lease=lease, overlap=timedelta(seconds=self.settings.sync.overlap_seconds),
                            progress=lambda _report: self._renew(lease), should_stop=self._should_stop(lease.name))
        try:
            report = syncer.run()
        except LeaseLost as exc:
            self.leases.pop(lease.name, None)
            log.warning("lease lost: stopped before the next write", extra={"crm": name, "error": str(exc)})
            self.metrics.runs.labels(name, RunOutcome.INTERRUPTED).inc()
            return None
        except QuotaError as exc:  # not a failed pass: nothing runs until the quota resets
            self.metrics.runs.labels(name, RunOutcome.FAILED).inc()
            self._pause(name, exc)
            return None
        except Exception as exc:  # every failure is counted; the next tick retries
            self._failed(name, exc)
            return None
        self.metrics.record_pass(report)
        if report.outcome == RunOutcome.OK:
            self.failed_passes[name] = 0
            self.metrics.failed_streak.labels(name).set(0)
            self.last_success[name] = self.clock()
            self.metrics.last_success.labels(name).set(self.clock().timestamp())
        self._gauges()
        return report

    def _pass(self, name: str, **options: Any) -> SyncPass:
        """A pass of this CRM with the daemon's store, definitions, clock and sync settings."""
        return SyncPass(self.store, self.connectors[name], self.definitions, mode=self.settings.mode,
                        clock=self.clock, backlog_before=self.settings.sync.pipeline_backlog_before,
                        recheck_after=self.settings.sync.recheck_after, **options)

    def _failed(self, name: str, exc: Exception) -> None:
        """A failed pass: counted, logged in one line (fatal: needs attention), sent to Sentry."""
        self.failed_passes[name] += 1
        self.metrics.runs.labels(name, RunOutcome.FAILED).inc()
        self.metrics.failed_passes.labels(name).inc()
        self.metrics.failed_streak.labels(name).set(self.failed_passes[name])
        message = "sync failed, needs attention" if isinstance(exc, FatalError) else "sync failed, will retry"
        log.log(logging.ERROR if isinstance(exc, FatalError) else logging.WARNING, message,
                extra={"crm": name, "error": failure(exc, 500),
                       "consecutive_failures": self.failed_passes[name]})
        capture(exc)

    def _pause(self, name: str, exc: QuotaError) -> None:
        """The CRM's daily quota is used up: pause it until `resume_at` (in the store, for every replica
        and across restarts). A new pause is reported once: one ERROR line and one Sentry event."""
        why = storable(str(exc)).split("; paused until")[0]
        new = self.store.pause(name, exc.resume_at, why, self.clock())
        self.pauses[name] = self.store.paused(name, self.clock()) or (exc.resume_at, why)  # an extension
        self.metrics.paused.labels(name).set(1)
        if new:
            log.error(f"{name} paused until {exc.resume_at:%Y-%m-%d %H:%M} UTC: its daily API quota is used up",
                      extra={"crm": name, "paused_until": exc.resume_at.isoformat(), "error": why[:500]})
            capture(exc)

    def _paused(self, name: str) -> bool:
        """Whether the CRM is paused now, as the store says. A pause found there (set by another
        replica, or before a restart) is logged once; the first check after a pause ends lifts it."""
        now = self.clock()
        pause = self.store.paused(name, now)
        self.metrics.paused.labels(name).set(1 if pause else 0)
        known = self.pauses.get(name)
        if pause is not None:
            if known is None:
                log.info(f"{name} paused until {pause[0]:%Y-%m-%d %H:%M} UTC (found in the store)",
                         extra={"crm": name, "paused_until": pause[0].isoformat(), "error": pause[1]})
            self.pauses[name] = pause
        elif known is not None:
            self.resumed_at[name] = known[0]  # first: /healthz always sees one or the other
            del self.pauses[name]
            self.store.resume(name, now)
            log.info(f"{name} quota pause over: syncing again", extra={"crm": name})
        return pause is not None

    def _renew(self, lease: Lease) -> None:
        try:
            lease.hold()
        except LeaseLost:
            self.leases.pop(lease.name, None)

    def _should_stop(self, lease: str) -> Callable[[], bool]:
        return lambda: self.stopping.is_set() or lease not in self.leases

    def _gauges(self) -> None:
        now = self.clock()
        for cursor in self.store.cursors():  # every stream a pass keeps reading, each on its own cursor
            if live(cursor["stream"]):
                lag = (now - cursor["position"]).total_seconds()
                self.metrics.lag.labels(cursor["crm"], cursor["stream"]).set(lag)
        self.metrics.outbox.set(self.store.outbox_depth())
        self.metrics.quarantined.set(self.store.quarantine_count())
        for name in self.connectors:  # from the store: a standby replica shows the pause too
            self.metrics.paused.labels(name).set(1 if self.store.paused(name, now) else 0)

    # --- health ---------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while every CRM this replica syncs had a recent success (or the start, or the end of
        its last quota pause, before the first) and fewer than `unhealthy_after_failed_passes` failed
        passes in a row. A CRM paused for its daily quota is degraded, not unhealthy: a restart cannot
        bring the quota back (docs/operations.md, "Daily quota")."""
        now = self.clock()
        standby = {name for name in self.connectors if f"sync:{name}" not in self.leases}
        paused = {name: pause for name, pause in dict(self.pauses).items() if pause[0] > now}
        ages = {name: (now - max(self.last_success.get(name, self.started_at),
                                 self.resumed_at.get(name, self.started_at))).total_seconds()
                for name in self.connectors if name not in standby and name not in paused}
        failing = sorted(name for name, n in self.failed_passes.items() if n >= self.unhealthy_after)
        ok = not failing and all(age <= self.health_threshold.total_seconds() for age in ages.values())
        return ok, {"ok": ok, "degraded": bool(paused), "holder": self.holder, "last_success_age_seconds": ages,
                    "standby": sorted(standby), "threshold_seconds": self.health_threshold.total_seconds(),
                    "consecutive_failed_passes": dict(self.failed_passes), "failing": failing,
                    "paused": {name: {"until": until.isoformat(), "why": why}
                               for name, (until, why) in sorted(paused.items())}}

    # --- retention ------------------------------------------------------------------------------

    def prune(self) -> int:
        """The daily retention job (what `crmsync prune` does: crmsync/retention.py), between passes of
        every CRM. Returns the input sets dropped."""
        with ExitStack() as held:
            for name in sorted(self.locks):
                held.enter_context(self.locks[name])
            try:
                pruned = retention.prune(self.store, self.settings, self.clock())
            except Exception as exc:  # the store is down: tomorrow's run tries again
                log.warning("retention failed, will retry tomorrow", extra={"error": storable(str(exc))[:500]})
                capture(exc)
                return 0
        self.metrics.pruned.inc(pruned.inputs)
        log.info("retention applied", extra={"dropped_inputs": pruned.inputs, "dropped_runs": pruned.runs,
                                             "retention_days": self.settings.inputs_retention_days,
                                             "runs_retention_days": self.settings.runs_retention_days})
        return pruned.inputs


def _serve_http(daemon: Daemon) -> HttpServer:
    """/healthz, /metrics and the webhook receiver on CRMSYNC_HTTP__HOST:PORT (crmsync.server)."""

    def metrics() -> bytes:
        daemon._gauges()
        return daemon.metrics.exposition()

    intake = daemon.webhooks
    routes = Routes(health=daemon.healthy, metrics=metrics,
                    refused=lambda reason: daemon.metrics.http_refused.labels(reason).inc(),
                    webhook_precheck=intake.precheck if intake else None, webhook=intake.request if intake else None)
    server = HttpServer(routes, daemon.settings.http)
    server.start()
    return server


def load_activated(active: dict[str, Any]) -> LoadedDefinitions:
    """The definitions file of an activated version (a row of `Store.active_definitions`), checked to
    still hold the activated content. Raises DefinitionsError or ValueError when it cannot be used."""
    loaded = load_definitions(Path(active["path"]))
    if loaded.content_hash != active["hash"]:
        raise ValueError(f"its content hash is {loaded.content_hash[:12]}, not {active['hash'][:12]}")
    return loaded
