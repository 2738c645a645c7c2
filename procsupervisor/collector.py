"""What a collector records about a crash it accepts, as Socorro's collector (Antenna) stores
the raw crash: the annotations less the fields it never keeps, `submitted_timestamp`, the
layout `version` and `metadata` (collector notes, sha256 of each dump, payload kind and size).
The processor reads them back: `minidump_sha256_hash`, `collector_metadata`, the dates."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

# Annotations a collector removes on intake: an e-mail address and the telemetry ids that would
# tie a crash to a telemetry profile.
STRIPPED_ANNOTATIONS = ("Email", "TelemetryClientId", "TelemetryServerURL", "TelemetrySessionId")
RAW_CRASH_LAYOUT_VERSION = 2
# How the annotations arrived: one JSON document ("json") or form fields ("multipart").
PAYLOAD_JSON = "json"


def is_collector_layout(raw_crash: Mapping[str, Any]) -> bool:
    """A raw crash a collector already stored (it has its `metadata` and timestamp)."""
    metadata = raw_crash.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and isinstance(metadata.get("dump_checksums"), Mapping)
        and isinstance(raw_crash.get("submitted_timestamp"), str)
    )


def dump_checksums(dumps: Mapping[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in dumps.items()}


def collector_record(
    annotations: Mapping[str, Any],
    dumps: Mapping[str, bytes],
    *,
    payload_size: int,
    payload: str = PAYLOAD_JSON,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The raw crash to store for these annotations and dumps. A `submitted_timestamp` already
    in the annotations is kept (an operator submitting an old crash again); any `metadata`
    annotation is replaced, as a collector replaces it."""
    stored = dict(annotations)
    notes = []
    for name in STRIPPED_ANNOTATIONS:
        if name in stored:
            del stored[name]
            notes.append(f"Removed {name} from raw crash.")
    if not isinstance(stored.get("submitted_timestamp"), str):
        stored["submitted_timestamp"] = (now or dt.datetime.now(dt.UTC)).isoformat()
    stored["metadata"] = {
        "collector_notes": notes,
        "dump_checksums": dump_checksums(dumps),
        "payload": payload,
        "payload_compressed": "0",
        "payload_size": payload_size,
    }
    stored["version"] = RAW_CRASH_LAYOUT_VERSION
    return stored
