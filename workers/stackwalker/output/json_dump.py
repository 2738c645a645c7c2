"""The processed `json_dump`, in the shape rust-minidump's `minidump-stackwalk --json` gives
and Socorro's rules read (docs/processing.md §7.4)."""

from __future__ import annotations

import json
from typing import Any

from procsupervisor.workers.stackwalker.limits import DEFAULT_MAX_JSON_BYTES, JSON_SIZE_LIMIT
from procsupervisor.workers.stackwalker.minidump import stream_types
from procsupervisor.workers.stackwalker.minidump.context import PRINT_ORDER
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.linux_streams import text
from procsupervisor.workers.stackwalker.minidump.reader import MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.system_info import (
    PLATFORM_IOS,
    PLATFORM_MAC,
    SystemInfo,
)
from procsupervisor.workers.stackwalker.model import CodeModule, StackFrame
from procsupervisor.workers.stackwalker.output.crash_info import render_crash_info
from procsupervisor.workers.stackwalker.output.machine_readable import basename
from procsupervisor.workers.stackwalker.process import ProcessState, ThreadState

JSON = dict[str, Any]
# rust-minidump names the x86 flags register "eflags" in JSON; Breakpad's text says "efl".
_JSON_REGISTER_NAMES = {"efl": "eflags"}
_APPLE = (PLATFORM_MAC, PLATFORM_IOS)


class _Hex:
    """Addresses as fixed-width hex: 8 digits for 32-bit CPUs, 16 for 64-bit ones."""

    def __init__(self, pointer_bytes: int) -> None:
        self.digits = 2 * pointer_bytes
        self.mask = (1 << (8 * pointer_bytes)) - 1

    def __call__(self, value: int | None) -> str | None:
        if value is None:
            return None
        return f"0x{value & self.mask:0{self.digits}x}"


def _pointer_bytes(state: ProcessState) -> int:
    return state.system_info.pointer_width if state.system_info else 8


def _inline_entry(frame: StackFrame) -> JSON:
    return {"file": frame.source_file, "function": frame.function_name, "line": frame.source_line}


def _frame_json(
    state: ProcessState, number: int, frame: StackFrame, inlines: list[StackFrame], hexa: _Hex
) -> JSON:
    # rust-minidump reports the lookup address (ret - 1 on x86/amd64 callers), not the -m one.
    address = frame.instruction
    module = frame.module
    loaded = module if module is not None and not module.is_unloaded else None
    entry: JSON = {
        "frame": number,
        "module": basename(loaded.code_file) if loaded else None,
        "function": frame.function_name,
        "file": frame.source_file,
        "line": frame.source_line if frame.source_file else None,
        "offset": hexa(address),
        "module_offset": hexa(address - loaded.base_address) if loaded else None,
        "function_offset": (
            hexa(address - frame.function_base)
            if frame.function_name and frame.function_base is not None
            else None
        ),
        "missing_symbols": bool(
            loaded
            and state.symbols
            and state.symbols.looked_up(loaded)
            and not state.symbols.loaded(loaded)
        ),
        "trust": frame.trust.value,
        "inlines": [_inline_entry(f) for f in inlines] or None,
        "unloaded_modules": None,
    }
    if module is not None and module.is_unloaded:
        entry["unloaded_modules"] = [
            {"module": basename(module.code_file), "offsets": [hexa(address - module.base_address)]}
        ]
    if number == 0 and frame.context is not None:
        regs = frame.context.registers
        order = PRINT_ORDER.get(frame.context.cpu, sorted(regs))
        entry["registers"] = {
            _JSON_REGISTER_NAMES.get(name, name): hexa(regs[name]) for name in order if name in regs
        }
    return entry


class _SizeBudget:
    """Roughly how many bytes of JSON the frames may still take (limits.py): each frame is
    counted by its text fields plus a fixed share for keys and numbers, so no serialization
    is needed to stay within the bound."""

    FRAME_OVERHEAD = 320  # keys, punctuation, offsets and flags of one frame entry

    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        self.threads_cut = 0
        self.copies = 1  # the requesting thread is written twice (also as crashing_thread)

    def spend(self, entry: JSON) -> bool:
        """Count one frame entry; False once the budget is spent."""
        size = self.FRAME_OVERHEAD + sum(
            len(value) for value in entry.values() if isinstance(value, str)
        )
        for inline in entry.get("inlines") or ():
            size += 64 + sum(len(v) for v in inline.values() if isinstance(v, str))
        if "registers" in entry:
            size += 32 * len(entry["registers"])
        self.left -= size * self.copies
        return self.left >= 0


def _frames_json(
    state: ProcessState, thread: ThreadState, hexa: _Hex, budget: _SizeBudget
) -> tuple[list[JSON], bool]:
    """Inline frames are folded into the real frame that follows them, innermost first.
    Returns the frames and whether the size budget cut them short (frame 0 is always kept)."""
    result: list[JSON] = []
    pending: list[StackFrame] = []
    for frame in thread.stack.frames:
        if frame.is_inline:
            pending.append(frame)
            continue
        entry = _frame_json(state, len(result), frame, pending, hexa)
        if not budget.spend(entry) and result:
            return result, True
        result.append(entry)
        pending = []
    return result, False


def _thread_json(state: ProcessState, thread: ThreadState, hexa: _Hex,
                 budget: _SizeBudget) -> JSON:
    frames, cut = _frames_json(state, thread, hexa, budget)
    reason = JSON_SIZE_LIMIT if cut else thread.stack.truncated_reason
    budget.threads_cut += cut
    return {
        "thread_id": thread.stack.thread_id,
        "thread_name": thread.stack.thread_name,
        "frame_count": len(frames),
        "total_frames": len(frames),
        "frames_truncated": reason is not None,
        "truncated_reason": reason,
        "last_error_value": None,
        "frames": frames,
    }


def _listed_modules(state: ProcessState) -> list[CodeModule]:
    """Modules in file order, as rust-minidump lists them; skipped duplicates left out."""
    kept = {id(m) for m in state.modules}
    file_order = state.dump.modules if state.dump and state.dump.modules else []
    return [m for m in file_order if id(m) in kept]


def json_code_id(module: CodeModule, system_info: SystemInfo | None) -> str | None:
    """rust-minidump's code_id: Breakpad's, except lowercase on Windows and the Mach-O UUID
    (the debug id without its age) instead of Breakpad's placeholder `id` on macOS/iOS."""
    code_id = module.code_identifier
    if system_info is not None and system_info.is_windows:
        return code_id.lower() or None
    apple = system_info is not None and system_info.platform_id in _APPLE
    if apple and code_id == "id" and len(module.debug_identifier) > 32:
        return module.debug_identifier[:32].lower()
    return code_id or None


def _module_json(state: ProcessState, module: CodeModule, hexa: _Hex) -> JSON:
    symbols = state.symbols
    # As rust-minidump: without any symbol source, modules are not flagged (frames are).
    looked_up = bool(symbols and symbols.has_provider and symbols.looked_up(module))
    loaded = bool(symbols and symbols.loaded(module))
    return {
        "base_addr": hexa(module.base_address),
        "end_addr": hexa(module.base_address + module.size),
        "filename": basename(module.code_file),
        "code_id": json_code_id(module, state.system_info),
        "debug_file": basename(module.debug_file) or None,
        "debug_id": module.debug_identifier or None,
        "version": module.version or None,
        "loaded_symbols": loaded,
        "missing_symbols": looked_up and not loaded,
        "corrupt_symbols": False,
        "symbol_url": None,
        "cert_subject": None,
    }


def _unloaded_json(module: CodeModule, hexa: _Hex) -> JSON:
    return {
        "base_addr": hexa(module.base_address),
        "end_addr": hexa(module.base_address + module.size),
        "filename": basename(module.code_file),
        "code_id": module.code_identifier or None,
        "cert_subject": None,
    }


def _pid(dump: Minidump) -> int | None:
    if dump.misc_info and dump.misc_info.process_id is not None:
        return dump.misc_info.process_id
    status = dump.linux_proc_status or {}
    pid = status.get("Pid", "")
    # isdigit() alone accepts "²", which int() refuses
    return int(pid) if pid.isascii() and pid.isdigit() else None


def _soft_errors(dump: Minidump) -> Any:
    """The MozSoftErrors stream's JSON; None when absent or unreadable (a hostile nesting depth
    raises RecursionError, not ValueError)."""
    try:
        view = dump.stream(stream_types.MOZ_SOFT_ERRORS)
        return None if view is None else json.loads(text(view))
    except (MinidumpFormatError, ValueError, RecursionError):
        return None


def _mac_crash_info(dump: Minidump) -> JSON | None:
    records = dump.mac_crash_info
    if not records:
        return None
    return {
        "num_records": len(records),
        "records": [
            {
                "version": r.version,
                "thread": r.thread,
                "dialog_mode": r.dialog_mode,
                "abort_cause": r.abort_cause,
                **r.strings,
            }
            for r in records
        ],
    }


def _crashpad_json(dump: Minidump) -> JSON | None:
    info = dump.crashpad_info
    if info is None:
        return None
    return {
        "report_id": info.report_id,
        "client_id": info.client_id,
        "simple_annotations": info.simple_annotations,
        "module_list": [
            {
                "module_index": m.module_index,
                "list_annotations": m.list_annotations,
                "simple_annotations": m.simple_annotations,
                "annotation_objects": m.annotation_objects,
            }
            for m in info.module_list
        ],
    }


def _misc_json(dump: Minidump) -> JSON | None:
    misc = dump.misc_info
    if misc is None:
        return None
    return {
        "process_id": misc.process_id,
        "process_create_time": misc.process_create_time,
        "processor_max_mhz": misc.processor_max_mhz,
        "processor_current_mhz": misc.processor_current_mhz,
        "time_zone_standard_name": misc.time_zone_standard_name,
        "time_zone_daylight_name": misc.time_zone_daylight_name,
        "build_string": misc.build_string,
    }


def _process_uptime(dump: Minidump) -> int | None:
    misc = dump.misc_info
    if misc is None or misc.process_create_time is None:
        return None
    return dump.header.time_date_stamp - misc.process_create_time


def _microcode_version(dump: Minidump | None) -> str | None:
    """The first `microcode` entry of /proc/cpuinfo (Linux dumps), as rust-minidump reports."""
    cpuinfo = dump.linux_cpu_info if dump is not None else None
    for line in (cpuinfo or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "microcode":
            try:
                return hex(int(value.strip(), 0))
            except ValueError:
                return None
    return None


def _system_info_json(state: ProcessState) -> JSON | None:
    info = state.system_info
    if info is None:
        return None
    return {
        "os": info.os,
        "os_ver": info.os_version,
        "cpu_arch": info.cpu,
        "cpu_info": info.cpu_info,
        "cpu_count": info.number_of_processors,
        "cpu_microcode_version": _microcode_version(state.dump),
    }


def render(state: ProcessState, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> JSON:
    """The json_dump; its frames stop (frame 0 of each thread aside) at about `max_bytes`,
    the requesting thread's first."""
    hexa = _Hex(_pointer_bytes(state))
    result: JSON = {"status": state.status, "notes": list(state.notes)}
    dump = state.dump
    if dump is None or not state.ok:
        result["system_info"] = _system_info_json(state)
        return result
    budget = _SizeBudget(max_bytes)
    order = sorted(range(len(state.threads)), key=lambda i: i != state.requesting_thread)
    rendered = {}
    for index in order:
        budget.copies = 2 if index == state.requesting_thread else 1
        rendered[index] = _thread_json(state, state.threads[index], hexa, budget)
    threads = [rendered[i] for i in range(len(state.threads))]
    if budget.threads_cut:
        result["notes"].append(
            f"json_dump size limit of {max_bytes} bytes reached: the frames of"
            f" {budget.threads_cut} thread(s) were cut short"
        )
    modules = _listed_modules(state)
    main = state.modules.main_module
    result.update(
        {
            "system_info": _system_info_json(state),
            "crash_info": render_crash_info(state, hexa),
            "crashing_thread": None,
            "thread_count": len(threads),
            "threads": threads,
            "main_module": next((i for i, m in enumerate(modules) if m is main), None),
            "modules": [_module_json(state, m, hexa) for m in modules],
            "unloaded_modules": [_unloaded_json(m, hexa) for m in state.modules.unloaded],
            "modules_contains_cert_info": False,
            "pid": _pid(dump),
            "process_uptime": _process_uptime(dump),
            "lsb_release": dump.lsb_release,
            "mac_crash_info": _mac_crash_info(dump),
            "mac_boot_args": dump.mac_bootargs,
            "linux_memory_map_count": (
                len(dump.linux_maps.splitlines()) if dump.linux_maps is not None else None
            ),
            "soft_errors": _soft_errors(dump),
            "crashpad_info": _crashpad_json(dump),
            "misc_info": _misc_json(dump),
        }
    )
    if 0 <= state.requesting_thread < len(threads):
        crashing = dict(threads[state.requesting_thread])
        crashing["threads_index"] = state.requesting_thread
        result["crashing_thread"] = crashing
    return result
