"""When this pass last read each record from the CRM, on a monotonic timer: how old the values behind a
pending write are. Before a write batch's first send, the outbox re-reads the records read
`sync.recheck_after_seconds` or longer ago (docs/operations.md, "A person's later edit wins")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class ReadTimes:
    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self.timer = timer
        self._at: dict[str, float] = {}

    def note(self, record_ids: Iterable[str]) -> None:
        """These records are being read from the CRM now (a pulled page, a batch read)."""
        self._at.update(dict.fromkeys(record_ids, self.timer()))

    def older_than(self, record_id: str, seconds: float) -> bool:
        """Read by this pass `seconds` or longer ago. A record this pass did not read is not (an SLA
        sweep decides from the values stored at the last pull, before crmsync's own writes: checked
        against them, crmsync's writes would look like a person's)."""
        at = self._at.get(record_id)
        return at is not None and self.timer() - at >= seconds
