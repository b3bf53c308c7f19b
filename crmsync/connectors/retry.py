"""Retries for CRM calls: tenacity with exponential backoff and jitter, honouring Retry-After.

Only `RetriableError` is retried (calls.py's table says which answers are), except `QuotaError`:
a used-up daily quota does not come back within a pass, so it goes straight to the caller, as does
everything else. The policy is a value so tests can shorten the waits and record the sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from crmsync.errors import QuotaError, RetriableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    retry_after_cap: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    on_retry: Callable[[RetriableError, float], None] | None = field(default=None, compare=False)

    def _wait(self) -> Callable[[RetryCallState], float]:
        backoff = wait_exponential_jitter(multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            hinted = getattr(error, "retry_after", None)
            seconds = min(float(hinted), self.retry_after_cap) if hinted is not None else backoff(state)
            if self.on_retry is not None and isinstance(error, RetriableError):
                self.on_retry(error, seconds)
            return seconds

        return wait

    def run(self, call: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait(),
            retry=retry_if_exception(_retriable),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(call)


def _retriable(error: BaseException) -> bool:
    return isinstance(error, RetriableError) and not isinstance(error, QuotaError)
