"""The API budget governor: keeps crmsync within a share of the CRM's limits by slowing down
*before* the CRM refuses (429 / REQUEST_LIMIT_EXCEEDED), using the limits the CRM reports."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Governor:
    share: float = 0.8
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    waited: float = 0.0

    def observe(self, limit: int | None, remaining: int | None, window_seconds: float | None) -> float:
        """After a call: when more than `share` of the window's budget is used, pause long enough
        for the excess to age out of the window. Returns the pause."""
        if not limit or remaining is None or not window_seconds:
            return 0.0
        used = limit - remaining
        allowed = self.share * limit
        if used < allowed:
            return 0.0
        pause = window_seconds * (used - allowed + 1) / limit
        self.sleep(pause)
        self.waited += pause
        return pause


@dataclass
class Pacer:
    """At most `limit` calls in any `window` seconds, for limits the CRM enforces without telling
    (HubSpot search: no rate-limit headers). Counted from when each call *ended*: the server saw the
    call before that, so the next one reaches it more than `window` later whatever the latency."""

    limit: int
    window: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    waited: float = 0.0
    _ends: deque[float] = field(default_factory=deque, repr=False)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if len(self._ends) >= self.limit:
            pause = self._ends[0] + self.window - self.clock()
            if pause > 0:
                self.sleep(pause)
                self.waited += pause
        try:
            yield
        finally:
            self._ends.append(self.clock())
            while len(self._ends) > self.limit:
                self._ends.popleft()
