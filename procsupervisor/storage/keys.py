"""Socorro's crash storage key layout (docs/processing.md §3), one definition for every backend.

Keys are relative (`v2/raw_crash/...`, `v1/<kind>/<id>`): the fs backend puts them under its root
folder, the s3 backend under its prefix. Every function validates the crash id, and dump names
are checked, before a key is built (docs/architecture.md §11).
"""

from __future__ import annotations

import re

from procsupervisor import crashid
from procsupervisor.storage.base import MAIN_DUMP_NAME

# Dump names become a key component (and a file name): letters, digits, `_`, `-`, `.`, no
# leading dot. Socorro's are form-field names like upload_file_minidump_browser.
DUMP_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
# Key kinds that hold other parts of a crash: a dump named like one would overwrite (or forge) it.
RESERVED_DUMP_NAMES = frozenset({"raw_crash", "dump_names", "processed_crash"})
# Older collectors called the main dump "dump" or left its name empty.
MAIN_DUMP_ALIASES = frozenset({"", "dump", MAIN_DUMP_NAME})


class InvalidDumpName(ValueError):
    """A dump name that cannot be stored (unsafe characters, or a reserved key kind)."""


def canonical_dump_name(dump_name: str) -> str:
    """The name a dump is handed to the processor under (the main dump's aliases unified)."""
    return MAIN_DUMP_NAME if dump_name in MAIN_DUMP_ALIASES else dump_name


def dump_kind(dump_name: str) -> str:
    """The key component a dump is stored under: Socorro stores the main dump as `dump`."""
    if dump_name in MAIN_DUMP_ALIASES:
        return "dump"
    if not DUMP_NAME_RE.match(dump_name) or dump_name in RESERVED_DUMP_NAMES:
        raise InvalidDumpName(f"invalid dump name: {dump_name!r:.80}")
    return dump_name


def raw_crash_key(crash_id: str) -> str:
    crash_id = crashid.validate(crash_id)
    return f"v2/raw_crash/{crash_id[:3]}/{crashid.date_of(crash_id):%Y%m%d}/{crash_id}"


def legacy_raw_crash_key(crash_id: str) -> str:
    """Where raw crashes lived before 2018 (Socorro's read fallback)."""
    return f"v1/raw_crash/{crashid.validate(crash_id)}"


def dump_names_key(crash_id: str) -> str:
    return f"v1/dump_names/{crashid.validate(crash_id)}"


def dump_key(crash_id: str, dump_name: str) -> str:
    return f"v1/{dump_kind(dump_name)}/{crashid.validate(crash_id)}"


def processed_crash_key(crash_id: str) -> str:
    return f"v1/processed_crash/{crashid.validate(crash_id)}"
