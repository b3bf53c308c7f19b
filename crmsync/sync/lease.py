"""A replica's hold on a stream: the lease row and the fencing token it was granted with.

The pass checks and renews it before every CRM write call (the connectors' `fence`); once another
replica has taken the lease (the token moved on) or it expired, `hold` raises `LeaseLost` and nothing
more is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from crmsync.errors import LeaseLost
from crmsync.store import Store


@dataclass
class Lease:
    store: Store
    name: str
    holder: str
    token: int
    ttl: timedelta

    @classmethod
    def take(cls, store: Store, name: str, holder: str, ttl: timedelta) -> Lease | None:
        """The lease when `holder` has it (taken or renewed), None while another replica holds it."""
        token = store.acquire_lease(name, holder, ttl)
        return None if token is None else cls(store, name, holder, token, ttl)

    def hold(self) -> None:
        """Renew for another ttl, or raise LeaseLost when it is no longer ours under this token."""
        if not self.store.renew_lease(self.name, self.holder, self.token, self.ttl):
            raise LeaseLost(f"lease {self.name} lost (token {self.token}): another replica took over; "
                            "stopping before the next write")
