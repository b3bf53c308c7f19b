"""Webhook event ids, remembered for a window of days so a replay is refused after a restart too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from crmsync.store import schema as t
from crmsync.store.base import StoreBase


class WebhookEvents(StoreBase):
    def remember_webhook_events(self, keys: list[str], now: datetime) -> list[str]:
        """Remember these event keys; return those not seen before (in order). Concurrent callers with the
        same key: exactly one gets it back (the insert decides, not a read before it)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        with self.transaction() as c:
            inserted = set(c.execute(
                self.insert(t.webhook_events).values([{"key": key, "received_at": now} for key in unique])
                .on_conflict_do_nothing(index_elements=["key"]).returning(t.webhook_events.c.key)).scalars())
        return [key for key in unique if key in inserted]

    def forget_webhook_events(self, before: datetime, keep_at_most: int) -> int:
        """Drop keys received before `before`, then the oldest beyond `keep_at_most`; the number dropped."""
        with self.transaction() as c:
            dropped = c.execute(t.webhook_events.delete().where(t.webhook_events.c.received_at < before)).rowcount
            newest = select(t.webhook_events.c.key).order_by(t.webhook_events.c.received_at.desc(),
                                                             t.webhook_events.c.key).offset(keep_at_most)
            dropped += c.execute(t.webhook_events.delete().where(t.webhook_events.c.key.in_(newest))).rowcount
        return int(dropped)
