"""Leases (one syncer per stream across replicas, fenced by a token) and quota pauses.

A pause is kept in the leases table (a named row that holds until a time): the lease `pause:<crm>`,
whose holder is why it is paused, until `expires_at`. No replica takes it; every replica reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import case, select, update

from crmsync.redact import scrub_text
from crmsync.store import schema as t
from crmsync.store.base import StoreBase, aware


class Leases(StoreBase):
    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> int | None:
        """Take or renew the lease until now + ttl. The fencing token when `holder` has it (it goes up
        each time the lease changes hands or is taken again after expiring), None when another has it."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            c.execute(self.insert(t.leases).values(name=name, holder=holder, expires_at=now - timedelta(seconds=1),
                                                   token=0).on_conflict_do_nothing(index_elements=["name"]))
            kept = (t.leases.c.holder == holder) & (t.leases.c.expires_at >= now)
            taken = c.execute(update(t.leases).where(
                t.leases.c.name == name, (t.leases.c.holder == holder) | (t.leases.c.expires_at < now),
            ).values(holder=holder, expires_at=now + ttl,
                     token=case((kept, t.leases.c.token), else_=t.leases.c.token + 1)).returning(t.leases.c.token))
            token = taken.scalar()
            return int(token) if token is not None else None

    def renew_lease(self, name: str, holder: str, token: int, ttl: timedelta) -> bool:
        """Extend a lease still held under this token (not expired, not taken since); False when lost."""
        now = datetime.now(UTC)
        with self.transaction() as c:
            renewed = c.execute(update(t.leases).where(
                t.leases.c.name == name, t.leases.c.holder == holder, t.leases.c.token == token,
                t.leases.c.expires_at >= now).values(expires_at=now + ttl))
            return bool(renewed.rowcount)

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as c:
            c.execute(t.leases.delete().where(t.leases.c.name == name, t.leases.c.holder == holder))

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.leases).where(t.leases.c.name == name)).first()
        return (row.holder, aware(row.expires_at)) if row else None  # type: ignore[return-value]

    def pause(self, crm: str, until: datetime, why: str, now: datetime) -> bool:
        """Pause a CRM until `until` (a later time extends a pause, an earlier one changes nothing). True
        when it was not paused at `now`: a new pause, which the caller reports once."""
        name = f"pause:{crm}"
        with self.transaction() as c:
            row = c.execute(select(t.leases.c.expires_at).where(t.leases.c.name == name)).first()
            before = aware(row.expires_at) if row else None
            active = before is not None and before > now
            if before is None or not active or until > before:
                why = scrub_text(why)[:128]
                statement = self.insert(t.leases).values(name=name, holder=why, expires_at=until, token=0)
                c.execute(statement.on_conflict_do_update(index_elements=["name"],
                                                          set_={"holder": why, "expires_at": until}))
        return not active

    def paused(self, crm: str, now: datetime) -> tuple[datetime, str] | None:
        """(until, why) while the CRM is paused at `now`, else None."""
        found = self.lease_holder(f"pause:{crm}")
        return (found[1], found[0]) if found is not None and found[1] > now else None

    def resume(self, crm: str, now: datetime) -> None:
        """Forget a pause that is over (one set since, by another replica, stays)."""
        with self.transaction() as c:
            c.execute(t.leases.delete().where(t.leases.c.name == f"pause:{crm}", t.leases.c.expires_at <= now))
