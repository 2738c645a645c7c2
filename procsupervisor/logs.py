"""Structured logging: one `key=value` line per event on stderr (docs/architecture.md §12).

Call sites pass the fields as `extra={"kv": {...}}` or use `log_event`, so a line can be grepped
and parsed by machines (`crash_id=... outcome=ok total_ms=12.3`) while staying readable.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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

    def format(self, record: logging.LogRecord) -> str:
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
        line = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line


def configure(level: str = "INFO") -> None:
    """Send every `procsupervisor` log line to stderr in key=value form at the given level."""
    root = logging.getLogger("procsupervisor")
    if not any(getattr(h, "_procsupervisor", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(KeyValueFormatter())
        handler._procsupervisor = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger("procsupervisor").setLevel(level.upper())


def log_event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log `msg` with structured fields (skipped cheaply when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"kv": fields})
