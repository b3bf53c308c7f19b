"""The CRM registry: every registration is complete, and "is this CRM configured?" has one answer
that every command follows (issue 13: it was decided in four places, and two of them disagreed)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from crmsync.connectors import registry
from crmsync.definitions.schema import CrmMapping, Mappings
from crmsync.errors import ConfigError
from crmsync.settings import Settings
from tests.test_cli import run


@pytest.mark.parametrize("crm", registry.REGISTRY, ids=lambda crm: crm.name)
def test_every_registered_crm_has_a_settings_section_and_a_mapping(crm: registry.Crm) -> None:
    section = Settings.model_fields[crm.name].annotation
    assert isinstance(section, type) and issubclass(section, BaseModel)
    assert Mappings.model_fields[crm.name].annotation is CrmMapping
    assert crm.settings_hint.startswith(f"CRMSYNC_{crm.name.upper()}__")


def test_the_registry_knows_every_crm_the_settings_and_definitions_have() -> None:
    assert set(Mappings.model_fields) == set(registry.KNOWN)
    assert set(registry.KNOWN) <= set(Settings.model_fields)


def test_an_unknown_crm_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="unknown CRM 'pipedrive': expected one of hubspot, salesforce"):
        registry.get("pipedrive")
    assert registry.either() == "hubspot or salesforce"
    assert registry.either(("a", "b", "c")) == "a, b or c"


def test_a_salesforce_instance_url_without_a_way_to_a_token_is_not_configured_anywhere() -> None:
    """An instance URL alone was "not configured" for `sync` yet accepted by `--crm salesforce`, which
    then failed at its first login (exit 1); now every command says it is not configured (exit 2)."""
    env = {"CRMSYNC_SALESFORCE__INSTANCE_URL": "https://example.my.salesforce.com"}
    for args in (("setup", "--crm", "salesforce"), ("sync", "--once", "--crm", "salesforce")):
        result = run(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert "Salesforce is not configured: set CRMSYNC_SALESFORCE__INSTANCE_URL and an access token" \
            in result.stderr
    unconfigured = run("sync", "--once", env=env)
    assert unconfigured.returncode == 2
    assert "no CRM is configured: set CRMSYNC_HUBSPOT__ACCESS_TOKEN or CRMSYNC_SALESFORCE__*" in unconfigured.stderr


def test_sandbox_serve_refuses_an_unknown_crm_by_the_registry_names() -> None:
    result = run("sandbox", "serve", "--crm", "pipedrive", "--port", "0")
    assert result.returncode == 2 and "--crm pipedrive: expected hubspot or salesforce" in result.stderr
