"""Salesforce's settings section: `Settings.salesforce`, CRMSYNC_SALESFORCE__*, `[salesforce]`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from crmsync.settings_base import CrmSection, Secret, Text, http_url

LOGIN_URL = "https://login.salesforce.com"


class SalesforceSettings(CrmSection):
    crm: ClassVar[str] = "salesforce"

    instance_url: str | None = None
    login_url: str = LOGIN_URL
    domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$",
                               description="login, test (sandbox orgs) or a My Domain such as acme.my: "
                                           "the login URL becomes https://{domain}.salesforce.com")
    access_token: Secret | None = None
    username: Text | None = None
    password: Secret | None = None
    security_token: SecretStr | None = None  # may be empty: orgs with trusted IP ranges need none
    client_id: Text | None = None
    client_secret: Secret | None = None
    private_key_file: Path | None = Field(default=None, description="JWT bearer flow: the connected app "
                                                                    "certificate's private key (PEM)")
    private_key: Secret | None = Field(default=None, description="JWT bearer flow: the private key itself")
    api_version: str = Field(default="60.0", pattern=r"^\d{2,3}\.0$")
    poll_seconds: int = Field(default=10, ge=1, le=86400,
                              description="the short SystemModstamp poll: one cheap query when nothing changed")
    activity_poll_seconds: int = Field(default=60, ge=0, le=86400,
                                       description="how often a pass also reads the Tasks, Events and "
                                                   "CampaignMembers changed since the last time (one call); "
                                                   "0: every pass")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    integration_user: Text | None = Field(default=None, description="the Username `setup` assigns the "
                                          "permission set to, and `doctor` checks, when an admin runs setup "
                                          "for another user; unset: the user crmsync logs in as")

    _urls = field_validator("instance_url", "login_url")(lambda cls, v: v if v is None else http_url(v))

    @model_validator(mode="after")
    def _one_login_host(self) -> SalesforceSettings:
        if self.domain and self.login_url != LOGIN_URL:
            raise ValueError("set domain or login_url, not both")
        if self.private_key_file is not None and self.private_key is not None:
            raise ValueError("set private_key_file or private_key, not both")
        return self

    @property
    def token_url(self) -> str:
        """Where the OAuth token endpoint is: the domain's host, else the login URL."""
        base = f"https://{self.domain}.salesforce.com" if self.domain else self.login_url
        return f"{base.rstrip('/')}/services/oauth2/token"


SECTION = SalesforceSettings
"""This package's settings section (crmsync.settings builds `Settings.salesforce` from it)."""
