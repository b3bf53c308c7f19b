"""HubSpot's settings section: `Settings.hubspot`, CRMSYNC_HUBSPOT__*, `[hubspot]`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from crmsync.settings_base import CrmSection, Secret, http_url

if TYPE_CHECKING:
    from crmsync.settings import Settings


class HubSpotSettings(CrmSection):
    crm: ClassVar[str] = "hubspot"

    access_token: Secret | None = None
    base_url: str = "https://api.hubapi.com"
    app_secret: Secret | None = Field(default=None, description="webhook signature secret (v3)")
    webhook_url: str | None = Field(default=None, description="the public URL HubSpot posts webhooks to (signed)")
    webhook_dedupe_days: int = Field(default=3, ge=1, le=30,
                                     description="how long webhook event ids are remembered to refuse replays")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    api_share: float = Field(default=0.8, gt=0, le=1, description="share of the rate limit crmsync may use")

    _url = field_validator("base_url")(lambda cls, v: http_url(v))
    _signed = field_validator("webhook_url")(lambda cls, v: v if v is None else http_url(v, exact=True))

    def check(self, settings: Settings) -> None:
        # HubSpot signs the URL it called (X-HubSpot-Signature-v3 covers method + URI + body + timestamp:
        # https://developers.hubspot.com/docs/api/webhooks/validating-requests); behind a proxy this
        # process cannot see it, so it is either configured or read from headers a trusted proxy sets.
        if self.app_secret is not None and not self.webhook_url and not settings.http.trusted_proxy:
            raise ValueError("CRMSYNC_HUBSPOT__APP_SECRET turns webhooks on: set CRMSYNC_HUBSPOT__WEBHOOK_URL to the "
                             "public URL HubSpot posts to, or CRMSYNC_HTTP__TRUSTED_PROXY=true behind a proxy that "
                             "sets X-Forwarded-Proto / Forwarded")


SECTION = HubSpotSettings
"""This package's settings section (crmsync.settings builds `Settings.hubspot` from it)."""
