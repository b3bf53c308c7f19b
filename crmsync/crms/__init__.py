"""The CRMs crmsync knows, by name: adding a CRM is its package here (`crmsync/crms/<name>/`) and its
name in `CRMS`.

Names only: `crmsync.settings` and `crmsync.definitions.schema` read this list, and the packages
import both, so this module imports nothing. A package holds its settings section (`settings.py`),
its connector (`connector.py`, `mapping.py`), its registration (`crm.py`: a `crmsync.connectors.crm.Crm`
named `CRM`) and its emulator (`sandbox/`).
"""

CRMS: tuple[str, ...] = ("hubspot", "salesforce")
"""`--crm`, the settings section (CRMSYNC_<NAME>__*), the definitions' `mappings.<name>`, the store's crm;
the order the CLI and the daemon list them in."""
