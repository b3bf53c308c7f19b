"""The retention job (`crmsync prune`, and the daemon once a day): what the store keeps, and for how long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from crmsync.settings import Settings
from crmsync.store import Store

SWEEPS_KEPT = timedelta(days=1)
"""SLA sweeps run every minute per CRM; a day of them is enough to see one failing."""


@dataclass(frozen=True)
class Pruned:
    inputs: int
    """Input sets behind decisions older than CRMSYNC_INPUTS_RETENTION_DAYS (the decisions stay)."""
    runs: int
    """Run-log rows older than CRMSYNC_RUNS_RETENTION_DAYS, and SLA sweeps older than a day."""


def prune(store: Store, settings: Settings, now: datetime) -> Pruned:
    inputs = store.drop_inputs_before(now - timedelta(days=settings.inputs_retention_days))
    runs = store.drop_runs_before(now - timedelta(days=settings.runs_retention_days), sweeps_before=now - SWEEPS_KEPT)
    return Pruned(inputs, runs)
