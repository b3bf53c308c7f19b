"""When this pass last read each record from the CRM, on a monotonic timer: how old the values behind a
pending write are. Before a write batch's first send, the outbox re-reads the records read
`sync.recheck_after_seconds` or longer ago (docs/operations.md, "A person's later edit wins")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

P = TypeVar("P")


class ReadTimes:
    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self.timer = timer
        self._at: dict[str, float] = {}

    def note(self, record_ids: Iterable[str], *, at: float | None = None) -> None:
        """These records were read from the CRM `at` (when their request went out), or now."""
        self._at.update(dict.fromkeys(record_ids, self.timer() if at is None else at))

    def timed(self, pages: Iterable[P]) -> Iterator[tuple[P, float]]:
        """Each page with the moment it was asked for, before its request went out: the values in it are
        at least that old (a connector may make more calls before it hands the page over, and the pass
        reads one page ahead)."""
        ahead = iter(pages)
        while True:
            asked = self.timer()
            page = next(ahead, None)
            if page is None:
                return
            yield page, asked

    def older_than(self, record_id: str, seconds: float) -> bool:
        """Read by this pass `seconds` or longer ago. A record this pass did not read is not (an SLA
        sweep decides from the values stored at the last pull, before crmsync's own writes: checked
        against them, crmsync's writes would look like a person's)."""
        at = self._at.get(record_id)
        return at is not None and self.timer() - at >= seconds
