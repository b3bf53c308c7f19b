"""Erasure when the CRM deletes a record: everything the store keeps about it goes (docs/privacy.md).

Three triggers call `erase`: a HubSpot `contact.deletion` / `contact.privacyDeletion` webhook
(crmsync.webhooks), a deleted lead met by the Salesforce pull (its queryAll window, `PulledPage.deleted`),
and the daily sweep of the records a CRM lists as deleted (`sweep`: HubSpot's archived contacts). Each erased record is
logged by CRM and id only, never its content, and counted (`crmsync_records_erased_total`). The same
sweep drops the other objects the CRM lists as deleted (HubSpot's archived deals, which its search never
returns: each object stream's own list, `ObjectStream.deleted`, but a refused stream's), so they stop
counting as pipeline; such an object is not personal data of its own, so it is not
erased, only dropped (`Store.forget_objects`, as for the objects a pull finds deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from crmsync.connectors.base import Connector, DeletedList
from crmsync.model import ObjectType
from crmsync.store import Store
from crmsync.sync.window import DELETED_STREAM

log = logging.getLogger("crmsync.erasure")
SWEEP_EVERY = timedelta(days=1)
"""How often the CRM's lists of deleted records are read (HubSpot: every archived contact and deal, 100 a call)."""


def erase(store: Store, crm: str, ids: Iterable[str], trigger: str) -> int:
    """Erase the records the store still holds among `ids` (each in one transaction); how many were."""
    held = store.held(crm, [str(i) for i in ids])
    for record_id in held:
        rows = store.forget(crm, record_id)
        log.info("record erased: deleted in the CRM", extra={"crm": crm, "record_id": record_id,
                                                              "trigger": trigger, "rows": rows})
    return len(held)


def sweep(store: Store, connector: Connector, now: datetime) -> int:
    """Where the CRM lists its deleted records (`DeletedList`) and a `SWEEP_EVERY` has passed since the
    last sweep (or none ran): erase every listed contact the store still holds and drop every other listed
    object it keeps (deals), then note the time on the cursor `contacts:deleted`. The lists cannot be filtered by
    date, so a sweep costs one call per 100 deleted records whatever the window. How many records were
    erased (0 when no sweep was due)."""
    if not isinstance(connector, DeletedList):
        return 0
    last = store.cursor(connector.name, DELETED_STREAM)
    if last is not None and now - last < SWEEP_EVERY:
        return 0
    erased = 0
    dropped: dict[str, int] = {}
    for object_type, ids in connector.deleted():
        if object_type == ObjectType.CONTACT:
            erased += erase(store, connector.name, ids, "deleted_list")
        else:
            dropped[object_type] = dropped.get(object_type, 0) + store.forget_objects(
                connector.name, ids, object_type=object_type)
    for kind, count in dropped.items():
        if count:
            log.info("objects dropped: deleted in the CRM", extra={"crm": connector.name, "object_type": kind,
                                                                    "objects": count})
    with store.transaction() as c:
        store.set_cursor(c, connector.name, DELETED_STREAM, now)
    return erased
