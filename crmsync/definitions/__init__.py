"""Governed definitions: load, validate, hash and diff the contract marketing and sales signed."""

from crmsync.definitions.loader import LoadedDefinitions, content_hash, load_definitions, parse_definitions
from crmsync.definitions.schema import Definitions

__all__ = ["Definitions", "LoadedDefinitions", "content_hash", "load_definitions", "parse_definitions"]
