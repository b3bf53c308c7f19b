"""The command line: the only place that parses arguments and prints.

Exit codes: 0 ok, 1 the run failed, 2 bad usage or configuration (one clear line, no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from crmsync import __version__
from crmsync.definitions import LoadedDefinitions, load_definitions
from crmsync.definitions.diff import diff_definitions
from crmsync.errors import ConfigError, DefinitionsError, FatalError
from crmsync.settings import Settings, load_settings, masked

EXIT_FAILED = 1
EXIT_CONFIG = 2

app = typer.Typer(
    name="crmsync",
    help="Enforces the governed lead-qualification contract (MQL, SAL, SQL, SLAs) inside HubSpot and Salesforce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
definitions_app = typer.Typer(help="Governance of the definitions file: validate, diff.", no_args_is_help=True)
app.add_typer(definitions_app, name="definitions")


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


@app.command("doctor")
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False) -> None:
    """Check the configuration and the definitions file (exit 2 when either is wrong)."""
    settings = _settings()
    loaded = _load(settings.definitions)
    checks = {
        "settings": "ok",
        "mode": settings.mode,
        "definitions": f"{loaded.path} version {loaded.version} ({loaded.content_hash[:12]})",
        "hubspot": "configured" if settings.hubspot.access_token else "not configured",
        "salesforce": "configured"
        if settings.salesforce.access_token or settings.salesforce.username or settings.salesforce.client_id
        else "not configured",
    }
    if as_json:
        typer.echo(json.dumps({"checks": checks, "settings": masked(settings)}, indent=2))
        return
    for name, result in checks.items():
        typer.echo(f"{name:12} {result}")


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
