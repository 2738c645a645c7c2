"""Tolerant readers for annotation values: raw crashes are hostile, values are mostly strings."""

from __future__ import annotations

from typing import Any

# PostgreSQL's integer columns and Elasticsearch's long fields both stop here.
MAX_INT = 2**63 - 1


def as_int(value: Any) -> int | None:
    """An int from an int or a decimal string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        # Bound the work int() does on a hostile, very long digit string.
        if not text or len(text) > 20:
            return None
        try:
            return int(text)
        except ValueError:
            return None
    return None


def as_str(value: Any, *, max_length: int = 10_000) -> str | None:
    """A stripped string, cut to max_length; None for non-strings."""
    if not isinstance(value, str):
        return None
    return value.strip()[:max_length]


def as_flag(value: Any) -> bool | None:
    """Annotation booleans: "1"/"true" and "0"/"false"."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    return None


def dig(data: Any, *path: str | int, default: Any = None) -> Any:
    """data[path[0]][path[1]]... or default when any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return default
        elif not isinstance(data, dict) or step not in data:
            return default
        data = data[step]
    return data
