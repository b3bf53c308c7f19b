"""Shared fixtures: the default definitions."""

from __future__ import annotations

import pytest

from crmsync.definitions import LoadedDefinitions, load_definitions
from tests.builders import DEFAULT_DEFINITIONS


@pytest.fixture(scope="session")
def definitions() -> LoadedDefinitions:
    return load_definitions(DEFAULT_DEFINITIONS)
