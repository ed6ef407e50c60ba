"""Logging: quiet by default, structured (``key=value`` text, or JSON lines with Logging.Mode=json)."""

from __future__ import annotations

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


def setup_logging(level: str = "info", mode: str = "default") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if mode == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    root.setLevel(logging.WARNING)
    logging.getLogger("bacalhau").setLevel(numeric)
    for noisy in ("uvicorn", "uvicorn.error", "nats"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    asyncio_log = logging.getLogger("asyncio")
    if _not_tls_eof_notice not in asyncio_log.filters:
        asyncio_log.addFilter(_not_tls_eof_notice)
