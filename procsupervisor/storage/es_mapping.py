"""The Elasticsearch mapping this project owns, and the document built from it.

A field list (dotted name under `processed_crash`, type, analyzer) is the single source of both
the index mapping and the document: only listed fields are copied, each converted to its type
(Socorro HEAD's approach, docs/processing.md §5), so a raw crash full of odd keys can never blow
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
# the few json_dump keys Socorro kept (json_dump_whitelist_keys); never whole stacks. Then the
# copied annotations (workers/rules/annotations.json, by type: string keyword, integer long,
# number double, boolean boolean; JSON objects are not searched) and the fields of the other
# Mozilla rules.
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
    accessibility_client keyword
    accessibility_in_proc_client keyword
    adapter_device_id keyword
    adapter_driver_version keyword
    adapter_subsys_id keyword
    adapter_vendor_id keyword
    android_board keyword
    android_brand keyword
    android_cpu_abi keyword
    android_cpu_abi2 keyword
    android_device keyword
    android_display keyword
    android_fingerprint keyword
    android_hardware keyword
    android_manufacturer keyword
    android_model keyword
    android_packagename keyword
    android_version keyword
    app_init_dlls keyword
    application_build_id keyword
    async_shutdown_timeout keyword
    available_page_file long
    available_physical_memory long
    available_virtual_memory long
    background_task_name keyword
    co_marshal_interface_failure keyword
    co_unmarshal_interface_result keyword
    content_sandbox_capabilities long
    content_sandbox_capable boolean
    content_sandbox_enabled boolean
    content_sandbox_level long
    dom_fission_enabled boolean
    dom_ipc_enabled boolean
    dumper_error keyword
    em_check_compatibility boolean
    glean_client_id keyword
    gmp_library_path keyword
    gmp_plugin boolean
    graphics_critical_error keyword
    graphics_startup_test boolean
    hang keyword
    has_device_touch_screen boolean
    install_time long
    ipc_channel_error keyword
    ipc_fatal_error_msg keyword
    ipc_fatal_error_protocol keyword
    ipc_message_name keyword
    ipc_message_size long
    ipc_shutdown_state keyword
    ipc_system_error long
    is_garbage_collecting boolean
    js_large_allocation_failure keyword
    mac_available_memory_sysctl long
    mac_memory_pressure keyword
    mac_memory_pressure_critical_time keyword
    mac_memory_pressure_normal_time keyword
    mac_memory_pressure_sysctl long
    mac_memory_pressure_warning_time keyword
    marionette boolean
    oom_allocation_size long
    productid keyword
    quota_manager_shutdown_timeout keyword
    remote_agent boolean
    remote_type keyword
    safe_mode boolean
    shutdown_progress keyword
    shutdown_reason keyword
    startup_crash boolean
    startup_time long
    system_memory_use_percentage long
    throttleable boolean
    total_page_file long
    total_physical_memory long
    total_virtual_memory long
    uptime_ts double
    url keyword
    useragent_locale keyword
    utility_process_sandboxing_kind long
    vendor keyword
    windows_error_reporting boolean
    xpcom_spin_event_loop_stack keyword
    accessibility boolean
    submitted_from keyword
    submitted_from_infobar boolean
    distribution_id keyword
    utility_actors_name keyword
    crash_inconsistencies keyword
    possible_bit_flips_max_confidence long
    has_guard_page_access boolean
    mac_boot_args keyword
    has_mac_boot_args boolean
    mac_crash_info keyword
    soft_errors keyword
    phc_kind keyword
    phc_base_address keyword
    phc_usable_size long
    phc_alloc_stack keyword
    phc_free_stack keyword
    mdsw_return_code long
    mdsw_stderr text standard
    memory_measures.explicit long
    memory_measures.gfx_textures long
    memory_measures.ghost_windows long
    memory_measures.heap_allocated long
    memory_measures.heap_overhead long
    memory_measures.heap_unclassified long
    memory_measures.host_object_urls long
    memory_measures.images long
    memory_measures.js_main_runtime long
    memory_measures.private long
    memory_measures.resident long
    memory_measures.resident_unique long
    memory_measures.system_heap_allocated long
    memory_measures.top_none_detached long
    memory_measures.vsize long
    memory_measures.vsize_max_contiguous long
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
