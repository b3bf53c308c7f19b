"""Erasure when the CRM deletes a record: everything the store keeps about it goes (docs/privacy.md).

Three triggers call `erase`: a HubSpot `contact.deletion` / `contact.privacyDeletion` webhook
(crmsync.webhooks), a deleted lead met by the Salesforce pull (its queryAll window, `PulledPage.deleted`),
and the daily sweep of the contacts HubSpot lists as archived (`sweep_deleted`). Each erased record is
logged by CRM and id only, never its content, and counted (`crmsync_records_erased_total`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from crmsync.connectors.base import Connector
from crmsync.store import Store

log = logging.getLogger("crmsync.erasure")
DELETED_STREAM = "contacts:deleted"
SWEEP_EVERY = timedelta(days=1)
"""How often the CRM's list of deleted records is read (HubSpot: every archived contact, 100 a call)."""


def erase(store: Store, crm: str, ids: Iterable[str], trigger: str) -> int:
    """Erase the records the store still holds among `ids` (each in one transaction); how many were."""
    held = store.held(crm, [str(i) for i in ids])
    for record_id in held:
        rows = store.forget(crm, record_id)
        log.info("record erased: deleted in the CRM", extra={"crm": crm, "record_id": record_id,
                                                              "trigger": trigger, "rows": rows})
    return len(held)


def sweep_due(store: Store, crm: str, now: datetime) -> bool:
    """Whether a day has passed since the last sweep of this CRM's deleted records (or none ran)."""
    last = store.cursor(crm, DELETED_STREAM)
    return last is None or now - last >= SWEEP_EVERY


def sweep_deleted(store: Store, connector: Connector, now: datetime) -> int:
    """Erase every record the CRM lists as deleted that the store still holds, then note the time.
    Run at most once a `SWEEP_EVERY` (`sweep_due`): the list cannot be filtered by date, so its cost
    is one call per 100 deleted records whatever the window."""
    erased = sum(erase(store, connector.name, ids, "deleted_list") for ids in connector.deleted())
    with store.transaction() as c:
        store.set_cursor(c, connector.name, DELETED_STREAM, now)
    return erased
