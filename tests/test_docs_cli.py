"""The docs stay true to the code: every `crmsync ...` command and option written in README.md and
docs/*.md exists in the CLI, and the Alembic migrations build exactly crmsync/store/schema.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crmsync.cli import app
from crmsync.store import Store
from crmsync.store.schema import metadata
from tests.builders import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
SHELL = {"bash", "sh", "shell", "console"}  # other fenced blocks hold output, diagrams, YAML
SPAN = re.compile(r"`([^`\n]+)`")
INVOCATION = re.compile(r"(?<![\w-])(?<!--name )crmsync((?:[ \t]+[^\s|;&)`]+)+)")
NOT_INVOCATIONS = {"."}  # `docker build -t crmsync .`: the image's name, not the command


def tree() -> Any:
    """The CLI as typer builds it: groups have `commands`, every command has `params`."""
    return typer.main.get_command(app)


def options(command: Any) -> dict[str, bool]:
    """A command's options, each with whether it takes a value."""
    return {name: not p.is_flag for p in command.params if p.param_type_name == "option"
            for name in (*p.opts, *p.secondary_opts)} | {"--help": False}


def invocations(path: Path) -> list[list[str]]:
    """Each `crmsync ...` in the file's shell blocks and code spans, as its words ([optional] brackets
    removed)."""
    text = path.read_text(encoding="utf-8")
    spans = [span.replace("\\|", " ").replace("|", " ") for span in SPAN.findall(FENCE.sub("", text))]
    found = []  # in a span, `a|b` lists alternatives; in a shell block, | is a pipe and ends the command
    for piece in [block for lang, block in FENCE.findall(text) if lang in SHELL] + spans:
        for line in piece.splitlines():
            line = line.split(" #", 1)[0]  # a shell comment
            for match in INVOCATION.finditer(line):
                words = [w.strip("[]") for w in match.group(1).split()]
                found.append([w for w in words if w])
    return found


def check(words: list[str], root: Any) -> str | None:
    """None when the CLI knows the command and every option; otherwise what it does not know."""
    command, allowed, arguments, value_next = root, options(root), False, False
    for word in words:
        if value_next:
            value_next = False  # the value of the option before
        elif word.startswith("--"):
            name, _, value = word.partition("=")
            if name not in allowed:
                return f"option {name} of `{command.name}`"
            value_next = allowed[name] and not value
        elif hasattr(command, "commands") and not arguments and not word.isupper():
            sub = command.commands.get(word)
            if sub is None:
                return f"command {word!r}"
            command, allowed = sub, options(sub) | (allowed if command is root else {})
        else:
            arguments = True  # an argument (PATH, RECORD_ID): no subcommand follows
    return None


def test_every_command_and_option_in_the_docs_exists() -> None:
    root = tree()
    seen, unknown = 0, []
    for path in DOCS:
        for words in invocations(path):
            if not words or words[0] in NOT_INVOCATIONS:
                continue
            seen += 1
            problem = check(words, root)
            if problem:
                unknown.append(f"{path.relative_to(ROOT)}: `crmsync {' '.join(words)}`: unknown {problem}")
    assert seen > 40, seen  # the parser finds the docs' commands
    assert not unknown, "\n".join(unknown)


def test_the_checker_catches_a_wrong_command_or_option() -> None:
    root = tree()
    assert check(["backfill", "--since", "2026-01-01", "--crm", "hubspot"], root) is None
    assert check(["definitions", "activate", "new.yaml"], root) is None
    assert check(["--config", "x.toml", "status", "--json"], root) is None
    assert check(["explain", "42", "--crm", "salesforce"], root) is None
    assert check(["explain", "42", "--since", "2026"], root) == "option --since of `explain`"
    assert check(["sycn", "--once"], root) == "command 'sycn'"
    assert check(["definitions", "remove", "x"], root) == "command 'remove'"
    assert check(["report", "--by-owner"], root) == "option --by-owner of `report`"


def test_the_migrations_build_exactly_the_schema(empty_database_url: str) -> None:
    store = Store.open(empty_database_url)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    store.close()
    assert differences == []


def test_definitions_help_lists_every_subcommand() -> None:
    group = tree().commands["definitions"]
    assert set(group.commands) == {"validate", "diff", "activate"}
    assert all(name in (group.help or "") for name in group.commands)
