"""Structured logs: one JSON object per line (or readable console lines), never secrets or PII.

Log calls pass facts in `extra` (counts, ids, durations); names, emails and BANT text are never
logged, and every text that may quote the CRM (the message, an `error` extra) goes through
`scrub_text` here. `configure` is called once by the CLI from the settings.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from crmsync.redact import scrub_text

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": scrub_text(record.getMessage()),
        }
        entry.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname.lower():7} {scrub_text(record.getMessage())}"
        return line + (f"  {extra}" if extra else "")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: scrub_text(v) if isinstance(v, str) else v for k, v in vars(record).items() if k not in _STANDARD}


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (an in-process CLI run swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(log_format: str = "json", level: str = "INFO") -> None:
    handler = _Stderr(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    for name in ("crmsync", "apscheduler"):  # the scheduler's own warnings (a skipped run) in the same format
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger("crmsync").setLevel(level)
