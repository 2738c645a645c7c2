"""`SynthMinidump`: a minidump assembled from parts, for tests, fuzzing and demos.

    dump = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    module = dump.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(build_id))
    stack = dump.add_memory(0x7ffe0000, stack_bytes)
    dump.add_thread(1234, amd64_context(rip=0x401010, rsp=0x7ffe0000), stack=stack)
    dump.set_exception(1234, code=11, flags=1, address=0x0, context=amd64_context(...))
    data = dump.build()

Streams are laid out after the header and directory. Hostile shapes are made with
`add_raw_stream` (any bytes), `add_directory_entry` (any rva/size in the directory) and the
header overrides of `build`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.minidump.builder.writer import (
    ARCH_AMD64,
    PLATFORM_LINUX,
    SIGNATURE,
    VERSION,
    Piece,
    Writer,
    resolve,
)
from procsupervisor.workers.stackwalker.minidump.stream_types import (
    ASSERTION_INFO,
    BREAKPAD_INFO,
    CRASHPAD_INFO,
    EXCEPTION,
    MEMORY_LIST,
    MISC_INFO,
    MODULE_LIST,
    SYSTEM_INFO,
    THREAD_LIST,
    THREAD_NAMES,
    UNLOADED_MODULE_LIST,
)


@dataclass
class Memory:
    """A memory region placed in the file; threads refer to it for their stack."""

    base: int
    data: bytes
    rva: int = -1


@dataclass
class SynthThread:
    thread_id: int
    context: bytes | None
    stack: Memory | None
    stack_descriptor: tuple[int, int, int] | None = None  # (start, size, rva) override


@dataclass
class SynthModule:
    base: int
    size: int
    name: str
    cv: bytes | None
    version: tuple[int, int, int, int] | None
    time_date_stamp: int
    misc: bytes | None


@dataclass
class SynthMinidump:
    platform_id: int = PLATFORM_LINUX
    arch: int = ARCH_AMD64
    big_endian: bool = False
    csd_version: str | None = ""
    os_version: tuple[int, int, int] = (0, 0, 0)
    cpu_count: int = 1
    vendor: bytes = b"GenuineIntel"
    processor_level: int = 6
    processor_revision: int = 0x3F02
    pad_lists: bool = False  # the old Mac writer's 4 bytes after each list count
    threads: list[SynthThread] = field(default_factory=list)
    modules: list[SynthModule] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    streams: list[tuple[int, Piece]] = field(default_factory=list)
    raw_directory: list[tuple[int, int, int]] = field(default_factory=list)
    unloaded: list[tuple[int, int, str]] = field(default_factory=list)
    with_system_info: bool = True

    @property
    def prefix(self) -> str:
        return ">" if self.big_endian else "<"

    # -- builders for the common streams

    def add_memory(self, base: int, data: bytes) -> Memory:
        region = Memory(base, data)
        self.memory.append(region)
        return region

    def add_thread(
        self, thread_id: int, context: bytes | None, stack: Memory | None = None
    ) -> SynthThread:
        thread = SynthThread(thread_id, context, stack)
        self.threads.append(thread)
        return thread

    def add_module(
        self,
        base: int,
        size: int,
        name: str,
        *,
        cv: bytes | None = None,
        version: tuple[int, int, int, int] | None = None,
        time_date_stamp: int = 0,
        misc: bytes | None = None,
    ) -> SynthModule:
        module = SynthModule(base, size, name, cv, version, time_date_stamp, misc)
        self.modules.append(module)
        return module

    def add_stream(self, stream_type: int, piece: Piece) -> None:
        self.streams.append((stream_type, piece))

    def add_raw_stream(self, stream_type: int, data: bytes) -> None:
        self.streams.append((stream_type, data))

    def add_directory_entry(self, stream_type: int, size: int, rva: int) -> None:
        """A directory entry pointing anywhere (for hostile tests)."""
        self.raw_directory.append((stream_type, size, rva))

    def set_exception(
        self,
        thread_id: int,
        code: int,
        flags: int = 0,
        address: int = 0,
        parameters: list[int] | None = None,
        context: bytes | None = None,
    ) -> None:
        params = list(parameters or [])

        def piece(w: Writer) -> bytes:
            ctx = (len(context), w.place(context)) if context else (0, 0)
            info = params[:15] + [0] * (15 - min(15, len(params)))
            return (
                w.pack("II", thread_id, 0)
                + w.pack("IIQQII", code, flags, 0, address, len(params), 0)
                + w.pack("15Q", *info)
                + w.pack("II", *ctx)
            )

        self.add_stream(EXCEPTION, piece)

    def add_breakpad_info(
        self, dump_thread_id: int | None = None, requesting_thread_id: int | None = None
    ) -> None:
        validity = (1 if dump_thread_id is not None else 0) | (
            2 if requesting_thread_id is not None else 0
        )
        self.add_stream(
            BREAKPAD_INFO,
            lambda w: w.pack("III", validity, dump_thread_id or 0, requesting_thread_id or 0),
        )

    def add_assertion(
        self, expression: str, function: str, file: str, line: int, kind: int
    ) -> None:
        def fixed(text: str) -> bytes:
            return (text.encode("utf-16-le") + bytes(256))[:256]

        self.add_stream(
            ASSERTION_INFO,
            lambda w: fixed(expression) + fixed(function) + fixed(file) + w.pack("II", line, kind),
        )

    def add_thread_names(self, names: dict[int, str]) -> None:
        def piece(w: Writer) -> bytes:
            entries = [w.pack("IQ", tid, w.string(name)) for tid, name in names.items()]
            return w.pack("I", len(entries)) + b"".join(entries)

        self.add_stream(THREAD_NAMES, piece)

    def add_unloaded_module(self, base: int, size: int, name: str) -> None:
        self.unloaded.append((base, size, name))

    def _unloaded_list(self, w: Writer) -> bytes:
        entries = [w.pack("QIIII", b, s, 0, 0, w.string(n)) for b, s, n in self.unloaded]
        return w.pack("III", 12, 24, len(entries)) + b"".join(entries)

    def add_misc_info(self, process_id: int, process_create_time: int = 0) -> None:
        self.add_stream(
            MISC_INFO, lambda w: w.pack("IIIIII", 24, 0x3, process_id, process_create_time, 0, 0)
        )

    def add_text_stream(self, stream_type: int, text: str) -> None:
        self.add_stream(stream_type, text.encode())

    def add_crashpad_info(self, annotations: dict[str, str]) -> None:
        def piece(w: Writer) -> bytes:
            pairs = [
                w.pack("II", w.utf8_string(k), w.utf8_string(v)) for k, v in annotations.items()
            ]
            dictionary = w.pack("I", len(pairs)) + b"".join(pairs)
            rva = w.place(dictionary)
            return (
                w.pack("I", 1) + bytes(range(16)) + bytes(range(16, 32))
                + w.pack("II", len(dictionary), rva) + w.pack("II", 0, 0)
            )  # fmt: skip

        self.add_stream(CRASHPAD_INFO, piece)

    # -- layout

    def _list_header(self, w: Writer, count: int) -> bytes:
        return w.pack("I", count) + (b"\0" * 4 if self.pad_lists else b"")

    def _system_info(self, w: Writer) -> bytes:
        csd_rva = w.string(self.csd_version) if self.csd_version is not None else 0
        major, minor, build = self.os_version
        vendor = (self.vendor + bytes(12))[:12]
        if self.big_endian:
            vendor = b"".join(vendor[i : i + 4][::-1] for i in range(0, 12, 4))
        return (
            w.pack("HHHBB", self.arch, self.processor_level, self.processor_revision,
                   self.cpu_count, 1)
            + w.pack("IIIII", major, minor, build, self.platform_id, csd_rva)
            + w.pack("HH", 0, 0)
            + vendor + w.pack("III", 0, 0, 0)
        )  # fmt: skip

    def _memory_list(self, w: Writer) -> bytes:
        for region in self.memory:
            if region.rva < 0:
                region.rva = w.place(region.data)
        entries = [w.pack("QII", r.base, len(r.data), r.rva) for r in self.memory]
        return self._list_header(w, len(entries)) + b"".join(entries)

    def _thread_list(self, w: Writer) -> bytes:
        entries = []
        for t in self.threads:
            ctx = (len(t.context), w.place(t.context)) if t.context else (0, 0)
            if t.stack_descriptor is not None:
                stack = t.stack_descriptor
            elif t.stack is not None:
                if t.stack.rva < 0:
                    t.stack.rva = w.place(t.stack.data)
                stack = (t.stack.base, len(t.stack.data), t.stack.rva)
            else:
                stack = (0, 0, 0)
            entries.append(
                w.pack("IIIIQ", t.thread_id, 0, 0, 0, 0)
                + w.pack("QII", *stack)
                + w.pack("II", *ctx)
            )
        return self._list_header(w, len(entries)) + b"".join(entries)

    def _module_list(self, w: Writer) -> bytes:
        entries = []
        for m in self.modules:
            name_rva = w.string(m.name)
            cv = (len(m.cv), w.place(m.cv)) if m.cv else (0, 0)
            misc = (len(m.misc), w.place(m.misc)) if m.misc else (0, 0)
            if m.version is None:
                ffi = bytes(52)
            else:
                a, b, c, d = m.version
                ffi = w.pack("IIII", 0xFEEF04BD, 0x10000, a << 16 | b, c << 16 | d) + bytes(36)
            entries.append(
                w.pack("QIIII", m.base, m.size, 0, m.time_date_stamp, name_rva)
                + ffi + w.pack("IIII", *cv, *misc) + bytes(16)
            )  # fmt: skip
        return self._list_header(w, len(entries)) + b"".join(entries)

    def build(
        self,
        *,
        signature: int = SIGNATURE,
        version: int = VERSION,
        stream_count: int | None = None,
        directory_rva: int | None = None,
    ) -> bytes:
        streams: list[tuple[int, Piece]] = []
        if self.with_system_info:
            streams.append((SYSTEM_INFO, self._system_info))
        if self.threads:
            streams.append((THREAD_LIST, self._thread_list))
        if self.modules:
            streams.append((MODULE_LIST, self._module_list))
        if self.memory:
            streams.append((MEMORY_LIST, self._memory_list))
        if self.unloaded:
            streams.append((UNLOADED_MODULE_LIST, self._unloaded_list))
        streams.extend(self.streams)
        count = len(streams) + len(self.raw_directory)
        writer = Writer(32 + 12 * count, self.prefix)
        directory = []
        for stream_type, piece in streams:
            body = resolve(piece, writer)
            directory.append((stream_type, len(body), writer.place(body)))
        directory.extend(self.raw_directory)
        header = struct.pack(
            self.prefix + "IIIIIIQ",
            signature,
            version,
            count if stream_count is None else stream_count,
            32 if directory_rva is None else directory_rva,
            0,
            0x5F000000,
            0,
        )
        table = b"".join(struct.pack(self.prefix + "III", *entry) for entry in directory)
        return header + table + bytes(writer.data)
