"""JSON encoding shared by the production backends, the crash id a save is keyed by, and how
they read a date out of a crash.

Socorro serialized raw and processed crashes with a JSON encoder that writes dates and datetimes
as ISO 8601 strings (docs/processing.md §3); every backend here does the same so the copies in S3,
PostgreSQL and Elasticsearch agree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from procsupervisor import crashid


class ISOJSONEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, dt.date | dt.datetime | dt.time):
            return o.isoformat()
        if isinstance(o, bytes | bytearray):
            return o.decode("utf-8", "replace")
        if isinstance(o, set | frozenset | tuple):
            return list(o)
        return super().default(o)


def dumps(value: Any) -> str:
    """Compact JSON text; NaN and infinities are written as null (JSON has no spelling for them)."""
    try:
        return json.dumps(value, cls=ISOJSONEncoder, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # Rare: only then pay for a walk over the whole crash to null out non-finite floats.
        return json.dumps(
            _finite(value), cls=ISOJSONEncoder, separators=(",", ":"), allow_nan=False
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_finite(v) for v in value]
    return value


def crash_id_of(raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]) -> str:
    """The validated crash id of a crash being saved (processed `uuid`/`crash_id`, else raw)."""
    for source, key in (
        (processed_crash, "crash_id"),
        (processed_crash, "uuid"),
        (raw_crash, "uuid"),
        (raw_crash, "crash_id"),
    ):
        value = source.get(key)
        if value:
            return crashid.validate(value)
    raise crashid.InvalidCrashId("crash has no crash id (uuid / crash_id)")


def to_datetime(value: Any) -> dt.datetime | None:
    """A crash's date value (datetime, date, epoch seconds or ISO 8601 text) as an aware
    datetime (naive ones are UTC), or None when it is not a date."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
