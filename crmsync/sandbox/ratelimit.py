"""A sliding-window request limit, "N/10s" as HubSpot states its burst limit."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def window_ms(self) -> int:
        return int(self.window * 1000)

    @classmethod
    def parse(cls, spec: str) -> RateLimiter:
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s\s*", spec)
        if not found or int(found.group(1)) < 1:
            raise ValueError(f"bad rate limit {spec!r}: expected N/SECONDSs, e.g. 100/10s")
        return cls(int(found.group(1)), float(found.group(2)))

    def take(self) -> tuple[bool, int, int]:
        """(allowed, remaining in the window, seconds to wait when refused)."""
        with self._lock:
            now = self.clock()
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                wait = self._times[0] + self.window - now
                return False, 0, max(1, math.ceil(wait))
            self._times.append(now)
            return True, self.limit - len(self._times), 0
