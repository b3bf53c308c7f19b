"""Injected faults, by rate and by seed: "429:0.05,500:0.02,502:0.01,503:0.01,timeout:0.01,207:0.05".

The same seed and the same sequence of requests give the same faults, so a failing run can be
replayed. `207` (a partial batch failure) only applies to batch endpoints.
"""

from __future__ import annotations

import enum
import random
import threading


class Fault(enum.Enum):
    TOO_MANY = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    TIMEOUT = "timeout"
    PARTIAL = "207"
    LOCKED = "lock"  # Salesforce UNABLE_TO_LOCK_ROW


class FaultSpecError(ValueError):
    pass


def parse_faults(spec: str) -> dict[Fault, float]:
    rates: dict[Fault, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rate = part.partition(":")
        try:
            fault = Fault(name.strip())
            value = float(rate)
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise FaultSpecError(f"bad fault {part!r}: expected NAME:RATE with NAME one of {known}") from None
        if not 0 <= value <= 1:
            raise FaultSpecError(f"bad fault {part!r}: the rate must be between 0 and 1")
        rates[fault] = value
    if sum(rates.values()) > 1:
        raise FaultSpecError(f"fault rates in {spec!r} add up to more than 1")
    return rates


class FaultInjector:
    def __init__(self, spec: str = "", seed: int = 0) -> None:
        self.rates = parse_faults(spec)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[Fault, int] = {}

    def set(self, spec: str, seed: int | None = None) -> None:
        with self._lock:
            self.rates = parse_faults(spec)
            if seed is not None:
                self._random = random.Random(seed)

    def draw(self, *, batch: bool = False, allowed: frozenset[Fault] | None = None) -> Fault | None:
        """One fault or None for this request; every request consumes exactly one draw."""
        if not self.rates:
            return None
        with self._lock:
            roll = self._random.random()
            for fault, rate in self.rates.items():
                if roll < rate:
                    per_record = fault in (Fault.PARTIAL, Fault.LOCKED)
                    if (per_record and not batch) or (allowed is not None and fault not in allowed):
                        return None
                    self.injected[fault] = self.injected.get(fault, 0) + 1
                    return fault
                roll -= rate
        return None
