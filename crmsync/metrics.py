"""Prometheus metrics of the daemon, one registry per daemon (so tests can run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from crmsync.sync import PassReport


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pulled = Counter("crmsync_records_pulled_total", "Records pulled from the CRM", ["crm"], registry=r)
        self.decisions = Counter("crmsync_decisions_total", "Decisions made, by target stage", ["crm", "stage"],
                                 registry=r)
        self.writes = Counter("crmsync_writes_total", "Records written back, by result", ["crm", "result"], registry=r)
        self.tasks = Counter("crmsync_tasks_total", "Owner tasks created", ["crm"], registry=r)
        self.api_calls = Counter("crmsync_api_calls_total", "CRM API calls by endpoint and status",
                                 ["crm", "endpoint", "status"], registry=r)
        self.retries = Counter("crmsync_retries_total", "CRM calls retried", ["crm"], registry=r)
        self.rate_limited = Counter("crmsync_rate_limited_total", "429 answers from the CRM", ["crm"], registry=r)
        self.runs = Counter("crmsync_sync_runs_total", "Sync passes by outcome (ok, failed, interrupted)",
                            ["crm", "outcome"], registry=r)
        self.failed_passes = Counter("crmsync_failed_passes_total", "Sync passes that failed", ["crm"], registry=r)
        self.failed_streak = Gauge("crmsync_consecutive_failed_passes", "Failed passes in a row (0 after a success)",
                                   ["crm"], registry=r)
        self.stale_writes = Counter("crmsync_stale_writes_total", "Pending writes dropped: the record changed in "
                                    "the CRM since the decision (re-decided)", ["crm"], registry=r)
        self.erased = Counter("crmsync_records_erased_total", "Records erased from the store because the CRM "
                              "deleted them, by trigger (sync: a pass; webhook)", ["crm", "trigger"], registry=r)
        self.lag = Gauge("crmsync_lag_seconds", "Seconds between now and the stream's cursor (how far its "
                         "window is complete), per stream", ["crm", "stream"], registry=r)
        self.outbox = Gauge("crmsync_outbox_depth", "Pending writes and tasks", registry=r)
        self.quarantined = Gauge("crmsync_quarantined", "Records in quarantine", registry=r)
        self.last_success = Gauge("crmsync_last_success_timestamp_seconds", "When a pass last succeeded", ["crm"],
                                  registry=r)
        self.mql_to_sql = Gauge("crmsync_mql_to_sql_rate", "MQLs that became SQL within 30 days", registry=r)
        self.sal_acceptance = Gauge("crmsync_sal_acceptance_rate", "MQLs accepted by sales (SAL)", registry=r)
        self.sla_compliance = Gauge("crmsync_sla_compliance_rate", "Closed clocks met in time, per SLA", ["sla"],
                                    registry=r)
        self.sla_breached = Gauge("crmsync_sla_breached", "Records with a breached SLA", registry=r)
        self.sla_at_risk = Gauge("crmsync_sla_at_risk", "Records with an SLA at risk", registry=r)
        self.invalid_reasons = Gauge("crmsync_invalid_reason_codes", "Records flagged for an invalid reason code",
                                     registry=r)
        self.skipped_gates = Gauge("crmsync_pipeline_skipped_gate", "Records at opportunity or customer that "
                                   "got there without documented BANT (a skipped SQL gate)", registry=r)
        self.skipped_gate_deals = Gauge("crmsync_pipeline_skipped_gate_deals", "Open or won deals of records that "
                                        "skipped the SQL gate", registry=r)
        self.skipped_gate_amount = Gauge("crmsync_pipeline_skipped_gate_amount", "Amount of the open or won deals "
                                         "of records that skipped the SQL gate, per currency (never converted; "
                                         "'<crm> default': the CRM account's own currency)", ["currency"], registry=r)
        self.contract_alert = Gauge("crmsync_contract_alert", "1 while a contract figure is below its floor",
                                    ["figure"], registry=r)
        self.review_due = Gauge("crmsync_definitions_next_review_timestamp_seconds",
                                "When the governed definitions are due for review", registry=r)
        self.review_overdue = Gauge("crmsync_definitions_review_overdue", "1 when the review date has passed",
                                    registry=r)
        self.webhooks = Counter("crmsync_webhooks_total", "Webhook requests by result (accepted, bad_signature, "
                                "stale, replayed, malformed)", ["result"], registry=r)
        self.http_refused = Counter("crmsync_http_refused_total", "HTTP connections or requests refused, by reason "
                                    "(evicted or connections past the cap, timeout, too_large)", ["reason"], registry=r)
        self.paused = Gauge("crmsync_crm_paused", "1 while the CRM is paused until its daily API quota resets",
                            ["crm"], registry=r)
        self.pruned = Counter("crmsync_pruned_inputs_total", "Stored input sets dropped by the daily retention job",
                              registry=r)
        self.standby = Gauge("crmsync_standby", "1 while another replica holds the stream's lease", ["crm"],
                             registry=r)

    def record_pass(self, report: PassReport) -> None:
        crm = report.crm
        self.pulled.labels(crm).inc(report.counts["pulled"])
        for stage, n in report.stages.items():
            self.decisions.labels(crm, stage).inc(n)
        self.writes.labels(crm, "ok").inc(report.counts["written"])
        self.writes.labels(crm, "failed").inc(report.counts["write_failed"])
        self.tasks.labels(crm).inc(report.counts["tasks"])
        self.runs.labels(crm, report.outcome).inc()
        self.stale_writes.labels(crm).inc(report.counts["stale_writes"])
        self.erased.labels(crm, "sync").inc(report.counts.get("erased", 0))

    def record_contract(self, figures: dict[str, Any], alerts: dict[str, bool]) -> None:
        for gauge, key in ((self.mql_to_sql, "mql_to_sql_30d"), (self.sal_acceptance, "sal_acceptance")):
            if figures[key] is not None:
                gauge.set(figures[key])
        for sla, rate in figures["sla_compliance"].items():
            if rate is not None:
                self.sla_compliance.labels(sla).set(rate)
        self.sla_breached.set(figures["sla_breached"])
        self.sla_at_risk.set(figures["sla_at_risk"])
        self.invalid_reasons.set(figures["invalid_reasons"])
        self.skipped_gates.set(figures["skipped_gates"])
        self.skipped_gate_deals.set(figures["skipped_gate_deals"])
        self.skipped_gate_amount.clear()  # a currency no deal has any more is dropped, not left at its last value
        for currency, amount in figures["skipped_gate_amounts"].items():
            self.skipped_gate_amount.labels(currency).set(amount)
        for figure, below in alerts.items():
            self.contract_alert.labels(figure).set(1 if below else 0)

    def api_call(self, crm: str, endpoint: str, status: int | str) -> None:
        self.api_calls.labels(crm, endpoint, str(status)).inc()
        if status == 429:
            self.rate_limited.labels(crm).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
