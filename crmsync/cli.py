"""The command line: the only place that parses arguments and prints.

Exit codes: 0 ok, 1 the run failed, 2 bad usage or configuration (one clear line, no traceback).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from crmsync import __version__
from crmsync.connectors.registry import configured, connect
from crmsync.connectors.retry import RetryPolicy
from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.definitions.diff import diff_definitions
from crmsync.errors import ConfigError, DefinitionsError, FatalError
from crmsync.model import Check
from crmsync.settings import Settings, load_settings, masked

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
definitions_app = typer.Typer(help="Governance of the definitions file: validate, diff.", no_args_is_help=True)
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


def _load(path: Path) -> LoadedDefinitions:
    try:
        return load_definitions(path)
    except DefinitionsError as exc:
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
    if as_json:
        typer.echo(json.dumps({"path": str(path), "valid": True, "version": gov.version,
                               "hash": loaded.content_hash, "next_review_date": str(gov.next_review_date)}))
        return
    typer.echo(f"{path}: valid")
    typer.echo(f"  version {gov.version}, owner {gov.owner}")
    typer.echo(f"  approved by marketing: {gov.approved_by.marketing}; sales: {gov.approved_by.sales}")
    typer.echo(f"  effective {gov.effective_date}, next review {gov.next_review_date}")
    typer.echo(f"  content hash {loaded.content_hash}")


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


CrmOption = Annotated[str | None, typer.Option("--crm", help="Only this CRM: hubspot or salesforce.")]


def _crms(settings: Settings, crm: str | None) -> list[str]:
    names: list[str] = [crm] if crm else [str(n) for n in configured(settings)]
    if not names:
        raise ConfigError("no CRM is configured: set CRMSYNC_HUBSPOT__ACCESS_TOKEN or the CRMSYNC_SALESFORCE__* "
                          "settings (docs/settings.md)")
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
        checks.append(Check("crm", False, "no CRM configured (CRMSYNC_HUBSPOT__ACCESS_TOKEN or CRMSYNC_SALESFORCE__*)"))
    for name in names:
        checks += connect(name, settings, loaded, retry=DOCTOR_RETRY).doctor()
    if as_json:
        typer.echo(json.dumps({"ok": all(c.ok for c in checks), "checks": [vars_of(c) for c in checks],
                               "settings": masked(settings)}, indent=2))
    else:
        for check in checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name:32} {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(EXIT_FAILED)


@app.command("setup")
def setup(crm: CrmOption = None) -> None:
    """Create the custom properties / fields crmsync needs in the CRM. Idempotent: a second run creates nothing."""
    settings = _settings()
    loaded = _load(settings.definitions)
    for name in _crms(settings, crm):
        created = connect(name, settings, loaded).setup()
        typer.echo(f"{name}: created {', '.join(created)}" if created else f"{name}: nothing to create")


def vars_of(check: Check) -> dict[str, object]:
    return {"name": check.name, "ok": check.ok, "detail": check.detail}


@sandbox_app.command("serve")
def sandbox_serve(
    crm: Annotated[str, typer.Option("--crm", help="hubspot (salesforce comes with its connector).")] = "hubspot",
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")] = 8711,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data and of the faults.")] = 42,
    contacts: Annotated[int, typer.Option("--contacts", help="How many leads to generate.")] = 200,
    faults: Annotated[str, typer.Option("--faults", help='Faults, e.g. "429:0.05,500:0.02,timeout:0.01".')] = "",
    rate_limit: Annotated[str | None, typer.Option("--rate-limit", help="Request limit, e.g. 100/10s.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Accept only this bearer token (default: any).")] = None,
) -> None:
    """Serve a stateful emulator of the CRM's API on loopback (plain HTTP) until interrupted."""
    from crmsync.sandbox.http import SandboxServer
    from crmsync.sandbox.hubspot import HubSpotApp, seed_portal

    if crm != "hubspot":
        raise ConfigError(f"--crm {crm}: only hubspot is available in this version")
    try:
        app_ = HubSpotApp(token=token, faults=faults, seed=seed, rate_limit=rate_limit)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    seed_portal(app_.portal, contacts, seed=seed)
    server = SandboxServer(app_, port=port)
    typer.echo(f"HubSpot sandbox on {server.url} with {contacts} contacts (seed {seed}); "
               f"point CRMSYNC_HUBSPOT__BASE_URL at it. Ctrl-C stops.", err=False)
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
    except FatalError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
