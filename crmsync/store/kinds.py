"""The closed sets of strings the store keeps: run kinds and outcomes, outbox kinds and statuses.

StrEnums whose values are exactly the strings stored, so rows written before these existed read the
same, and a member compares equal to its string (`RunOutcome.OK == "ok"`).
"""

from __future__ import annotations

import enum


class RunKind(enum.StrEnum):
    """What a row in `runs` was (`PassReport.kind`)."""

    SYNC = "sync"
    """A pull from the live cursor to now."""
    BACKFILL = "backfill"
    """A fixed window on a cursor of its own (`crmsync backfill`)."""
    WEBHOOK = "webhook"
    """Records a webhook named, read and decided in one batch."""
    SLA_SWEEP = "sla_sweep"
    """Records whose SLA clocks change state, re-decided from their stored inputs."""
    FLUSH = "flush"
    """The outbox sent on its own (no run row)."""


class RunOutcome(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    """Any exception."""
    INTERRUPTED = "interrupted"
    """Stopped, lease lost, killed (closed at the next start)."""


class OutboxKind(enum.StrEnum):
    WRITE = "write"
    """Field values for one record."""
    TASK = "task"
    """A task for the record's owner."""


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    """To be sent (again, after a retriable failure)."""
    SHADOW = "shadow"
    """Decided in shadow mode: kept, never sent."""
    DONE = "done"
    """The CRM took it."""
    FAILED = "failed"
    """Refused for good (or out of attempts); the record is quarantined."""
    STALE = "stale"
    """A person edited the record since the decision; the record was re-decided."""
    SUPERSEDED = "superseded"
    """A newer write for the same record replaced it before it was sent."""
