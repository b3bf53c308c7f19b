"""Failures grouped by what the caller does about them (docs/architecture.md, "Errors").

- `FatalError`: stop. Bad configuration, revoked credentials: retrying cannot help.
- `RetriableError`: try again later with backoff (429, 5xx, timeouts, lock contention).
- `RecordError`: one record is bad; quarantine it with the reason and carry on.
"""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base of every error crmsync raises on purpose."""


class FatalError(CrmsyncError):
    """Stops the run; the message is meant for the person who can fix it."""


class ConfigError(FatalError):
    """A setting or a definitions file is wrong. CLI exit code 2."""


class DefinitionsError(ConfigError):
    """The governed definitions file is invalid; `problems` lists every finding, one line each."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class RetriableError(CrmsyncError):
    """A transient failure; `retry_after` (seconds) is the server's hint when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecordError(CrmsyncError):
    """One record cannot be read, decided or written; it is quarantined and the run goes on."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"record {record_id}: {reason}")
        self.record_id = record_id
        self.reason = reason
