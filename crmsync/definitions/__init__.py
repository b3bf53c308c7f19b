"""Governed definitions: load, validate, hash and diff the contract marketing and sales signed."""

from pathlib import Path

from crmsync.definitions.loader import LoadedDefinitions, content_hash, load_definitions, parse_definitions
from crmsync.definitions.schema import Definitions

DEFAULT_DEFINITIONS = Path("config/definitions.yaml")
"""Where the definitions are looked for by default (relative to the working directory)."""

__all__ = [
    "DEFAULT_DEFINITIONS",
    "Definitions",
    "LoadedDefinitions",
    "content_hash",
    "load_definitions",
    "parse_definitions",
]
