"""A minidump file: header, directory and lazily parsed streams.

Construction reads only the header and directory (and fails with HeaderError when Breakpad
would refuse the file). Each stream is parsed on first use; a stream that cannot be parsed
yields None and a note in `notes`, except where Breakpad rejects the whole dump, which the
processor decides.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TypeVar

from procsupervisor.workers.stackwalker.minidump import stream_types as st
from procsupervisor.workers.stackwalker.minidump.breakpad_streams import (
    AssertionInfo,
    BreakpadInfo,
    parse_assertion_info,
    parse_breakpad_info,
)
from procsupervisor.workers.stackwalker.minidump.crashpad import CrashpadInfo, parse_crashpad_info
from procsupervisor.workers.stackwalker.minidump.exception import ExceptionRecord, parse_exception
from procsupervisor.workers.stackwalker.minidump.header import (
    DirectoryEntry,
    Header,
    index_streams,
    open_file,
    read_directory,
    read_header,
)
from procsupervisor.workers.stackwalker.minidump.linux_streams import (
    DsoDebug,
    key_value_lines,
    nul_separated,
    parse_auxv,
    parse_dso_debug,
    parse_lsb_release,
    text,
)
from procsupervisor.workers.stackwalker.minidump.mac_streams import (
    MacCrashInfoRecord,
    parse_mac_bootargs,
    parse_mac_crash_info,
)
from procsupervisor.workers.stackwalker.minidump.memory import (
    MemoryDescriptor,
    MemoryIndex,
    parse_memory64_list,
    parse_memory_list,
)
from procsupervisor.workers.stackwalker.minidump.misc_info import MiscInfo, parse_misc_info
from procsupervisor.workers.stackwalker.minidump.modules import (
    parse_module_list,
    parse_unloaded_module_list,
)
from procsupervisor.workers.stackwalker.minidump.reader import (
    Buffer,
    ByteView,
    MinidumpFormatError,
)
from procsupervisor.workers.stackwalker.minidump.system_info import SystemInfo, parse_system_info
from procsupervisor.workers.stackwalker.minidump.threads import (
    RawThread,
    parse_thread_list,
    parse_thread_names,
)
from procsupervisor.workers.stackwalker.model import CodeModule

T = TypeVar("T")


class Minidump:
    def __init__(self, data: Buffer) -> None:
        self.file: ByteView = open_file(data)
        self.header: Header = read_header(self.file)
        self.directory: list[DirectoryEntry] = read_directory(self.file, self.header)
        self.streams: dict[int, DirectoryEntry] = index_streams(self.directory)
        self.notes: list[str] = []

    def stream(self, stream_type: int) -> ByteView | None:
        """The stream's bytes, or None if absent; raises if its location is outside the file."""
        entry = self.streams.get(stream_type)
        if entry is None:
            return None
        return self.file.sub(entry.rva, entry.data_size)

    def _parse(self, stream_type: int, name: str, parse: Callable[[ByteView], T]) -> T | None:
        try:
            view = self.stream(stream_type)
            return None if view is None else parse(view)
        except (MinidumpFormatError, UnicodeDecodeError) as exc:
            self.notes.append(f"{name} stream unreadable: {exc}")
            return None

    @cached_property
    def system_info(self) -> SystemInfo | None:
        return self._parse(st.SYSTEM_INFO, "SystemInfo", lambda s: parse_system_info(s, self.file))

    @property
    def platform_id(self) -> int:
        return self.system_info.platform_id if self.system_info else -1

    @cached_property
    def threads(self) -> list[RawThread] | None:
        return self._parse(st.THREAD_LIST, "ThreadList", parse_thread_list)

    @cached_property
    def thread_names(self) -> dict[int, str]:
        names = self._parse(
            st.THREAD_NAMES, "ThreadNames", lambda s: parse_thread_names(s, self.file)
        )
        return names or {}

    @cached_property
    def modules(self) -> list[CodeModule] | None:
        return self._parse(
            st.MODULE_LIST,
            "ModuleList",
            lambda s: parse_module_list(s, self.file, self.platform_id),
        )

    @cached_property
    def unloaded_modules(self) -> list[CodeModule]:
        found = self._parse(
            st.UNLOADED_MODULE_LIST,
            "UnloadedModuleList",
            lambda s: parse_unloaded_module_list(s, self.file),
        )
        return found or []

    @cached_property
    def memory_list(self) -> list[MemoryDescriptor]:
        return self._parse(st.MEMORY_LIST, "MemoryList", parse_memory_list) or []

    @cached_property
    def memory64_list(self) -> list[MemoryDescriptor]:
        return self._parse(st.MEMORY64_LIST, "Memory64List", parse_memory64_list) or []

    @cached_property
    def memory(self) -> MemoryIndex:
        """MemoryList regions only: Breakpad's walker never reads Memory64List."""
        return MemoryIndex(self.file, self.memory_list)

    @cached_property
    def exception(self) -> ExceptionRecord | None:
        return self._parse(st.EXCEPTION, "Exception", parse_exception)

    @cached_property
    def misc_info(self) -> MiscInfo | None:
        return self._parse(st.MISC_INFO, "MiscInfo", parse_misc_info)

    @cached_property
    def breakpad_info(self) -> BreakpadInfo | None:
        return self._parse(st.BREAKPAD_INFO, "BreakpadInfo", parse_breakpad_info)

    @cached_property
    def assertion(self) -> AssertionInfo | None:
        return self._parse(st.ASSERTION_INFO, "AssertionInfo", parse_assertion_info)

    @cached_property
    def crashpad_info(self) -> CrashpadInfo | None:
        return self._parse(
            st.CRASHPAD_INFO, "CrashpadInfo", lambda s: parse_crashpad_info(s, self.file)
        )

    @cached_property
    def lsb_release(self) -> dict[str, str] | None:
        return self._parse(st.LINUX_LSB_RELEASE, "LinuxLsbRelease", parse_lsb_release)

    @cached_property
    def linux_cpu_info(self) -> str | None:
        return self._parse(st.LINUX_CPU_INFO, "LinuxCpuInfo", text)

    @cached_property
    def linux_proc_status(self) -> dict[str, str] | None:
        return self._parse(
            st.LINUX_PROC_STATUS, "LinuxProcStatus", lambda s: key_value_lines(s, ":")
        )

    @cached_property
    def linux_maps(self) -> str | None:
        return self._parse(st.LINUX_MAPS, "LinuxMaps", text)

    @cached_property
    def linux_cmdline(self) -> list[str] | None:
        return self._parse(st.LINUX_CMD_LINE, "LinuxCmdLine", nul_separated)

    @cached_property
    def linux_environ(self) -> list[str] | None:
        return self._parse(st.LINUX_ENVIRON, "LinuxEnviron", nul_separated)

    @cached_property
    def linux_auxv(self) -> list[tuple[int, int]] | None:
        width = self.system_info.pointer_width if self.system_info else 8
        return self._parse(st.LINUX_AUXV, "LinuxAuxv", lambda s: parse_auxv(s, width))

    @cached_property
    def linux_dso_debug(self) -> DsoDebug | None:
        width = self.system_info.pointer_width if self.system_info else 8
        return self._parse(
            st.LINUX_DSO_DEBUG, "LinuxDsoDebug", lambda s: parse_dso_debug(s, self.file, width)
        )

    @cached_property
    def mac_crash_info(self) -> list[MacCrashInfoRecord] | None:
        return self._parse(
            st.MOZ_MACOS_CRASH_INFO, "MacCrashInfo", lambda s: parse_mac_crash_info(s, self.file)
        )

    @cached_property
    def mac_bootargs(self) -> str | None:
        return self._parse(
            st.MOZ_MACOS_BOOTARGS, "MacBootargs", lambda s: parse_mac_bootargs(s, self.file)
        )

    def context_view(self, size: int, rva: int) -> ByteView | None:
        if size == 0:
            return None
        try:
            return self.file.sub(rva, size)
        except MinidumpFormatError:
            return None
