"""Which OAuth flow crmsync uses to log in to Salesforce, and the token request form for it.

- **JWT bearer** (the default for a daemon): consumer key + username + the connected app
  certificate's private key. The assertion is RS256 with iss = consumer key, sub = username,
  aud = https://login.salesforce.com (https://test.salesforce.com for sandbox orgs), exp three
  minutes ahead, as simple-salesforce builds it (simple_salesforce/login.py, 1.12.x) and as Salesforce
  Help describes it ("OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration").
- **Client credentials**: consumer key + secret, sent to the org's My Domain; Salesforce refuses this
  flow on login.salesforce.com / test.salesforce.com ("OAuth 2.0 Client Credentials Flow for
  Server-to-Server Integration"; simple-salesforce also only uses it for a domain other than login
  and test), so that is refused here at start-up with the fix.
- **Username-password**, kept for old orgs (blocked by default in orgs created since Summer '23).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import jwt

from crmsync.crms.salesforce.settings import SalesforceSettings
from crmsync.errors import ConfigError
from crmsync.files import UnreadableFile, read_limited

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_HOSTS = {"login.salesforce.com", "test.salesforce.com"}
ASSERTION_SECONDS = 180
KEY_BYTES = 16 * 1024  # a PEM RSA key of 4096 bits is about 3.3 KB


def flow(s: SalesforceSettings) -> str:
    if s.private_key is not None or s.private_key_file is not None:
        return "jwt"
    if s.username:
        return "password"
    return "client_credentials"


def grant_form(s: SalesforceSettings) -> dict[str, str]:
    """The token request's form for the configured flow; a configuration that cannot work is a
    ConfigError naming the setting to change."""
    chosen = flow(s)
    if chosen == "jwt":
        if not (s.client_id and s.username):
            raise ConfigError("the JWT bearer flow needs CRMSYNC_SALESFORCE__CLIENT_ID (the connected app's "
                              "consumer key) and CRMSYNC_SALESFORCE__USERNAME (the integration user)")
        claims = {"iss": s.client_id, "sub": s.username, "aud": audience(s),
                  "exp": int(time.time()) + ASSERTION_SECONDS}
        try:
            assertion = jwt.encode(claims, _private_key(s), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(f"CRMSYNC_SALESFORCE__PRIVATE_KEY(_FILE) is not a PEM RSA private key "
                              f"({type(exc).__name__})") from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    secret = s.client_secret.get_secret_value() if s.client_secret else ""
    form = {"client_id": s.client_id or "", "client_secret": secret}
    if chosen == "password":
        password = (s.password.get_secret_value() if s.password else "") + (
            s.security_token.get_secret_value() if s.security_token else "")
        return {**form, "grant_type": "password", "username": s.username or "", "password": password}
    if urlsplit(s.token_url).hostname in LOGIN_HOSTS:
        raise ConfigError("the client credentials flow needs the org's My Domain: set CRMSYNC_SALESFORCE__DOMAIN "
                          "(e.g. acme.my) or CRMSYNC_SALESFORCE__LOGIN_URL=https://acme.my.salesforce.com; "
                          "Salesforce refuses it on login.salesforce.com and test.salesforce.com")
    return {**form, "grant_type": "client_credentials"}


def audience(s: SalesforceSettings) -> str:
    """test.salesforce.com for sandbox orgs (domain test, the test host, or a sandbox My Domain)."""
    host = urlsplit(s.token_url).hostname or ""
    sandbox = s.domain == "test" or host == "test.salesforce.com" or ".sandbox.my.salesforce.com" in host
    return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"


def _private_key(s: SalesforceSettings) -> str:
    if s.private_key is not None:
        return s.private_key.get_secret_value()
    assert s.private_key_file is not None
    try:  # a regular file of a key's size only (files.py): a wrong path is one line, not a hang
        return read_limited(s.private_key_file, KEY_BYTES).decode("ascii", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"CRMSYNC_SALESFORCE__PRIVATE_KEY_FILE {s.private_key_file}: no such file") from None
    except UnreadableFile as exc:
        raise ConfigError(f"CRMSYNC_SALESFORCE__PRIVATE_KEY_FILE {s.private_key_file} {exc}") from None
