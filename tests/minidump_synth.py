"""Build minidumps in tests (rust-minidump's minidump-synth is the model), and matching
Breakpad `.sym` text for the synthetic modules.

    dump = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    module = dump.add_module(0x400000, 0x10000, "/usr/bin/app", cv=cv_elf(build_id))
    stack = dump.add_memory(0x7ffe0000, stack_bytes)
    dump.add_thread(1234, amd64_context(rip=0x401010, rsp=0x7ffe0000), stack=stack)
    dump.set_exception(1234, code=11, flags=1, address=0x0, context=amd64_context(...))
    data = dump.build()

Streams are laid out after the header and directory; everything a stream points to (strings,
CodeView records, contexts, stack bytes) is placed first and referenced by its RVA. Hostile
shapes are made with `add_raw_stream` (any bytes, or any rva/size in the directory) and the
header overrides of `build`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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

SIGNATURE = 0x504D444D
VERSION = 0xA793

ARCH_X86 = 0
ARCH_ARM = 5
ARCH_AMD64 = 9
ARCH_ARM64 = 12
ARCH_ARM64_OLD = 0x8003
PLATFORM_WINDOWS = 2
PLATFORM_MAC = 0x8101
PLATFORM_LINUX = 0x8201
PLATFORM_ANDROID = 0x8203


class Writer:
    """Appends data after the header and directory and hands back each piece's RVA."""

    def __init__(self, start: int, prefix: str) -> None:
        self.data = bytearray()
        self.start = start
        self.prefix = prefix

    def place(self, data: bytes, align: int = 4) -> int:
        while (self.start + len(self.data)) % align:
            self.data.append(0)
        rva = self.start + len(self.data)
        self.data += data
        return rva

    def pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.prefix + fmt, *values)

    def string(self, text: str) -> int:
        """A MINIDUMP_STRING (UTF-16, byte length prefix, NUL after)."""
        codec = "utf-16-le" if self.prefix == "<" else "utf-16-be"
        raw = text.encode(codec)
        return self.place(self.pack("I", len(raw)) + raw + b"\0\0")

    def utf8_string(self, text: str) -> int:
        raw = text.encode("utf-8")
        return self.place(self.pack("I", len(raw)) + raw + b"\0")


Piece = bytes | Callable[[Writer], bytes]


def _resolve(piece: Piece, writer: Writer) -> bytes:
    return piece(writer) if callable(piece) else piece


# ---------------------------------------------------------------------------- contexts


def x86_context(flags: int = 0x1003F, **registers: int) -> bytes:
    """A 716-byte MDRawContextX86; registers by Breakpad name (eip, esp, ebp, eax, ..., efl)."""
    offsets = {
        "edi": 156, "esi": 160, "ebx": 164, "edx": 168, "ecx": 172, "eax": 176,
        "ebp": 180, "eip": 184, "efl": 192, "esp": 196,
    }  # fmt: skip
    raw = bytearray(716)
    struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<I", raw, offsets[name], value & 0xFFFFFFFF)
    return bytes(raw)


def amd64_context(flags: int = 0x10000B, extra: int = 0, **registers: int) -> bytes:
    """A 1232-byte MDRawContextAMD64 (plus `extra` XSTATE bytes)."""
    names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]  # fmt: skip
    raw = bytearray(1232 + extra)
    struct.pack_into("<I", raw, 48, flags)
    for name, value in registers.items():
        struct.pack_into("<Q", raw, 120 + 8 * names.index(name), value)
    return bytes(raw)


def arm_context(flags: int = 0x40000006, **registers: int) -> bytes:
    """A 368-byte MDRawContextARM; registers r0..r12, sp, lr, pc."""
    names = [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]
    raw = bytearray(368)
    struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<I", raw, 4 + 4 * names.index(name), value)
    return bytes(raw)


def arm64_context(flags: int = 0x00400007, old: bool = False, **registers: int) -> bytes:
    """A 912-byte ARM64 context, or the 796-byte ARM64_OLD one with `old=True`."""
    names = [f"x{i}" for i in range(29)] + ["fp", "lr", "sp", "pc"]
    raw = bytearray(796 if old else 912)
    if old:
        struct.pack_into("<Q", raw, 0, flags if flags != 0x00400007 else 0x80000006)
    else:
        struct.pack_into("<I", raw, 0, flags)
    for name, value in registers.items():
        struct.pack_into("<Q", raw, 8 + 8 * names.index(name), value)
    return bytes(raw)


# ---------------------------------------------------------------------------- CodeView


def cv_pdb70(guid: bytes, age: int, pdb_name: str) -> bytes:
    return b"RSDS" + guid + struct.pack("<I", age) + pdb_name.encode() + b"\0"


def cv_pdb20(signature: int, age: int, pdb_name: str) -> bytes:
    return b"NB10" + struct.pack("<III", 0, signature, age) + pdb_name.encode() + b"\0"


def cv_elf(build_id: bytes) -> bytes:
    return b"LEpB" + build_id


def elf_debug_id(build_id: bytes) -> str:
    """Breakpad's debug id for an ELF build id (MINIDUMP.md section 5.2)."""
    guid = (build_id[:16] + bytes(16))[:16]
    d1, d2, d3 = struct.unpack("<IHH", guid[:8])
    return f"{d1:08X}{d2:04X}{d3:04X}{guid[8:16].hex().upper()}0"


# ---------------------------------------------------------------------------- the dump


@dataclass
class Memory:
    """A memory region placed in the file; threads refer to it for their stack."""

    base: int
    data: bytes
    rva: int = -1


@dataclass
class _Thread:
    thread_id: int
    context: bytes | None
    stack: Memory | None
    stack_descriptor: tuple[int, int, int] | None = None  # (start, size, rva) override


@dataclass
class _Module:
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
    threads: list[_Thread] = field(default_factory=list)
    modules: list[_Module] = field(default_factory=list)
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
    ) -> _Thread:
        thread = _Thread(thread_id, context, stack)
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
    ) -> _Module:
        module = _Module(base, size, name, cv, version, time_date_stamp, misc)
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
            body = _resolve(piece, writer)
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


# ---------------------------------------------------------------------------- .sym text


@dataclass
class SymFunction:
    address: int  # module-relative
    size: int
    name: str
    line: int = 1
    file: str = "src/main.c"


def sym_text(
    debug_file: str,
    debug_id: str,
    functions: list[SymFunction],
    *,
    os: str = "Linux",
    arch: str = "x86_64",
    cfi: list[str] | None = None,
) -> str:
    """A minimal Breakpad .sym: MODULE, FILE, FUNC plus one line record each, optional CFI."""
    files = sorted({f.file for f in functions})
    lines = [f"MODULE {os} {arch} {debug_id} {debug_file}"]
    lines += [f"FILE {i} {name}" for i, name in enumerate(files)]
    for f in functions:
        lines.append(f"FUNC {f.address:x} {f.size:x} 0 {f.name}")
        lines.append(f"{f.address:x} {f.size:x} {f.line} {files.index(f.file)}")
    lines += cfi or []
    return "\n".join(lines) + "\n"


def write_sym(root: Path, debug_file: str, debug_id: str, text: str) -> Path:
    """Store .sym text where Breakpad's SimpleSymbolSupplier looks for it."""
    stem = (
        debug_file[:-4]
        if debug_file.lower().endswith(".pdb") and len(debug_file) > 4
        else (debug_file)
    )
    path = root / debug_file / debug_id / f"{stem}.sym"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- a ready demo

DEMO_BUILD_ID = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")


def write_demo_crash(folder: Path) -> tuple[Path, Path]:
    """A Linux amd64 SIGSEGV in `crash_here` (demo.c:3) called from `main` (demo.c:7), and the
    matching symbol root. Returns (dump path, symbols root); walk it with
    `procsupervisor stackwalk <dump> --symbols-path <root>`."""
    stack_base = 0x7FFF_0000
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, csd_version="Linux 6.1")
    synth.add_module(0x400000, 0x10000, "/opt/demo/demo", cv=cv_elf(DEMO_BUILD_ID))
    stack = bytearray(0x80)
    struct.pack_into("<QQ", stack, 0x10, 0, 0x401085)  # saved rbp, return address into main
    region = synth.add_memory(stack_base, bytes(stack))
    context = amd64_context(rip=0x401108, rsp=stack_base, rbp=stack_base + 0x10)
    synth.add_thread(42, context, region)
    synth.set_exception(42, code=11, flags=1, address=0, context=context)
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "demo.dmp"
    dump.write_bytes(synth.build())
    root = folder / "symbols"
    debug_id = elf_debug_id(DEMO_BUILD_ID)
    functions = [
        SymFunction(0x1000, 0x100, "main", line=7, file="demo.c"),
        SymFunction(0x1100, 0x40, "crash_here", line=3, file="demo.c"),
    ]
    write_sym(root, "demo", debug_id, sym_text("demo", debug_id, functions))
    return dump, root
