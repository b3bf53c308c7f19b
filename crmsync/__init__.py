"""crmsync: the lead-qualification contract, enforced inside the CRM."""

__version__ = "0.1.0"
