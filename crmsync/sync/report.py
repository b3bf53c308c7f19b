"""What a pass reports: its kind, window, counts, plan (a dry run), stages decided and outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.store.kinds import RunKind, RunOutcome


@dataclass
class PassReport:
    crm: str
    kind: RunKind
    mode: str
    window: tuple[datetime, datetime]
    dry_run: bool = field(default=False, kw_only=True)
    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("pulled", "unchanged", "decided", "stored", "changed", "written", "write_failed", "tasks", "quarantined",
         "events", "stale_writes", "erased", "deals"), 0))
    plan: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    outcome: RunOutcome = RunOutcome.RUNNING
