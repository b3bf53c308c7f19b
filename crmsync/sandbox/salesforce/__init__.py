"""The Salesforce sandbox: `SalesforceApp` (the REST API over an `Org`) served by `SandboxServer`."""

from crmsync.sandbox.salesforce.api import SalesforceApp
from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.salesforce.seeding import install_custom_fields, seed_org

__all__ = ["Org", "SalesforceApp", "install_custom_fields", "seed_org"]
