"""Logging: quiet by default, structured (``key=value`` text, or JSON lines with Logging.Mode=json)."""

from __future__ import annotations

import collections
import json
import logging
import sys
from datetime import UTC, datetime

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_SHORT = {"DEBUG": "DBG", "INFO": "INF", "WARNING": "WRN", "ERROR": "ERR", "CRITICAL": "FTL"}


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The traceback a record carries, if it is to be shown: always with an error (what failed unexpectedly is
    worth its lines), otherwise only at debug level, so that a warning that carries one stays one line."""
    if not record.exc_info:
        return ""
    if record.levelno < logging.ERROR and not logging.getLogger("bacalhau").isEnabledFor(logging.DEBUG):
        return ""
    return formatter.formatException(record.exc_info)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        line = f"{stamp} {_SHORT.get(record.levelname, record.levelname)} {record.getMessage()}"
        line += f" component={record.name.removeprefix('bacalhau.')}"
        if traceback := _traceback(self, record):
            line += "\n" + traceback
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "component": record.name.removeprefix("bacalhau."),
            "message": record.getMessage(),
        }
        if traceback := _traceback(self, record):
            entry["error"] = traceback
        return json.dumps(entry)


def _not_tls_eof_notice(record: logging.LogRecord) -> bool:
    """asyncio warns "returning true from eof_received() has no effect when using ssl" each time a TLS peer hangs up
    on a stream (nats-py's connections over TLS, at every disconnect): its own protocol classes meeting, nothing to
    act on."""
    return "eof_received() has no effect" not in record.getMessage()


RECENT_ERRORS = 50  # records kept
RECENT_ERROR_LENGTH = 1000  # characters kept of each message


class RecentErrors(logging.Handler):
    """The last ``RECENT_ERRORS`` ERROR (and worse) records of the process, each message cut to
    ``RECENT_ERROR_LENGTH`` characters, without tracebacks: what ``/agent/debug`` shows. Bounded whatever fails how
    often."""

    def __init__(self, size: int = RECENT_ERRORS, length: int = RECENT_ERROR_LENGTH) -> None:
        super().__init__(logging.ERROR)
        self._length = length
        self._records: collections.deque[dict[str, str]] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message += f" ({type(error).__name__}: {error})"
        except Exception:  # a record whose arguments do not format
            message = str(record.msg)
        self._records.append(
            {
                "Time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                "Level": record.levelname,
                "Logger": record.name[:200],
                "Message": message[: self._length],
            }
        )

    def records(self) -> list[dict[str, str]]:
        """The kept records, oldest first (copies)."""
        return [dict(entry) for entry in list(self._records)]

    def clear(self) -> None:
        self._records.clear()


_recent_errors: RecentErrors | None = None


def recent_errors() -> RecentErrors:
    """The process's one :class:`RecentErrors`, attached to the root logger on first use (``setup_logging`` keeps
    it)."""
    global _recent_errors
    if _recent_errors is None:
        _recent_errors = RecentErrors()
    root = logging.getLogger()
    if _recent_errors not in root.handlers:
        root.addHandler(_recent_errors)
    return _recent_errors


def setup_logging(level: str = "info", mode: str = "default") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if mode == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler, *(kept for kept in root.handlers if isinstance(kept, RecentErrors))]
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    root.setLevel(logging.WARNING)
    logging.getLogger("bacalhau").setLevel(numeric)
    for noisy in ("uvicorn", "uvicorn.error", "nats"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    asyncio_log = logging.getLogger("asyncio")
    if _not_tls_eof_notice not in asyncio_log.filters:
        asyncio_log.addFilter(_not_tls_eof_notice)
