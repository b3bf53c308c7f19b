"""Failures grouped by what the caller does about them (docs/architecture.md, "Errors").

- `FatalError`: stop. Bad configuration, revoked credentials: retrying cannot help.
  `AuthError` is the credentials kind of it; `StreamRefused` the kind that names the one object type the
  token or user may not read (an object stream refused is turned off, crmsync.sync.pull; anywhere else it stops).
- `RetriableError`: try again later with backoff (429, 5xx, timeouts, lock contention, malformed
  answers). `QuotaError` is the kind that lasts until a quota resets (`resume_at`).
- `RecordError`: one record is bad; quarantine it with the reason and carry on.

Which CRM answer becomes which error is decided in one table, crmsync/connectors/calls.py.
"""

from __future__ import annotations

from datetime import datetime


class CrmsyncError(Exception):
    """Base of every error crmsync raises on purpose."""


class FatalError(CrmsyncError):
    """Stops the run; the message is meant for the person who can fix it."""


class ConfigError(FatalError):
    """A setting or a definitions file is wrong. CLI exit code 2."""


class AuthError(FatalError):
    """The CRM refused the credentials (missing, wrong, revoked) or they lack a scope or permission."""


class StreamRefused(AuthError):
    """The CRM refuses the reads of one object (the token lacks its scope, the user Read on it): what stays
    the same whatever object it is, so the pass can say it in one warning. `crm`: the CRM as people name it
    ("HubSpot"); `crm_object`: the CRM's name of the object ("deals", "Opportunity"); `missing`: what the
    token or user lacks ("the token lacks crm.objects.deals.read"); `fix`: what to grant, and how.

    Raised by an object stream's pull, it turns that stream off for the life of the connector (the pass
    says so once, crmsync.sync.pull `Pull.objects`); raised anywhere else (the contact stream) it is the
    AuthError it is, and stops. The error table gives it where the answer names what to grant
    (crmsync.connectors.calls); else the connector's own classification does (Salesforce's refused object)."""

    def __init__(self, message: str, *, crm: str, crm_object: str, missing: str, fix: str) -> None:
        super().__init__(message)
        self.crm = crm
        self.crm_object = crm_object
        self.missing = missing
        self.fix = fix


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


class QuotaError(RetriableError):
    """The CRM's daily API quota is used up: nothing will work before `resume_at` (UTC).

    Retriable, since it ends by itself; but not retried within a pass (the retry policy skips it):
    the caller pauses the CRM until `resume_at`."""

    def __init__(self, message: str, resume_at: datetime) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class RecordError(CrmsyncError):
    """One record cannot be read, decided or written; it is quarantined and the run goes on."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"record {record_id}: {reason}")
        self.record_id = record_id
        self.reason = reason


class LeaseLost(CrmsyncError):
    """This replica no longer holds the stream's lease (another took it over): it stops before its next
    write, and the pass closes as interrupted. Not a failure: the new holder carries on."""
