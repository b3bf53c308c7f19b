"""The HubSpot sandbox: `HubSpotApp` (the API over a `Portal`) served by `SandboxServer`."""

from crmsync.crms.hubspot.sandbox.api import HubSpotApp
from crmsync.crms.hubspot.sandbox.seeding import install_crmsync_properties, seed_portal
from crmsync.crms.hubspot.sandbox.state import Portal

__all__ = ["HubSpotApp", "Portal", "install_crmsync_properties", "seed_portal"]
