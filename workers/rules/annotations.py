"""Annotations copied as typed snake_case fields (a subset of Socorro's CopyFromRawCrashRule):
the ones signature generation reads and the memory and graphics facts crash engineers filter
on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_flag, as_int, as_str

Converter = Callable[[Any], Any]

# (raw annotation, processed field, converter); a value the converter rejects gives a note.
COPIED_ANNOTATIONS: tuple[tuple[str, str, Converter], ...] = (
    ("AbortMessage", "abort_message", as_str),
    ("OOMAllocationSize", "oom_allocation_size", as_int),
    ("AsyncShutdownTimeout", "async_shutdown_timeout", as_str),
    ("IPCChannelError", "ipc_channel_error", as_str),
    ("IPCMessageName", "ipc_message_name", as_str),
    ("JSLargeAllocationFailure", "js_large_allocation_failure", as_str),
    ("MainThreadRunnableName", "main_thread_runnable_name", as_str),
    ("StartupCrash", "startup_crash", as_flag),
    ("AvailablePhysicalMemory", "available_physical_memory", as_int),
    ("TotalPhysicalMemory", "total_physical_memory", as_int),
    ("AvailableVirtualMemory", "available_virtual_memory", as_int),
    ("TotalVirtualMemory", "total_virtual_memory", as_int),
    ("AvailablePageFile", "available_page_file", as_int),
    ("TotalPageFile", "total_page_file", as_int),
    ("SystemMemoryUsePercentage", "system_memory_use_percentage", as_int),
    ("AdapterVendorID", "adapter_vendor_id", as_str),
    ("AdapterDeviceID", "adapter_device_id", as_str),
    ("AdapterDriverVersion", "adapter_driver_version", as_str),
)


class CopyFromRawCrashRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        for annotation, field, convert in COPIED_ANNOTATIONS:
            if annotation not in ctx.raw_crash:
                continue
            value = convert(ctx.raw_crash[annotation])
            if value is None:
                ctx.add_note(f"CopyFromRawCrashRule: invalid value of {annotation!r}")
            else:
                ctx.processed[field] = value
