"""The Salesforce sandbox: `SalesforceApp` (the REST API over an `Org`) served by `SandboxServer`."""

from crmsync.crms.salesforce.sandbox.api import SalesforceApp
from crmsync.crms.salesforce.sandbox.org import Org
from crmsync.crms.salesforce.sandbox.seeding import install_custom_fields, seed_org

__all__ = ["Org", "SalesforceApp", "install_custom_fields", "seed_org"]
