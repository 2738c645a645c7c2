"""Structured logging: one `key=value` line per event on stderr (docs/architecture.md §12).

Call sites pass the fields as `extra={"kv": {...}}` or use `log_event`, so a line can be grepped
and parsed by machines (`crash_id=... outcome=ok total_ms=12.3`) while staying readable.
`start --log-format json` writes the same fields as one JSON object per line instead, for log
shippers that parse JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("kv", "json")


def _quote(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") or "0"  # 0.0 would strip to nothing
    else:
        text = str(value)
    if text == "" or any(ch in text for ch in ' "=\n\r\t'):
        # Line breaks are escaped so that one event is always one line, whatever it quotes.
        escaped = (
            text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", "\\r")
        )
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=... logger=... pid=... msg=... key=value ...`."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The event's fields in order: the standard ones, then the call site's."""
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "kv", None)
        if isinstance(extra, Mapping):
            fields.update(extra)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{key}={_quote(value)}" for key, value in self.fields(record).items())
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line


class JsonFormatter(KeyValueFormatter):
    """The same fields as `KeyValueFormatter`, as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        # default=str: a field that is not JSON (a Path, an enum) is written as its text.
        return json.dumps(fields, default=str, ensure_ascii=False)


def configure(level: str = "INFO", log_format: str = "kv") -> None:
    """Send every `procsupervisor` log line to stderr, as key=value (or JSON) lines, at the
    given level. Called again, it switches the format of the handler it installed."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger("procsupervisor")
    handler = next((h for h in root.handlers if getattr(h, "_procsupervisor", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._procsupervisor = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger("procsupervisor").setLevel(level.upper())


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log `msg` with structured fields (skipped cheaply when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"kv": fields})
