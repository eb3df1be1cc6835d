"""Logs: one JSON object per line (LOG_FORMAT=json, the default) or readable text.

Every logger goes through the root handler set up by ``configure_logging``. A record's
``extra`` fields become fields of its JSON object (or ``key=value`` pairs in text), so
a log shipper indexes them without parsing messages.

The request log (logger ``crmgraph.requests``) has one line per GraphQL operation,
written by server.metrics.OperationTelemetry. It never holds the query text or the
variables: either may carry personal data.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from server.settings import Settings, SettingsError

REQUEST_LOGGER = "crmgraph.requests"
LOG_FORMATS = ("json", "text")

request_logger = logging.getLogger(REQUEST_LOGGER)

# What every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", ...extra fields, "exc"}, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a field that is not JSON (a Decimal, a path) is written as text
        # rather than losing the line.
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the extra fields after the message as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        pairs = " ".join(f"{key}={_text(value)}" for key, value in extra_fields(record).items())
        return f"{line} {pairs}" if pairs else line


def _text(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
        return value
    return orjson.dumps(value, default=str).decode()


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(settings: Settings | None = None) -> None:
    """The root handler, to stderr, in the settings' format and level.

    Without settings they are read from the environment; settings that do not load
    leave the defaults here, and the command that needs them reports what is wrong.
    """
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError:
            settings = Settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO))


def request_log(fields: dict[str, Any]) -> None:
    request_logger.info("request", extra=fields)
