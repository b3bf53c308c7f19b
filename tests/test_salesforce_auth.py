"""Logging in to a real org: the JWT bearer flow, client credentials on the My Domain only, sandbox orgs,
the password flow, and a dead fixed token as one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from crmsync.crms.hubspot.connector import AuthError
from crmsync.crms.salesforce.auth import audience, grant_form
from crmsync.crms.salesforce.connector import SalesforceConnector
from crmsync.crms.salesforce.sandbox.oauth import ConnectedApp
from crmsync.crms.salesforce.sandbox.org import INTEGRATION_USER
from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.errors import ConfigError
from crmsync.settings import load_settings
from tests.hubspot_fixtures import DEFS, fast_retry
from tests.salesforce_fixtures import salesforce, sf_connector
from tests.test_cli import run

USERNAME = "crmsync@example.com"


def key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def connector(**settings: object) -> SalesforceConnector:
    return SalesforceConnector(SalesforceSettings(**settings), DEFS.definitions.mappings.salesforce,  # type: ignore[arg-type]
                               retry=fast_retry())


def lead_ids(app: object) -> list[str]:
    return list(app.org.records["Lead"])[:2]  # type: ignore[attr-defined]


def test_jwt_bearer_login_acts_as_the_preauthorised_user(tmp_path: Path) -> None:
    private, public = key_pair()
    key_file = tmp_path / "server.key"
    key_file.write_text(private)
    with salesforce(3) as (app, url):
        app.org.connected_app = ConnectedApp("consumer-key", public, preauthorized={INTEGRATION_USER})
        conn = connector(login_url=url, client_id="consumer-key", username=USERNAME, private_key_file=key_file)
        assert len(conn.read(lead_ids(app)).contacts) == 2
        assert set(app.org.session_users.values()) == {INTEGRATION_USER}
        assert app.call_counts()["oauth.token"] == 1
        app.org.sessions.clear()  # the session expires: a fresh assertion renews it
        assert len(conn.read(lead_ids(app)).contacts) == 2
        assert app.call_counts()["oauth.token"] == 2


@pytest.mark.parametrize(("change", "refusal"), [
    ({"preauthorized": set()}, "user hasn't approved this consumer"),
    ({"audience": "https://test.salesforce.com"}, "audience is invalid"),
    ({"client_id": "another-app"}, "client identifier invalid"),
    ({"public_key": key_pair()[1]}, "invalid assertion"),
])
def test_jwt_bearer_is_verified(change: dict[str, object], refusal: str) -> None:
    private, public = key_pair()
    with salesforce(1) as (app, url):
        spec: dict[str, object] = {"client_id": "consumer-key", "public_key": public,
                                   "preauthorized": {INTEGRATION_USER}, **change}
        app.org.connected_app = ConnectedApp(**spec)  # type: ignore[arg-type]
        conn = connector(login_url=url, client_id="consumer-key", username=USERNAME, private_key=SecretStr(private))
        with pytest.raises(AuthError, match=refusal):
            conn.read(lead_ids(app))


def test_a_missing_or_wrong_key_file_is_a_config_error(tmp_path: Path) -> None:
    base = {"client_id": "consumer-key", "username": USERNAME}
    with pytest.raises(ConfigError, match="no such file"):
        grant_form(SalesforceSettings(**base, private_key_file=tmp_path / "absent.key"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is a directory"):
        grant_form(SalesforceSettings(**base, private_key_file=tmp_path))  # type: ignore[arg-type]
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM RSA private key"):
        grant_form(SalesforceSettings(**base, private_key_file=tmp_path / "bad.key"))  # type: ignore[arg-type]


def test_the_jwt_audience_is_the_sandbox_host_for_sandbox_orgs() -> None:
    assert audience(SalesforceSettings()) == "https://login.salesforce.com"
    assert audience(SalesforceSettings(domain="test")) == "https://test.salesforce.com"
    assert audience(SalesforceSettings(domain="acme--uat.sandbox.my")) == "https://test.salesforce.com"
    assert SalesforceSettings(domain="test").token_url == "https://test.salesforce.com/services/oauth2/token"


def test_client_credentials_need_the_my_domain() -> None:
    for settings in (SalesforceSettings(client_id="k", client_secret=SecretStr("s")),
                     SalesforceSettings(client_id="k", client_secret=SecretStr("s"), domain="test")):
        with pytest.raises(ConfigError, match="My Domain"):
            grant_form(settings)
    assert grant_form(SalesforceSettings(client_id="k", client_secret=SecretStr("s"), domain="acme.my"))[
        "grant_type"] == "client_credentials"
    with salesforce(1) as (app, url):
        app.org.login_host = True  # the sandbox plays login.salesforce.com
        with pytest.raises(AuthError, match="request not supported on this domain"):
            sf_connector(url).read(lead_ids(app))


def test_password_flow_is_kept() -> None:
    with salesforce(2) as (app, url):
        conn = connector(login_url=url, client_id="k", client_secret=SecretStr("s"), username=USERNAME,
                         password=SecretStr("pw"), security_token=SecretStr("tok"))
        assert grant_form(conn.settings)["password"] == "pwtok"
        assert len(conn.read(lead_ids(app)).contacts) == 2


def test_a_dead_fixed_token_is_one_clear_error() -> None:
    with salesforce(2) as (app, url):
        conn = connector(instance_url=url, access_token=SecretStr("00D!dead"))
        with pytest.raises(AuthError, match="ACCESS_TOKEN \\(expired or revoked\\)"):
            conn.read(lead_ids(app))
        result = run("sync", "--once", "--crm", "salesforce", env={
            "CRMSYNC_SALESFORCE__INSTANCE_URL": url, "CRMSYNC_SALESFORCE__ACCESS_TOKEN": "00D!dead",
            "CRMSYNC_DATABASE_URL": "sqlite://"})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "ACCESS_TOKEN (expired or revoked)" in errors[0]
        assert "00D!dead" not in result.stderr + result.stdout


def test_domain_and_login_url_together_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_SALESFORCE__DOMAIN", "test")
    monkeypatch.setenv("CRMSYNC_SALESFORCE__LOGIN_URL", "https://acme.my.salesforce.com")
    with pytest.raises(ConfigError, match="domain or login_url"):
        load_settings()
