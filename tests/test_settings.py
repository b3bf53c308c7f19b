"""Settings: environment over TOML file over defaults; wrong values named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsync.errors import ConfigError
from crmsync.settings import load_settings, masked


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMSYNC_CONFIG", raising=False)
    s = load_settings()
    assert s.mode == "enforce"
    assert s.database_url.startswith("sqlite:///")
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)
    assert s.sync.interval_seconds == 30
    assert s.hubspot.base_url == "https://api.hubapi.com"


def test_environment_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('mode = "shadow"\n[sync]\ninterval_seconds = 10\n[http]\nport = 9000\n')
    monkeypatch.setenv("CRMSYNC_SYNC__INTERVAL_SECONDS", "5")
    s = load_settings(config)
    assert (s.mode, s.sync.interval_seconds, s.http.port) == ("shadow", 5, 9000)


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[salesforce]\ninstance_url = "http://127.0.0.1:8711"\n')
    monkeypatch.setenv("CRMSYNC_CONFIG", str(config))
    assert load_settings().salesforce.instance_url == "http://127.0.0.1:8711"


def test_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_HTTP__PORT", "eighty")
    with pytest.raises(ConfigError, match=r"setting CRMSYNC_HTTP__PORT is invalid: Input should be a valid integer"):
        load_settings()


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[sync]\nintervall_seconds = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'sync.intervall_seconds'"):
        load_settings(config)


def test_bad_url_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_HUBSPOT__BASE_URL", "api.hubapi.com")
    with pytest.raises(ConfigError, match="expected a URL starting with http:// or https://"):
        load_settings()
    monkeypatch.delenv("CRMSYNC_HUBSPOT__BASE_URL")
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_HUBSPOT__ACCESS_TOKEN", "pat-na1-secret-value")
    monkeypatch.setenv("CRMSYNC_SALESFORCE__PASSWORD", "hunter2")
    s = load_settings()
    assert s.hubspot.access_token is not None
    assert s.hubspot.access_token.get_secret_value() == "pat-na1-secret-value"
    for rendering in (repr(s), str(s), str(masked(s))):
        assert "pat-na1-secret-value" not in rendering and "hunter2" not in rendering


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_SALESFORCE__API_VERSION", "sixty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "CRMSYNC_SALESFORCE__API_VERSION" in str(caught.value)


def test_a_credential_is_known_by_its_type_not_its_name(tmp_path: Path) -> None:
    """`private_key` names no "token", "password" or "secret": its type says it is one, so a wrong
    value given for it is not repeated in the error (any new CRM's `api_key` likewise)."""
    config = tmp_path / "crmsync.toml"
    config.write_text('[salesforce]\nprivate_key = 987654321\nusername = 4242\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "CRMSYNC_SALESFORCE__PRIVATE_KEY" in str(caught.value) and "987654321" not in str(caught.value)
    assert "(got 4242)" in str(caught.value)  # not a secret: shown, to help
