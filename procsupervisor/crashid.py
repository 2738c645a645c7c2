"""Socorro crash ids ("ooids"): validation, creation and the date they carry.

Every crash id is validated here before it is used to build a path, a storage key or an SQL
parameter (docs/architecture.md §11).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

CRASH_ID_RE = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{6}[0-9]{6}$")


class InvalidCrashId(ValueError):
    """Raised for anything that is not a well-formed Socorro crash id."""


def is_valid(crash_id: object) -> bool:
    if not isinstance(crash_id, str) or not CRASH_ID_RE.match(crash_id):
        return False
    try:
        date_of(crash_id)
    except InvalidCrashId:
        return False
    return True


def validate(crash_id: object) -> str:
    """Return the crash id unchanged, or raise InvalidCrashId."""
    if not is_valid(crash_id):
        raise InvalidCrashId(f"invalid crash id: {crash_id!r:.80}")
    assert isinstance(crash_id, str)
    return crash_id


def date_of(crash_id: str) -> dt.date:
    """The UTC collection date encoded in the last six digits (YYMMDD)."""
    try:
        return dt.date(2000 + int(crash_id[-6:-4]), int(crash_id[-4:-2]), int(crash_id[-2:]))
    except ValueError as exc:
        raise InvalidCrashId(f"crash id has no valid date: {crash_id!r:.80}") from exc


def create(when: dt.datetime | None = None, throttle: int = 0) -> str:
    """A new crash id: uuid4 minus its last 7 chars + throttle digit + YYMMDD (UTC)."""
    when = when or dt.datetime.now(dt.UTC)
    if not 0 <= throttle <= 9:
        raise ValueError("throttle digit must be 0-9")
    return f"{str(uuid.uuid4())[:-7]}{throttle}{when:%y%m%d}"
