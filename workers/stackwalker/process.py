"""Turn a minidump into a ProcessState the way Breakpad's MinidumpProcessor does: system info,
crash reason and address, requesting thread, per-thread context and stack memory, module map,
and one walk per thread (docs/formats/breakpad.md §3.1 and 3.5, docs/formats/minidump.md §7)."""

from __future__ import annotations

from dataclasses import dataclass, field

from procsupervisor.workers.stackwalker.limits import (
    DEFAULT_MAX_TOTAL_FRAMES,
    MEMORY_LIMIT,
    SHARED_STACK,
    TOTAL_FRAME_LIMIT,
    WalkBudget,
)
from procsupervisor.workers.stackwalker.minidump.context import (
    UnsupportedContext,
    parse_context,
)
from procsupervisor.workers.stackwalker.minidump.crash_reason import crash_address, crash_reason
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.minidump.header import HeaderError
from procsupervisor.workers.stackwalker.minidump.memory import MemoryRegion
from procsupervisor.workers.stackwalker.minidump.module_map import ModuleListUnreadable, ModuleMap
from procsupervisor.workers.stackwalker.minidump.reader import Buffer, MinidumpFormatError
from procsupervisor.workers.stackwalker.minidump.system_info import (
    PLATFORM_ANDROID,
    PLATFORM_LINUX,
    SystemInfo,
)
from procsupervisor.workers.stackwalker.minidump.threads import RawThread
from procsupervisor.workers.stackwalker.model import (
    CallStack,
    CodeModule,
    CPUContext,
    StackFrame,
    SymbolIndexProtocol,
    SymbolProvider,
    SymbolsUnavailable,
)
from procsupervisor.workers.stackwalker.unwind.walk import MAX_FRAMES, walk_thread

STATUS_OK = "OK"
STATUS_NO_THREAD_LIST = "ERROR_NO_THREAD_LIST"
STATUS_DUPLICATE_REQUESTING_THREADS = "ERROR_DUPLICATE_REQUESTING_THREADS"


class DumpSymbols:
    """Symbols for one dump, cached by code_file as Breakpad does (docs/formats/breakpad.md §2.3),
    remembering which modules had symbols for the JSON output."""

    def __init__(self, provider: SymbolProvider | None, notes: list[str]) -> None:
        self._provider = provider
        self._notes = notes
        self._by_code_file: dict[str, SymbolIndexProtocol | None] = {}

    def get_symbols(self, module: CodeModule) -> SymbolIndexProtocol | None:
        if module.is_unloaded:
            return None
        key = module.code_file
        if key not in self._by_code_file:
            if self._provider is None:
                # Remembered anyway: the JSON marks modules a frame needed as missing symbols.
                self._by_code_file[key] = None
                return None
            try:
                self._by_code_file[key] = self._provider.get_symbols(module)
            except SymbolsUnavailable as exc:
                self._notes.append(f"symbols for {key!r} unavailable: {exc}")
                self._by_code_file[key] = None
            except Exception as exc:  # a broken symbol file must not fail the whole dump
                self._notes.append(
                    f"symbols for {key!r} failed to load: {type(exc).__name__}: {exc}"
                )
                self._by_code_file[key] = None
        return self._by_code_file[key]

    def discard_symbols(self, module: CodeModule, reason: str) -> None:
        """The walker found this module's index damaged: from now on, and in the module list,
        the dump has no symbols for it."""
        self._by_code_file[module.code_file] = None
        self._notes.append(f"symbols for {module.code_file!r} are damaged: {reason}")

    @property
    def has_provider(self) -> bool:
        return self._provider is not None

    def looked_up(self, module: CodeModule) -> bool:
        return module.code_file in self._by_code_file

    def loaded(self, module: CodeModule) -> bool:
        return self._by_code_file.get(module.code_file) is not None


@dataclass
class ThreadState:
    """One kept thread: its walked stack plus the context it started from."""

    stack: CallStack
    context: CPUContext | None
    memory: MemoryRegion | None


@dataclass
class ProcessState:
    status: str
    notes: list[str] = field(default_factory=list)
    dump: Minidump | None = None
    system_info: SystemInfo | None = None
    crashed: bool = False
    crash_reason: str = ""
    crash_address: int = 0
    assertion: str | None = None
    requesting_thread: int = -1
    threads: list[ThreadState] = field(default_factory=list)
    modules: ModuleMap = field(default_factory=ModuleMap.empty)
    symbols: DumpSymbols | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def _module_map(dump: Minidump, notes: list[str]) -> ModuleMap:
    loaded = dump.modules
    if loaded is None:
        return ModuleMap([], dump.unloaded_modules, truncate_lower=False)
    truncate = dump.platform_id in (PLATFORM_LINUX, PLATFORM_ANDROID)
    try:
        return ModuleMap(loaded, dump.unloaded_modules, truncate_lower=truncate)
    except ModuleListUnreadable as exc:
        notes.append(f"module list dropped: {exc}")
        return ModuleMap([], dump.unloaded_modules, truncate_lower=False)


def _thread_memory(dump: Minidump, thread: RawThread) -> MemoryRegion | None:
    if thread.stack_rva and thread.stack_size:
        try:
            view = dump.file.sub(thread.stack_rva, thread.stack_size)
            if thread.stack_start + thread.stack_size <= 1 << 64:
                return MemoryRegion(thread.stack_start, view)
        except MinidumpFormatError:
            pass
    return dump.memory.region_for(thread.stack_start)


def _thread_context(
    dump: Minidump, thread: RawThread, use_exception: bool, notes: list[str]
) -> CPUContext | None:
    arch = dump.system_info.processor_architecture if dump.system_info else None
    candidates = []
    if use_exception and dump.exception is not None:
        candidates.append((dump.exception.context_size, dump.exception.context_rva))
    candidates.append((thread.context_size, thread.context_rva))
    for size, rva in candidates:
        view = dump.context_view(size, rva)
        if view is None:
            continue
        try:
            return parse_context(view, arch)
        except UnsupportedContext:
            return None
        except MinidumpFormatError as exc:
            notes.append(f"thread {thread.thread_id:#x}: context unreadable: {exc}")
    return None


def _kept_threads(dump: Minidump, threads: list[RawThread]) -> list[RawThread]:
    info = dump.breakpad_info
    dump_tid = info.dump_thread_id if info else None
    return [t for t in threads if dump_tid is None or t.thread_id != dump_tid]


def _requesting_thread_id(dump: Minidump) -> int | None:
    if dump.exception is not None:
        return dump.exception.thread_id
    info = dump.breakpad_info
    return info.requesting_thread_id if info else None


def _fill_crash(state: ProcessState, dump: Minidump) -> None:
    exc = dump.exception
    if exc is not None:
        state.crashed = True
        state.crash_reason = crash_reason(exc, dump.system_info)
        state.crash_address = crash_address(exc, dump.system_info)
    elif dump.assertion is not None:
        state.assertion = dump.assertion.describe()


def _stack_key(thread: RawThread, memory: MemoryRegion | None) -> tuple[int, int] | None:
    """What identifies the stack memory a thread's walk reads: its declared start and the end
    of its memory (threads of one real process never share one)."""
    return None if memory is None else (thread.stack_start, memory.end)


def process_minidump(
    data: Buffer,
    symbols: SymbolProvider | None,
    *,
    max_frames_per_thread: int = MAX_FRAMES,
    deadline: float | None = None,
    max_total_frames: int = DEFAULT_MAX_TOTAL_FRAMES,
    max_rss_bytes: int | None = None,
) -> ProcessState:
    """Never raises MinidumpFormatError: a dump Breakpad rejects gives an error status. The
    work is bounded as limits.py describes."""
    try:
        dump = Minidump(data)
    except HeaderError as exc:
        return ProcessState(status=exc.status, notes=[str(exc)])
    # One list: streams parsed later (while rendering) still add their notes to the result.
    notes = dump.notes
    state = ProcessState(status=STATUS_OK, notes=notes, dump=dump)
    state.system_info = dump.system_info
    raw_threads = dump.threads
    if raw_threads is None:
        state.status = STATUS_NO_THREAD_LIST
        return state
    _fill_crash(state, dump)
    state.modules = _module_map(dump, notes)
    state.symbols = DumpSymbols(symbols, notes)

    kept = _kept_threads(dump, raw_threads)
    requesting_tid = _requesting_thread_id(dump)
    if requesting_tid is not None:
        matches = [i for i, t in enumerate(kept) if t.thread_id == requesting_tid]
        if len(matches) > 1:
            state.status = STATUS_DUPLICATE_REQUESTING_THREADS
            return state
        state.requesting_thread = matches[0] if matches else -1

    os_short = dump.system_info.os_short if dump.system_info else ""
    budget = WalkBudget(max_total_frames, max_rss_bytes, deadline)
    # The requesting thread owns its stack whatever else points at it, and is kept a share of
    # the frame budget until it is walked (threads are walked in file order, as Breakpad does).
    walked_stacks: set[tuple[int, int]] = set()
    if 0 <= state.requesting_thread < len(kept):
        requesting = kept[state.requesting_thread]
        key = _stack_key(requesting, _thread_memory(dump, requesting))
        if key is not None:
            walked_stacks.add(key)
        # Half the dump's budget at most: with Breakpad's per-thread limit (2^20) reserving a
        # whole thread's worth would leave nothing for the threads walked before it.
        budget.reserved = min(max_frames_per_thread, max_total_frames // 2)
    for index, thread in enumerate(kept):
        is_requesting = index == state.requesting_thread
        context = _thread_context(dump, thread, is_requesting, notes)
        memory = _thread_memory(dump, thread)
        # Breakpad's x86 walker discards a stack above 4 GiB (docs/formats/breakpad.md §3.1 item 5).
        if context is not None and context.cpu == "x86" and memory and memory.end > 1 << 32:
            memory = None
        stack = CallStack(
            thread_id=thread.thread_id, thread_name=dump.thread_names.get(thread.thread_id)
        )
        if context is not None:
            stack.frames, stack.truncated_reason = _walk_within(
                budget, walked_stacks, thread, context, memory, state, os_short,
                max_frames_per_thread, is_requesting,
            )
        if is_requesting:
            budget.reserved = 0
        state.threads.append(ThreadState(stack, context, memory))
    notes.extend(budget.notes(max_total_frames))
    return state


def _walk_within(
    budget: WalkBudget,
    walked_stacks: set[tuple[int, int]],
    thread: RawThread,
    context: CPUContext,
    memory: MemoryRegion | None,
    state: ProcessState,
    os_short: str,
    max_frames_per_thread: int,
    is_requesting: bool,
) -> tuple[list[StackFrame], str | None]:
    """Walk one thread within what the dump has left (limits.py); a thread past a limit, or on
    a stack already walked, keeps its context frame only."""
    key = _stack_key(thread, memory)
    available = budget.frames_left - (0 if is_requesting else budget.reserved)
    cut = None
    if key is not None and key in walked_stacks and not is_requesting:
        cut = SHARED_STACK
    elif available <= 0:
        cut = TOTAL_FRAME_LIMIT
    elif budget.memory_exceeded():
        cut = MEMORY_LIMIT
    if key is not None:
        walked_stacks.add(key)
    per_thread = 1 if cut is not None else min(max_frames_per_thread, available)
    frames, reason = walk_thread(
        context,
        memory if cut is None else None,
        state.modules,
        state.symbols,
        os_short=os_short,
        max_frames=per_thread,
        should_stop=budget.stop_reason,
    )
    if cut is not None:
        reason = cut
    elif reason == "frame limit" and per_thread < max_frames_per_thread:
        reason = TOTAL_FRAME_LIMIT  # the dump's budget, not the thread's own limit, ran out
    budget.frames_left -= len(frames)
    budget.count_cut(reason)
    return frames, reason
