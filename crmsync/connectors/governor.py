"""The API budget governor: keeps crmsync within a share of the CRM's limits by slowing down
*before* the CRM refuses (429 / REQUEST_LIMIT_EXCEEDED), using the limits the CRM reports."""

from __future__ import annotations

import time
from collections.abc import Callable
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
