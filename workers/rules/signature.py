"""Crash signatures with Socorro's own generator, the `siggen` package (pinned).

`siggen_frame` is the one place our frames become siggen's frame shape (siggen's schema.rst);
scripts/signatures.py feeds Breakpad's frames through it too, so the two signatures it compares
differ only where the frames differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from siggen.generator import SignatureGenerator

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig

FRAME_KEYS = ("module", "function", "file", "line", "module_offset", "offset")
INLINE_KEYS = ("function", "file", "line")

# Processed-crash fields (copied from annotations earlier) that siggen's rules read.
SIGNATURE_ANNOTATIONS = (
    "oom_allocation_size",
    "js_large_allocation_failure",
    "abort_message",
    "async_shutdown_timeout",
    "ipc_channel_error",
    "ipc_message_name",
    "mdsw_status_string",
    "java_stack_trace",
)


def _present(source: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: source[key] for key in keys if source.get(key) not in (None, "")}


def siggen_frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    """One json_dump frame (minidump-stackwalk's shape) as siggen wants it: only the keys it
    reads, empty values dropped (siggen treats a missing key as "no information")."""
    converted = _present(frame, FRAME_KEYS)
    inlines = frame.get("inlines")
    if isinstance(inlines, list) and inlines:
        converted["inlines"] = [
            _present(inline, INLINE_KEYS) for inline in inlines if isinstance(inline, Mapping)
        ]
    unloaded = frame.get("unloaded_modules")
    if isinstance(unloaded, list) and unloaded:
        converted["unloaded_modules"] = [u for u in unloaded if isinstance(u, Mapping)]
    return converted


def siggen_threads(threads: Any) -> list[dict[str, Any]]:
    if not isinstance(threads, list):
        return []
    converted = []
    for thread in threads:
        thread = thread if isinstance(thread, Mapping) else {}
        frames = thread.get("frames")
        entry: dict[str, Any] = {
            "frames": [
                siggen_frame(frame)
                for frame in (frames if isinstance(frames, list) else [])
                if isinstance(frame, Mapping) and "truncated" not in frame
            ]
        }
        for key in ("thread_name", "last_error_value"):
            if isinstance(thread.get(key), str):
                entry[key] = thread[key]
        converted.append(entry)
    return converted


def signature_input(processed: Mapping[str, Any]) -> dict[str, Any]:
    """siggen's crash data (schema.rst) for a processed crash."""
    data: dict[str, Any] = {
        key: processed[key] for key in SIGNATURE_ANNOTATIONS if processed.get(key) is not None
    }
    data["additional_minidumps"] = list(processed.get("additional_minidumps") or [])
    data["original_signature"] = processed.get("signature") or ""
    json_dump = processed.get("json_dump")
    if isinstance(json_dump, Mapping):
        data["crashing_thread"] = dig(json_dump, "crash_info", "crashing_thread")
        data["reason"] = dig(json_dump, "crash_info", "type")
        data["os"] = dig(json_dump, "system_info", "os")
        data["threads"] = siggen_threads(json_dump.get("threads"))
    return data


class SignatureGeneratorRule(Rule):
    """`signature`, `proto_signature`, `signature_debug`; siggen's notes become ours."""

    def __init__(self, generator: SignatureGenerator | None = None) -> None:
        self.generator = generator or SignatureGenerator()

    def action(self, ctx: CrashContext) -> None:
        result = self.generator.generate(signature_input(ctx.processed))
        ctx.processed["signature"] = result.signature
        if "proto_signature" in result.extra:
            ctx.processed["proto_signature"] = result.extra["proto_signature"]
        else:
            ctx.processed.pop("proto_signature", None)
        ctx.processed["signature_debug"] = "\n".join(result.debug_log)
        for note in result.notes:
            ctx.add_note(note)
