"""The HubSpot sandbox: `HubSpotApp` (the API over a `Portal`) served by `SandboxServer`."""

from crmsync.sandbox.hubspot.api import HubSpotApp
from crmsync.sandbox.hubspot.seeding import install_crmsync_properties, seed_portal
from crmsync.sandbox.hubspot.state import Portal

__all__ = ["HubSpotApp", "Portal", "install_crmsync_properties", "seed_portal"]
