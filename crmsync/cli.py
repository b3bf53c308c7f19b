"""The command line: the only place that parses arguments and prints.

Exit codes: 0 ok, 1 the run failed, 2 bad usage or configuration (one clear line, no traceback).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from crmsync import __version__, retention
from crmsync.connectors import registry
from crmsync.connectors.base import Connector
from crmsync.connectors.crm import Feeds, SandboxOptions
from crmsync.connectors.feeds import rules_check, unfed
from crmsync.connectors.registry import KNOWN, configured, connect, either
from crmsync.connectors.retry import RetryPolicy
from crmsync.definitions import DEFAULT_DEFINITIONS, LoadedDefinitions, load_definitions
from crmsync.definitions.diff import diff_definitions
from crmsync.errors import ConfigError, CrmsyncError, DefinitionsError
from crmsync.logs import configure as configure_logs
from crmsync.model import Check
from crmsync.redact import register_secrets, scrub_text, terminal_safe
from crmsync.reporting.contract import contract_alerts, pipeline_line
from crmsync.settings import Settings, load_settings, masked, secret_values
from crmsync.store import Store
from crmsync.store.kinds import RunKind
from crmsync.sync import PassReport, SyncPass
from crmsync.sync.pipeline import backfill_stream
from crmsync.sync.window import live

EXIT_FAILED = 1
EXIT_CONFIG = 2
DOCTOR_RETRY = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, retry_after_cap=2.0)
"""`doctor` answers quickly: one retry, short waits."""

app = typer.Typer(
    name="crmsync",
    help="Enforces the governed lead-qualification contract (MQL, SAL, SQL, SLAs) inside HubSpot and Salesforce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
definitions_app = typer.Typer(help="Governance of the definitions file: validate, diff, activate.",
                              no_args_is_help=True)
app.add_typer(definitions_app, name="definitions")
sandbox_app = typer.Typer(help="Local emulators of the CRM APIs, for trying crmsync by hand.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


class _State:
    config: Path | None = None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmsync {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (else CRMSYNC_CONFIG); environment variables win over it."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _State.config = config


def _settings() -> Settings:
    return load_settings(_State.config)


def _load(path: Path, *, announce: bool = True) -> LoadedDefinitions:
    """Load a definitions file (exit 2 with every problem when invalid). The packaged default is named
    on stderr when used (`announce`; the daemon names it in its start-up log line instead)."""
    if announce and path == DEFAULT_DEFINITIONS:
        typer.echo(f"definitions: {path} (the default shipped with crmsync; CRMSYNC_DEFINITIONS names your own)",
                   err=True)
    try:
        return load_definitions(path)
    except DefinitionsError as exc:
        if len(exc.problems) == 1:
            typer.echo(f"{exc.path}: {exc.problems[0]}", err=True)
            raise typer.Exit(EXIT_CONFIG) from None
        typer.echo(f"{exc.path}: invalid definitions ({len(exc.problems)} problem(s)):", err=True)
        for problem in exc.problems:
            typer.echo(f"  {exc.path}: {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


@definitions_app.command("validate")
def definitions_validate(
    path: Annotated[Path, typer.Argument(help="The definitions YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a definitions file: schema, contradictions, governance header. Exit 2 when invalid."""
    loaded = _load(path)
    gov = loaded.definitions.governance
    crms = _configured_or_all()
    feeds = [f for crm in map(registry.get, crms) if (f := crm.feeds(crm.mapping(loaded.definitions), None))]
    never = {str(kind): names for kind, names in unfed(loaded.definitions, feeds).items()}
    if as_json:
        typer.echo(json.dumps({"path": str(path), "valid": True, "version": gov.version,
                               "hash": loaded.content_hash, "next_review_date": str(gov.next_review_date),
                               "crms": crms, "rules_never_fed": never}))
        return
    typer.echo(f"{path}: valid")
    typer.echo(f"  version {gov.version}, owner {gov.owner}")
    typer.echo(f"  approved by marketing: {gov.approved_by.marketing}; sales: {gov.approved_by.sales}")
    typer.echo(f"  effective {gov.effective_date}, next review {gov.next_review_date}")
    typer.echo(f"  content hash {loaded.content_hash}")
    for kind, names in never.items():
        typer.echo(f"  note: no connector of {', '.join(crms)} reads {kind}: {', '.join(names)} never score")


def _configured_or_all() -> list[str]:
    """The CRMs the settings configure; every known one when none is (or the settings cannot be read)."""
    try:
        names: list[str] = list(configured(_settings()))
    except CrmsyncError:
        names = []
    return names or list(KNOWN)


@definitions_app.command("activate")
def definitions_activate(path: Annotated[Path, typer.Argument(help="The definitions file to make active.")]) -> None:
    """Record a definitions version as active: the running daemon reads it from the store and uses the
    file from its next pass (the file must stay readable at this path). Refuses a version number
    reused with different content; warns when this content was never backtested."""
    settings = _settings()
    _, store = _context(settings)
    loaded = _load(path)
    gov = loaded.definitions.governance
    known = store.definitions_version(gov.version)
    if known is not None and known["hash"] != loaded.content_hash:
        raise ConfigError(f"version {gov.version} was activated before with different content "
                          f"({known['hash'][:12]}); give the new content a new version and a changelog entry")
    if not store.backtested(loaded.content_hash):
        typer.echo(f"warning: this content ({loaded.content_hash[:12]}) was never backtested; run "
                   f"`crmsync backtest --definitions {path}` to see what it changes", err=True)
    entry = next(e for e in gov.changelog if e.version == gov.version)
    store.activate_definitions(gov.version, loaded.content_hash, str(path.resolve()),
                               datetime.combine(gov.next_review_date, datetime.min.time(), UTC), entry.summary)
    typer.echo(f"activated {gov.version} ({loaded.content_hash[:12]}) from {path.resolve()}; next review "
               f"{gov.next_review_date}; the running daemon switches to it at its next pass")


@definitions_app.command("diff")
def definitions_diff(
    old: Annotated[Path, typer.Argument(help="The current definitions file.")],
    new: Annotated[Path, typer.Argument(help="The candidate definitions file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """What changed in meaning between two definitions files (criteria, weights, thresholds, mappings)."""
    before, after = _load(old), _load(new)
    changes = diff_definitions(before.definitions, after.definitions)
    if as_json:
        typer.echo(json.dumps({
            "old": {"path": str(old), "version": before.version, "hash": before.content_hash},
            "new": {"path": str(new), "version": after.version, "hash": after.content_hash},
            "changes": [c.to_dict() for c in changes],
        }, indent=2))
        return
    typer.echo(f"{old} ({before.version}) -> {new} ({after.version})")
    if not changes:
        typer.echo("no change in meaning")
        return
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            typer.echo(f"[{section}]")
        typer.echo(f"  {change.line()}")
    typer.echo(f"{len(changes)} change(s)")


CRM_HELP = f"{either()}."
CrmOption = Annotated[str | None, typer.Option("--crm", help=f"Only this CRM: {CRM_HELP}")]
CONFIGURE = " or ".join(crm.settings_hint for crm in registry.REGISTRY)
"""The settings that configure a CRM, for "no CRM is configured"."""


def _crms(settings: Settings, crm: str | None) -> list[str]:
    names: list[str] = [crm] if crm else configured(settings)
    if not names:
        raise ConfigError(f"no CRM is configured: set {CONFIGURE} (docs/settings.md)")
    return names


@app.command("doctor")
def doctor(
    crm: CrmOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the configuration, the definitions, and each configured CRM: token, scopes, properties
    and picklist values. Exit 2 when the configuration is wrong, 1 when a CRM check fails."""
    settings = _settings()
    loaded = _load(settings.definitions)
    checks = [
        Check("settings", True, f"mode {settings.mode}"),
        Check("definitions", True, f"{loaded.path} version {loaded.version} ({loaded.content_hash[:12]})"),
    ]
    names = [crm] if crm else list(configured(settings))
    if not names:
        checks.append(Check("crm", False, f"no CRM configured ({CONFIGURE})"))
    for name in names:
        connector = connect(name, settings, loaded, retry=DOCTOR_RETRY)
        checks += connector.doctor()
        checks += _rules_checks(name, connector, loaded)
    if as_json:
        typer.echo(json.dumps({"ok": all(c.ok for c in checks), "checks": [vars_of(c) for c in checks],
                               "settings": masked(settings)}, indent=2))
    else:
        for check in checks:
            _say(f"{'ok  ' if check.ok else 'FAIL'} {check.name:32} {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(EXIT_FAILED)


def _rules_checks(name: str, connector: Connector, loaded: LoadedDefinitions) -> list[Check]:
    """The engagement rules this CRM never feeds (as this account allows, when it could be told)."""
    crm = registry.get(name)
    feeds: Feeds | None = crm.feeds(crm.mapping(loaded.definitions), connector)
    return [] if feeds is None else [rules_check(name, loaded.definitions, feeds)]


GUARD_HELP = ("Also install the BANT guard: on Salesforce a validation rule on Lead that refuses converting a lead "
              "and requesting SQL unless the four BANT fields hold text (docs/salesforce.md). HubSpot has no such "
              "rule: there crmsync only detects (docs/hubspot.md).")


@app.command("setup")
def setup(crm: CrmOption = None,
          guard: Annotated[bool, typer.Option("--guard", help=GUARD_HELP)] = False) -> None:
    """Create the custom properties / fields crmsync needs in the CRM. Idempotent: a second run creates nothing."""
    settings = _settings()
    loaded = _load(settings.definitions)
    for name in _crms(settings, crm):
        registered = registry.get(name)
        connector = registered.connect(settings, loaded)
        created = connector.setup()
        if guard and registered.guard is not None:
            created += registered.guard(connector)
        typer.echo(f"{name}: created {', '.join(created)}" if created else f"{name}: nothing to create")
        if guard and registered.guard is None:
            typer.echo(registered.no_guard)


def vars_of(check: Check) -> dict[str, object]:
    return {"name": check.name, "ok": check.ok, "detail": check.detail}


def _context(settings: Settings, *, announce: bool = True) -> tuple[LoadedDefinitions, Store]:
    register_secrets(secret_values(settings))
    configure_logs(settings.log_format, settings.log_level)
    store = Store.open(settings.database_url)  # first: a store error is the only line on stderr
    return _load(settings.definitions, announce=announce), store


def _summary(report: PassReport) -> str:
    c = report.counts
    window = f"{report.window[0]:%Y-%m-%d %H:%M:%S} -> {report.window[1]:%Y-%m-%d %H:%M:%S} UTC"
    mode = "dry run" if report.dry_run else report.mode
    return (f"{report.crm}: {report.kind} ({mode}) {window}: pulled {c['pulled']}, decided {c['decided']}, "
            f"changed {c['changed']}, written {c['written']}, tasks {c['tasks']}, failed {c['write_failed']}, "
            f"quarantined {c['quarantined']}, events {c['events']}")


@app.command("sync")
def sync(
    once: Annotated[bool, typer.Option("--once", help="Run one incremental pass and exit.")] = False,
    crm: CrmOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; store and write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """One incremental pass per configured CRM: pull what changed, decide, write back (enforce mode)."""
    if not once:
        raise ConfigError("`crmsync sync` needs --once (the continuous service is `crmsync run`)")
    settings = _settings()
    loaded, store = _context(settings)
    reports = []
    for name in _crms(settings, crm):
        connector = connect(name, settings, loaded)
        report = SyncPass(store, connector, loaded, mode=settings.mode, dry_run=dry_run,
                          overlap=timedelta(seconds=settings.sync.overlap_seconds),
                          backlog_before=settings.sync.pipeline_backlog_before,
                          recheck_after=settings.sync.recheck_after).run()
        reports.append(report)
        if not as_json:
            typer.echo(_summary(report))
            for item in report.plan:
                typer.echo(f"  would write {item['record_id']}: {item['from']} -> {item['to']} "
                           f"{json.dumps(item['properties'], sort_keys=True)}")
    if as_json:
        typer.echo(json.dumps([{"crm": r.crm, "mode": r.mode, "dry_run": dry_run, "counts": r.counts,
                                "window": [r.window[0].isoformat(), r.window[1].isoformat()], "plan": r.plan}
                               for r in reports], indent=2))


@app.command("demo")
def demo(
    leads: Annotated[int, typer.Option("--leads", min=30, help="Leads seeded in each sandbox.")] = 300,
    database: Annotated[Path, typer.Option("--database", help="The SQLite file (replaced).")] = Path("crmsync-demo.db"),
) -> None:
    """The whole loop on the embedded default: both sandboxes in-process, a SQLite store, two syncs
    around a day of rep activity; prints the funnel, the writes, blocked SQLs, SLA states, explanations."""
    from crmsync.demo import run_demo

    configure_logs("console", "WARNING")
    started = time.perf_counter()
    run_demo(_load(DEFAULT_DEFINITIONS), database, leads, echo=typer.echo)
    typer.echo(f"\nDone in {time.perf_counter() - started:.1f}s. Try: crmsync report --html report.html "
               f"(with CRMSYNC_DATABASE_URL=sqlite:///{database})")


@app.command("report")
def report_command(
    since: Annotated[str | None, typer.Option("--since", help="Start (YYYY-MM-DD); default 90 days ago.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="End (YYYY-MM-DD); default now.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="source, segment, owner or definitions-version.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the report as CSV.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")] = None,
) -> None:
    """Funnel, conversion and time between stages, MQL->SQL against the floor, SAL acceptance, SLA
    compliance, and the reason-code review with recalibration hints."""
    from crmsync.reporting.report import GROUPS, build_report, render_csv, render_html, render_text

    if by is not None and by not in GROUPS:
        raise ConfigError(f"--by {by}: expected one of {', '.join(GROUPS)}")
    settings = _settings()
    loaded, store = _context(settings)
    end = _when(until, "--until") if until else datetime.now(UTC)
    start = _when(since, "--since") if since else end - timedelta(days=90)
    report = build_report(store, loaded, start, end, by)
    if html is not None:
        html.write_text(render_html(report), encoding="utf-8")
        typer.echo(f"wrote {html}", err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    elif as_csv:
        typer.echo(render_csv(report), nl=False)
    else:
        _say(render_text(report))


@app.command("explain")
def explain_record(
    record_id: Annotated[str, typer.Argument(help="The CRM record id (HubSpot contact id).")],
    crm: Annotated[str, typer.Option("--crm", help=CRM_HELP)] = "hubspot",
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """The latest decision for a record and its history: every rule with its inputs and result, score
    contributions, SQL gate, SLA clocks; re-run on the stored inputs to show it reproduces."""
    from crmsync.reporting.explain import explain, render

    settings = _settings()
    loaded, store = _context(settings)
    explanation = explain(store, crm, record_id, loaded)
    if as_json:
        typer.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        _say(render(explanation))


@app.command("backtest")
def backtest_command(
    candidate: Annotated[Path, typer.Option("--definitions", help="The candidate definitions file.")],
    days: Annotated[int, typer.Option("--days", min=1, help="The window of stored decisions to re-decide.")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """How many records the candidate classifies differently from the active definitions, and how.
    Re-decides from the stored inputs; writes nothing to the CRM."""
    from crmsync.reporting.backtest import backtest, render

    settings = _settings()
    active, store = _context(settings)
    summary = backtest(store, active, _load(candidate), days)
    typer.echo(json.dumps(summary, indent=2, default=str) if as_json else render(summary))


@app.command("run")
def run_daemon() -> None:
    """The daemon: incremental syncs every CRMSYNC_SYNC__INTERVAL_SECONDS per configured CRM, one
    replica at a time (lease in the store), /healthz and /metrics on CRMSYNC_HTTP__HOST:PORT.
    SIGTERM or Ctrl-C stops it cleanly (exit 0)."""
    from crmsync.daemon import Daemon
    from crmsync.observability import init_sentry

    settings = _settings()
    loaded, store = _context(settings, announce=False)  # named in the "daemon started" log line
    if settings.sentry_dsn is not None:
        init_sentry(settings.sentry_dsn.get_secret_value(), secret_values(settings), release=f"crmsync@{__version__}")
    connectors: dict[str, Connector] = {name: connect(name, settings, loaded) for name in _crms(settings, None)}
    raise typer.Exit(Daemon(settings, loaded, store, connectors).run_forever())


@app.command("backfill")
def backfill(
    since: Annotated[str, typer.Option("--since", help="Start of the window (YYYY-MM-DD or ISO 8601, UTC).")],
    until: Annotated[str | None, typer.Option("--until", help="End of the window (default: now).")] = None,
    crm: CrmOption = None,
) -> None:
    """Re-evaluate a bounded window on its own cursor (the live cursor does not move). An
    interrupted backfill of the same window resumes after the last committed page; without --until,
    the end is the time the backfill first started."""
    settings = _settings()
    start, end = _when(since, "--since"), _when(until, "--until") if until else None
    if start >= (end or datetime.now(UTC)):
        raise ConfigError(f"--since {since} is not before --until {until or 'now'}")
    loaded, store = _context(settings)
    interactive = sys.stderr.isatty()

    def progress(report: PassReport) -> None:
        line = f"{report.crm}: backfill {report.counts['pulled']} records, {report.counts['written']} written"
        typer.echo(f"\r{line}" if interactive else line, err=True, nl=not interactive)

    for name in _crms(settings, crm):
        report = SyncPass(store, connect(name, settings, loaded), loaded, mode=settings.mode, progress=progress,
                          backlog_before=settings.sync.pipeline_backlog_before,
                          recheck_after=settings.sync.recheck_after).run(
            kind=RunKind.BACKFILL, since=start, until=end, stream=backfill_stream(name, start, end))
        if interactive:
            typer.echo("", err=True)
        typer.echo(_summary(report))


@app.command("forget")
def forget(
    record_id: Annotated[str, typer.Argument(help="The CRM record id (HubSpot contact id, Salesforce lead id).")],
    crm: Annotated[str, typer.Option("--crm", help=CRM_HELP)],
) -> None:
    """Erase everything the store keeps about one record (snapshot, inputs, activities, decisions,
    outbox, quarantine). The record in the CRM is not touched; a later sync of it starts afresh."""
    if crm not in KNOWN:
        raise ConfigError(f"--crm {crm}: expected {either()}")
    settings = _settings()
    _, store = _context(settings)
    erased = store.forget(crm, record_id)
    typer.echo(f"{crm} record {record_id}: erased " + ", ".join(f"{n} {table}" for table, n in erased.items()))


@app.command("prune")
def prune() -> None:
    """Apply the retention: drop the inputs behind decisions older than CRMSYNC_INPUTS_RETENTION_DAYS
    (the decisions stay; `explain` of those says their inputs are gone) and run-log rows older than
    CRMSYNC_RUNS_RETENTION_DAYS (SLA sweeps after a day). The daemon does this once a day by itself;
    without a daemon, run it daily (cron)."""
    settings = _settings()
    _, store = _context(settings)
    pruned = retention.prune(store, settings, datetime.now(UTC))
    typer.echo(f"dropped {pruned.inputs} stored input set(s) behind decisions older than "
               f"{settings.inputs_retention_days} days, {pruned.runs} run(s) from the run log")


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False) -> None:
    """Cursors and lag, the last runs, outbox depth, quarantine, CRMs paused for their daily quota, the
    definitions (the file CRMSYNC_DEFINITIONS names, the activated version, which one the daemon uses)
    and when they are due for review."""
    settings = _settings()
    loaded, store = _context(settings)
    now = datetime.now(UTC)
    paused = {crm: {"until": p[0].isoformat(), "why": p[1]}
              for crm in KNOWN if (p := store.paused(crm, now)) is not None}
    cursors = [c for c in store.cursors() if live(c["stream"])]  # the streams whose cursor says their lag
    review = loaded.definitions.governance.next_review_date
    figures = store.contract(now)
    data: dict[str, Any] = {
        "mode": settings.mode,
        "definitions": {"version": loaded.version, "hash": loaded.content_hash, "next_review": str(review),
                        "review_overdue": review < now.date(), **_definitions_in_use(store, loaded)},
        "paused": paused,
        "cursors": [{"crm": c["crm"], "stream": c["stream"], "position": c["position"].isoformat(),
                     "lag_seconds": round((now - c["position"]).total_seconds())} for c in cursors],
        "contract": {**figures, "alerts": contract_alerts(figures, loaded.definitions.sla)},
        "outbox_depth": store.outbox_depth(),
        "quarantined": store.quarantine_count(),
        "last_runs": [{"id": r["id"], "crm": r["crm"], "kind": r["kind"], "outcome": r["outcome"],
                       "started_at": str(r["started_at"]), "counts": r["counts"], "error": r["error"]}
                      for r in store.runs(5, kinds=[k for k in RunKind if k != RunKind.SLA_SWEEP])],
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _say(f"mode {data['mode']}; definitions {loaded.version}, next review {review}"
         + (" (OVERDUE)" if data["definitions"]["review_overdue"] else ""))
    _say(data["definitions"]["daemon_uses"]["note"])
    for crm, pause in paused.items():
        _say(f"{crm} PAUSED until {pause['until']}: {pause['why']}")
    for c in data["cursors"]:
        _say(f"cursor {c['crm']}/{c['stream']}: {c['position']} (lag {c['lag_seconds']} s)")
    _say(f"outbox depth {data['outbox_depth']}; quarantined {data['quarantined']}")
    contract = data["contract"]
    _say(f"contract: MQL->SQL in 30 days {_pct(contract['mql_to_sql_30d'])} "
         f"(floor {loaded.definitions.sla.mql_to_sql_floor:.0%}"
         + (", BELOW" if contract["alerts"]["mql_to_sql_30d"] else "") + f"); SAL acceptance "
         f"{_pct(contract['sal_acceptance'])} (floor {loaded.definitions.sla.sal_acceptance_floor:.0%}"
         + (", BELOW" if contract["alerts"]["sal_acceptance"] else "") + f"); SLAs breached "
         f"{contract['sla_breached']}, at risk {contract['sla_at_risk']}; compliance "
         + (", ".join(f"{k} {_pct(v)}" for k, v in contract["sla_compliance"].items()) or "n/a")
         + f"; invalid reason codes {contract['invalid_reasons']}")
    _say(pipeline_line(contract))
    for r in data["last_runs"]:
        _say(f"run {r['id']} {r['crm']} {r['kind']}: {r['outcome']} {r['counts']}"
             + (f" error: {r['error']}" if r["error"] else ""))


def _definitions_in_use(store: Store, loaded: LoadedDefinitions) -> dict[str, Any]:
    """The activated version (the store) next to the file CRMSYNC_DEFINITIONS names, and which of the
    two the daemon uses: the activated one from its next pass boundary, unless its file cannot be used."""
    from crmsync.daemon import load_activated

    active = store.active_definitions()
    file = f"{loaded.version} ({loaded.path})"
    if active is None:
        return {"activated": None, "daemon_uses": {"version": loaded.version, "source": "file",
                                                   "note": f"definitions in use: {file}; none activated"}}
    activated = {"version": active["version"], "hash": active["hash"], "path": active["path"],
                 "activated_at": str(active["activated_at"])}
    if active["hash"] == loaded.content_hash:
        uses = {"version": loaded.version, "source": "file",
                "note": f"definitions in use: {file}, the activated version"}
    else:
        try:
            load_activated(active)
        except (DefinitionsError, ValueError) as exc:
            uses = {"version": loaded.version, "source": "file", "note": (
                f"definitions: activated {active['version']} ({active['path']}) cannot be used "
                f"({str(exc)[:200]}); the daemon keeps what it has (after a restart: the file, {file})")}
        else:
            uses = {"version": active["version"], "source": "activated", "note": (
                f"definitions: activated {active['version']} ({active['path']}) differs from the file "
                f"CRMSYNC_DEFINITIONS names, {file}; the daemon uses the activated {active['version']}")}
    return {"activated": activated, "daemon_uses": uses}


def _say(text: str) -> None:
    """Human output that may carry CRM values: control characters (ESC, BEL, CR, ...) removed."""
    typer.echo(terminal_safe(text))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _when(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date (use YYYY-MM-DD or ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@sandbox_app.command("serve")
def sandbox_serve(
    crm: Annotated[str, typer.Option("--crm", help=CRM_HELP)] = "hubspot",
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")] = 8711,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data and of the faults.")] = 42,
    contacts: Annotated[int, typer.Option("--contacts", help="How many leads to generate.")] = 200,
    faults: Annotated[str, typer.Option("--faults", help='Faults, e.g. "429:0.05,500:0.02,timeout:0.01".')] = "",
    rate_limit: Annotated[str | None, typer.Option("--rate-limit", help="Request limit, e.g. 100/10s.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Accept only this bearer token (default: any).")] = None,
    org_shape: Annotated[str, typer.Option("--org-shape", help="Salesforce: default (a new org's four lead "
                                                               "statuses) or rich (adds Qualified, Unqualified).")]
    = "default",
    tier: Annotated[str, typer.Option("--tier", help="HubSpot portal tier: starter, professional or enterprise "
                                                     "(what the tier cannot use is refused as HubSpot does).")]
    = "professional",
) -> None:
    """Serve a stateful emulator of the CRM's API on loopback (plain HTTP) until interrupted. Its
    crmsync properties / fields are those of the definitions in CRMSYNC_DEFINITIONS (else the default)."""
    from crmsync.sandbox.http import SandboxServer

    if crm not in KNOWN:
        raise ConfigError(f"--crm {crm}: expected {either()}")
    registered = registry.get(crm)
    mapping = registered.mapping(_load(_settings().definitions).definitions)
    options = SandboxOptions(token=token, faults=faults, seed=seed, rate_limit=rate_limit, records=contacts,
                             org_shape=org_shape, tier=tier)
    try:
        sandbox = registered.sandbox(options, mapping)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    server = SandboxServer(sandbox.app, port=port)
    typer.echo(f"{registered.label} sandbox on {server.url} with {contacts} {registered.records} "
               f"(seed {seed}); {sandbox.hint}. Ctrl-C stops.", err=False)
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def main() -> None:
    """Console entry point: turns crmsync's own errors into one line and an exit code."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except CrmsyncError as exc:
        typer.echo(terminal_safe(f"error: {scrub_text(str(exc))}"), err=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
