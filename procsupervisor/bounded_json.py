"""JSON from outside (a submitted or stored raw crash) read within bounds: its size and its
nesting depth (docs/architecture.md §11).

`json.loads` recurses once per nesting level, and so do the processor's rules, `deepcopy` and
every encoder after it: `{"a":` repeated 200,000 times ended `submit` in a RecursionError
traceback, and a stored one would fail every attempt in a worker. The depth is measured before
parsing, by a linear scan that skips string contents, and refused with a plain ValueError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_JSON_BYTES = 20 * 1024 * 1024
# Far above any real crash (annotations nest a few levels), far below where Python recursion
# (json, copy.deepcopy, the rules) runs out.
MAX_JSON_DEPTH = 100

# A JSON string (escapes included) or one bracket; strings are matched whole so brackets
# inside them are never counted.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JSONTooComplex(ValueError):
    """Larger or more deeply nested than the bounds allow."""


def loads(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON text; ValueError (JSONTooComplex for the bounds) naming `what`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JSONTooComplex(f"{what} is larger than {max_bytes} bytes ({len(raw)})")
    depth = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JSONTooComplex(f"{what} is nested deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1
    try:
        return json.loads(raw)
    except RecursionError:  # cannot happen within the depth bound; kept as a last guard
        raise JSONTooComplex(f"{what} is nested too deeply to read") from None
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def loads_object(data: bytes | str, what: str, **bounds: int) -> dict[str, Any]:
    value = loads(data, what, **bounds)
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def check_depth(value: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """The same depth bound for a value already in memory (a caller's dict), walked without
    recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JSONTooComplex(f"{what} is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
