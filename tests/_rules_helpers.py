"""Helpers for the processor, pipeline and rule tests: crash contexts, json_dump builders,
a metrics recorder and a stand-in stackwalker."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from procsupervisor.workers.processor import validate_processed_crash
from procsupervisor.workers.rules.base import CrashContext, Rule

CRASH_ID = "de1bb258-cbbf-4589-a673-34f800160918"
RAW_CRASH_NAMES = (
    "android-aarch64",
    "android-arm",
    "linux-x86",
    "linux-x86_64",
    "macos-x86_64",
    "windows-aarch64",
    "windows-x86",
    "windows-x86_64",
)


def load_raw_crash(testdata: Path, name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((testdata / "raw-crashes" / f"{name}.json").read_text())
    return raw


def run_rule(
    rule: Rule,
    raw_crash: Mapping[str, Any] | None = None,
    processed: Mapping[str, Any] | None = None,
    dumps: Mapping[str, bytes] | None = None,
) -> CrashContext:
    """Runs one rule the way the pipeline does (predicate, then action), exceptions included."""
    ctx = CrashContext(
        crash_id=CRASH_ID,
        raw_crash=dict(raw_crash or {}),
        dumps=dict(dumps or {}),
        processed=dict(processed or {}),
    )
    if rule.predicate(ctx):
        rule.action(ctx)
    return ctx


def with_bookkeeping(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A processed crash made of `fields` plus what the pipeline always sets, for schema
    checks of a single rule's output."""
    return {
        "crash_id": CRASH_ID,
        "uuid": CRASH_ID,
        "success": True,
        "started_datetime": "2026-11-28T10:00:00+00:00",
        "completed_datetime": "2026-11-28T10:00:01+00:00",
        "processor_notes": "",
        "processor_history": [],
        "signature": "EMPTY: crash failed to process",
        **fields,
    }


def assert_valid_fields(fields: Mapping[str, Any]) -> None:
    validate_processed_crash(with_bookkeeping(fields))


def frame(
    index: int,
    module: str | None = None,
    function: str | None = None,
    *,
    file: str | None = None,
    line: int | None = None,
    offset: int = 0x1000,
    module_base: int = 0x400000,
    trust: str = "cfi",
    inlines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A json_dump frame in minidump-stackwalk's shape."""
    built: dict[str, Any] = {
        "frame": index,
        "module": module,
        "function": function,
        "file": file,
        "line": line,
        "offset": f"0x{module_base + offset:016x}",
        "module_offset": f"0x{offset:x}" if module else None,
        "function_offset": "0x10" if function else None,
        "trust": "context" if index == 0 else trust,
        "missing_symbols": function is None and module is not None,
    }
    if inlines is not None:
        built["inlines"] = inlines
    return built


def module(
    filename: str,
    debug_id: str = "5A9832E5287241C1838ED98914E9B7FF1",
    *,
    version: str | None = "1.0.0.1",
    code_id: str | None = "45D35F6C2d000",
    missing_symbols: bool = False,
) -> dict[str, Any]:
    return {
        "filename": filename,
        "version": version,
        "debug_file": filename.rsplit(".", 1)[0] + ".pdb",
        "debug_id": debug_id,
        "code_id": code_id,
        "base_addr": "0x00400000",
        "end_addr": "0x0042d000",
        "missing_symbols": missing_symbols,
        "loaded_symbols": not missing_symbols,
        "corrupt_symbols": False,
    }


def json_dump(
    threads: list[list[dict[str, Any]]],
    *,
    crashing_thread: int | None = 0,
    reason: str = "EXCEPTION_ACCESS_VIOLATION_WRITE",
    address: str = "0x00000045",
    os: str = "Windows NT",
    os_ver: str = "5.1.2600 Service Pack 2",
    cpu_arch: str = "x86",
    modules: list[dict[str, Any]] | None = None,
    thread_names: list[str | None] | None = None,
) -> dict[str, Any]:
    """A minimal minidump-stackwalk JSON with the given stacks (one list of frames each)."""
    names = thread_names or [None] * len(threads)
    thread_list = [
        {"frames": frames, "frame_count": len(frames), "thread_name": names[i]}
        for i, frames in enumerate(threads)
    ]
    dump: dict[str, Any] = {
        "status": "OK",
        "system_info": {
            "os": os,
            "os_ver": os_ver,
            "cpu_arch": cpu_arch,
            "cpu_info": "GenuineIntel family 6 model 13 stepping 8",
            "cpu_count": 1,
        },
        "crash_info": {
            "type": reason,
            "address": address,
            "crashing_thread": crashing_thread,
            "assertion": None,
        },
        "crashing_thread": None,
        "threads": thread_list,
        "modules": modules or [],
        "main_module": 0 if modules else None,
        "thread_count": len(threads),
        "pid": 1234,
    }
    if crashing_thread is not None and crashing_thread < len(threads):
        dump["crashing_thread"] = {
            "threads_index": crashing_thread,
            "frames": threads[crashing_thread][:10],
            "thread_name": names[crashing_thread],
        }
    return dump


@dataclass
class RecordingMetrics:
    """Keeps every metric call, so tests can check names and tags."""

    calls: list[tuple[str, str, float, dict[str, str]]] = field(default_factory=list)

    def _record(self, kind: str, name: str, value: float, tags: Mapping[str, str] | None) -> None:
        self.calls.append((kind, name, value, dict(tags or {})))

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self._record("incr", name, value, tags)

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self._record("timing", name, ms, tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._record("gauge", name, value, tags)

    def histogram(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._record("histogram", name, value, tags)

    def close(self) -> None:
        pass

    def names(self, kind: str) -> list[str]:
        return [name for k, name, _, _ in self.calls if k == kind]


@dataclass
class FakeWalkResult:
    status: str
    dump: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json_dump(self) -> dict[str, Any]:
        return self.dump


@dataclass
class FakeWalker:
    """Stands in for walk_minidump: answers by dump content, records the calls."""

    results: dict[bytes, FakeWalkResult | Exception]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, data: bytes, symbols: Any, **kwargs: Any) -> FakeWalkResult:
        self.calls.append({"data": data, "symbols": symbols, **kwargs})
        result = self.results[data]
        if isinstance(result, Exception):
            raise result
        return result


def load_signatures_script() -> ModuleType:
    """scripts/signatures.py as a module (scripts/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "signatures.py"
    spec = importlib.util.spec_from_file_location("signatures_script", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the module runs
    sys.modules.setdefault(spec.name, script)
    spec.loader.exec_module(script)
    return script
