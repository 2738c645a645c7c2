"""The Elasticsearch mapping this project owns, and the document built from it.

A field list (dotted name under `processed_crash`, type, analyzer) is the single source of both
the index mapping and the document: only listed fields are copied, each converted to its type
(Socorro HEAD's approach, SOCORRO.md section 5), so a raw crash full of odd keys can never blow
up the mapping. Values that cannot be stored as their type are dropped rather than failing the
whole document.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from procsupervisor.storage import crashjson

MAX_KEYWORD_CHARS = 10_000  # Socorro's MAX_KEYWORD_FIELD_VALUE_SIZE
MAX_TERM_BYTES = 32_766  # Lucene's limit on one indexed term, in UTF-8 bytes
INTEGER_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
FIELD_TYPES = ("keyword", "text", "integer", "long", "double", "date", "boolean")
BUILTIN_ANALYZERS = ("standard", "simple", "whitespace", "keyword", "english")


@dataclass(frozen=True)
class Field:
    name: str  # dotted path inside processed_crash
    type: str
    analyzer: str | None = None  # text fields only

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"{self.name}: unknown field type {self.type}")
        if self.analyzer and self.type != "text":
            raise ValueError(f"{self.name}: only text fields take an analyzer")


def _fields(spec: str) -> tuple[Field, ...]:
    fields = []
    for line in spec.strip().splitlines():
        name, type_, *analyzer = line.split()
        fields.append(Field(name, type_, analyzer[0] if analyzer else None))
    return tuple(fields)


# What Super Search queries: identity, product, platform, crash reason, signature, timing and
# the few json_dump keys Socorro kept (json_dump_whitelist_keys); never whole stacks.
PROCESSED_CRASH_FIELDS: tuple[Field, ...] = _fields(
    """
    uuid keyword
    crash_id keyword
    signature keyword
    proto_signature text standard
    product keyword
    version keyword
    release_channel keyword
    build keyword
    build_id keyword
    date_processed date
    started_datetime date
    completed_datetime date
    client_crash_date date
    crash_time long
    submitted_timestamp date
    success boolean
    processor_notes text standard
    process_type keyword
    os_name keyword
    os_pretty_version keyword
    os_version keyword
    cpu_arch keyword
    cpu_info keyword
    cpu_count integer
    reason keyword
    address keyword
    crashing_thread integer
    uptime long
    install_age long
    last_crash long
    hang_type integer
    hangid keyword
    user_comments text standard
    app_notes text standard
    topmost_filenames keyword
    moz_crash_reason keyword
    abort_message keyword
    addons_checked boolean
    distributor keyword
    distributor_version keyword
    mdsw_status_string keyword
    minidump_sha256_hash keyword
    truncated boolean
    json_dump.largest_free_vm_block keyword
    json_dump.tiny_block_size long
    json_dump.write_combine_size long
    json_dump.system_info.os keyword
    json_dump.system_info.os_ver keyword
    json_dump.system_info.cpu_arch keyword
    json_dump.system_info.cpu_count integer
    json_dump.system_info.cpu_info keyword
    """
)


def build_mapping(fields: Iterable[Field] = PROCESSED_CRASH_FIELDS) -> dict[str, Any]:
    """The index mapping: strict everywhere, so nothing unplanned is ever mapped."""
    processed: dict[str, Any] = {"type": "object", "dynamic": "strict", "properties": {}}
    for field in fields:
        node = processed
        *parents, leaf = field.name.split(".")
        for part in parents:
            node = node["properties"].setdefault(
                part, {"type": "object", "dynamic": "strict", "properties": {}}
            )
        spec: dict[str, Any] = {"type": field.type}
        if field.analyzer:
            spec["analyzer"] = field.analyzer
        node["properties"][leaf] = spec
    return {
        "dynamic": "strict",
        "properties": {
            "crash_id": {"type": "keyword"},
            "removed_fields": {"type": "keyword"},
            "processed_crash": processed,
        },
    }


def mapped_leaf_names(mapping: Mapping[str, Any]) -> set[str]:
    """Dotted names of the leaf fields under `processed_crash` in an index's mapping."""
    found: set[str] = set()

    def walk(properties: Mapping[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            if "properties" in spec:
                walk(spec["properties"], f"{prefix}{name}.")
            else:
                found.add(f"{prefix}{name}")

    processed = mapping.get("properties", {}).get("processed_crash", {})
    walk(processed.get("properties", {}), "")
    return found


# -- document --------------------------------------------------------------------------------

_MISSING = object()


def lookup(source: Mapping[str, Any], dotted: str) -> Any:
    node: Any = source
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def build_document(
    crash_id: str,
    processed_crash: Mapping[str, Any],
    fields: Iterable[Field] = PROCESSED_CRASH_FIELDS,
    only: set[str] | None = None,
) -> dict[str, Any]:
    """`{crash_id, processed_crash}` with only the listed (and, given `only`, mapped) fields."""
    processed: dict[str, Any] = {}
    for field in fields:
        if only is not None and field.name not in only:
            continue
        value = lookup(processed_crash, field.name)
        if value is _MISSING or value is None:
            continue
        converted = convert(field, value)
        if converted is None:
            continue
        node = processed
        *parents, leaf = field.name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = converted
    return {"crash_id": crash_id, "processed_crash": processed}


def convert(field: Field, value: Any) -> Any:
    """The value as the field's type accepts it, or None to leave the field out."""
    if isinstance(value, list | tuple):
        items = [convert(field, item) for item in value]
        kept = [item for item in items if item is not None]
        return kept or None
    if field.type == "keyword":
        return to_keyword(value)
    if field.type == "text":
        return to_text(value)
    if field.type in INTEGER_RANGES:
        return to_integer(value, *INTEGER_RANGES[field.type])
    if field.type == "double":
        return to_double(value)
    if field.type == "date":
        return to_date(value)
    if field.type == "boolean":
        return to_boolean(value)
    raise ValueError(f"unknown type {field.type}")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8; lone surrogates (not encodable) become "?"."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return encoded.decode("utf-8")
    return encoded[:max_bytes].decode("utf-8", "ignore")  # drops a split trailing character


def to_keyword(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        return None
    else:
        text = str(value)
    # 10,000 characters can still be 40,000 UTF-8 bytes: also keep under Lucene's term limit.
    return truncate_utf8(text[:MAX_KEYWORD_CHARS], MAX_TERM_BYTES)


def to_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return None
    return truncate_utf8(str(value), MAX_TERM_BYTES)


def to_integer(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        number = int(value)
    else:
        try:
            number = int(value)
        except (TypeError, ValueError):
            # ES coerces "12.5" to 12 for integer fields; follow it, but no further.
            as_float = to_double(value)
            if as_float is None:
                return None
            number = int(as_float)
    return number if low <= number <= high else None


def to_double(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def to_date(value: Any) -> str | None:
    moment = crashjson.to_datetime(value)
    return moment.isoformat() if moment else None


def to_boolean(value: Any) -> bool:
    # Socorro's pseudo-boolean rule: only these mean true; anything else is false.
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return value is True or (isinstance(value, int) and value == 1)


def index_name(template: str, processed_crash: Mapping[str, Any], fallback: dt.date) -> str:
    """The weekly index (`socorro%Y%W`) for the crash's date_processed, else its crash-id date."""
    moment = crashjson.to_datetime(processed_crash.get("date_processed"))
    when = moment.astimezone(dt.UTC).date() if moment else fallback
    return when.strftime(template)


def remove_path(document: dict[str, Any], dotted: str) -> bool:
    """Delete a dotted path from the document; True if something was removed."""
    node: Any = document
    *parents, leaf = dotted.split(".")
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if isinstance(node, dict) and leaf in node:
        del node[leaf]
        return True
    return False
