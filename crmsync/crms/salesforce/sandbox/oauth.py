"""The sandbox org's OAuth token endpoint: the password, client-credentials and JWT bearer flows.

Sources: the token answer's fields (access_token, instance_url, id, token_type, issued_at, signature)
and the {error, error_description} shape are in specs/salesforce/NOTES.md ("OAuth token endpoint").
The JWT bearer flow (Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration",
https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm): an RS256
assertion with iss = the connected app's consumer key, sub = the username, aud = the login host
(https://login.salesforce.com, or https://test.salesforce.com for sandbox orgs), exp a few minutes
ahead, verified with the certificate uploaded to the connected app; the user must be pre-authorised
(admin-approved users, a profile or permission set). simple-salesforce builds the same claims
(simple_salesforce/login.py, 1.12.x). The client-credentials flow runs against the org's My Domain
only (Salesforce Help, "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"): a
sandbox started with `login_host` plays login.salesforce.com and refuses it. The error
descriptions ("user hasn't approved this consumer", "audience is invalid", "request not supported on
this domain") are as integrations report them; unconfirmed by a Salesforce page.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import jwt

from crmsync.sandbox.http import Request, Response

if TYPE_CHECKING:
    from crmsync.crms.salesforce.sandbox.api import SalesforceApp

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class ConnectedApp:
    """The org's connected app for the JWT bearer flow: its consumer key, certificate (public key),
    the audience it accepts and the users pre-authorised through a permission set."""

    client_id: str
    public_key: str
    audience: str = "https://login.salesforce.com"
    preauthorized: set[str] = field(default_factory=set)


def token(app: SalesforceApp, request: Request) -> Response:
    org = app.org
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    grant = form.get("grant_type")
    user: str | None = None
    if grant == JWT_GRANT:
        verified = _jwt_user(app, form.get("assertion") or "")
        if isinstance(verified, Response):
            return verified
        user = verified
    elif grant in ("password", "client_credentials"):
        if grant == "client_credentials" and app.org.login_host:
            return _refused("request not supported on this domain")
        wanted = org.credentials
        if wanted and any(form.get(k) != v for k, v in wanted.items() if k in form or grant == "password"):
            return _refused("authentication failure")
    else:
        return Response(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    host = request.headers.get("Host", "127.0.0.1")
    token_ = org.issue_token(user) if user else org.issue_token()
    app.calls[("oauth.token", 200)] += 1
    return Response(200, {"access_token": token_, "instance_url": f"http://{host}",
                          "id": f"http://{host}/id/00D5g0000000001AAA/{org.session_users[token_]}",
                          "token_type": "Bearer", "issued_at": str(int(org.clock().timestamp() * 1000)),
                          "signature": secrets.token_urlsafe(16)})


def _jwt_user(app: SalesforceApp, assertion: str) -> str | Response:
    connected = app.org.connected_app
    if connected is None:
        return _refused("the org has no connected app with a certificate", "invalid_client_id")
    try:
        claims = jwt.decode(assertion, connected.public_key, algorithms=["RS256"], audience=connected.audience,
                            issuer=connected.client_id, options={"require": ["exp", "iss", "sub", "aud"]})
    except jwt.InvalidAudienceError:
        return _refused("audience is invalid")
    except jwt.InvalidIssuerError:
        return _refused("client identifier invalid", "invalid_client_id")
    except jwt.ExpiredSignatureError:
        return _refused("expired authorization code")
    except jwt.PyJWTError:
        return _refused("invalid assertion")
    users = [u for u in app.org.records["User"].values() if u.get("Username") == claims["sub"] and u.get("IsActive")]
    if not users or users[0]["Id"] not in connected.preauthorized:
        return _refused("user hasn't approved this consumer")
    return str(users[0]["Id"])


def _refused(description: str, error: str = "invalid_grant") -> Response:
    return Response(400, {"error": error, "error_description": description})
