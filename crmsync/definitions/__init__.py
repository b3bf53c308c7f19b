"""Governed definitions: load, validate, hash and diff the contract marketing and sales signed."""

from functools import cache
from importlib.resources import files
from pathlib import Path

from crmsync.definitions.loader import LoadedDefinitions, content_hash, load_definitions, parse_definitions
from crmsync.definitions.schema import Definitions

DEFAULT_DEFINITIONS = Path(str(files("crmsync") / "defaults" / "definitions.yaml"))
"""The default definitions shipped inside the package (config/definitions.yaml is the same file, for
admins to copy); used when CRMSYNC_DEFINITIONS names no file."""


@cache
def default_definitions() -> LoadedDefinitions:
    """The shipped default, loaded once per process (validated definitions are frozen, so sharing is
    safe): the sandboxes install crmsync's fields from it for every portal and org they set up, and
    parsing and validating the YAML costs about 80 ms each time."""
    return load_definitions(DEFAULT_DEFINITIONS)


__all__ = [
    "DEFAULT_DEFINITIONS",
    "Definitions",
    "LoadedDefinitions",
    "content_hash",
    "default_definitions",
    "load_definitions",
    "parse_definitions",
]
