"""Stateful local emulators of the HubSpot and Salesforce APIs, plus seeded demo data.

They are part of the product: users try crmsync without a CRM account, and the tests, the demo
and the benchmarks run against them through the official client libraries.
"""
