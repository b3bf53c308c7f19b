"""Governed definitions: load, validate, hash and diff the contract marketing and sales signed."""

from importlib.resources import files
from pathlib import Path

from crmsync.definitions.loader import LoadedDefinitions, content_hash, load_definitions, parse_definitions
from crmsync.definitions.schema import Definitions

DEFAULT_DEFINITIONS = Path(str(files("crmsync") / "defaults" / "definitions.yaml"))
"""The default definitions shipped inside the package (config/definitions.yaml is the same file, for
admins to copy); used when CRMSYNC_DEFINITIONS names no file."""

__all__ = [
    "DEFAULT_DEFINITIONS",
    "Definitions",
    "LoadedDefinitions",
    "content_hash",
    "load_definitions",
    "parse_definitions",
]
