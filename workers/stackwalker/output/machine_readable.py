"""Breakpad's `minidump_stackwalk -m` text, byte for byte (docs/formats/breakpad.md §8)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import CodeModule, StackFrame
from procsupervisor.workers.stackwalker.process import ProcessState

_MASK64 = (1 << 64) - 1


def strip_separator(text: str) -> str:
    return text.replace("|", "").replace("\n", "")


def basename(path: str) -> str:
    """Everything after the last `/` or `\\`, on every OS (docs/formats/minidump.md §5.4)."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[cut + 1 :]


def header_lines(state: ProcessState) -> list[str]:
    info = state.system_info
    if info is None:
        lines = ["OS||", "CPU|||0"]
    else:
        lines = [
            f"OS|{strip_separator(info.os)}|{strip_separator(info.os_version)}",
            f"CPU|{strip_separator(info.cpu)}|{strip_separator(info.cpu_info)}"
            f"|{info.number_of_processors}",
        ]
    lines.append("GPU|||")
    requesting = "" if state.requesting_thread < 0 else str(state.requesting_thread)
    if state.crashed:
        lines.append(
            f"Crash|{strip_separator(state.crash_reason)}|0x{state.crash_address:x}|{requesting}"
        )
    elif state.assertion:
        lines.append(f"Crash|{strip_separator(state.assertion)}||{requesting}")
    else:
        lines.append(f"Crash|No crash||{requesting}")
    return lines


def module_line(module: CodeModule, is_main: bool) -> str:
    end = module.base_address + module.size - 1
    return (
        f"Module|{strip_separator(basename(module.code_file))}|{strip_separator(module.version)}"
        f"|{strip_separator(basename(module.debug_file))}"
        f"|{strip_separator(module.debug_identifier)}"
        f"|0x{module.base_address:08x}|0x{end:08x}|{1 if is_main else 0}"
    )


def frame_line(thread_index: int, frame_index: int, frame: StackFrame) -> str:
    address = frame.printed_address
    prefix = f"{thread_index}|{frame_index}|"
    module = frame.module
    if module is None:
        return f"{prefix}||||0x{address & _MASK64:x}"
    name = strip_separator(basename(module.code_file))
    function = frame.function_name
    if not function:
        return f"{prefix}{name}||||0x{(address - module.base_address) & _MASK64:x}"
    function = strip_separator(function)
    if frame.source_file:
        line_base = frame.source_line_base or 0
        return (
            f"{prefix}{name}|{function}|{strip_separator(frame.source_file)}"
            f"|{frame.source_line or 0}|0x{(address - line_base) & _MASK64:x}"
        )
    function_base = frame.function_base or 0
    return f"{prefix}{name}|{function}|||0x{(address - function_base) & _MASK64:x}"


def thread_order(state: ProcessState) -> list[int]:
    """The requesting thread first, then the others in index order."""
    order = list(range(len(state.threads)))
    if 0 <= state.requesting_thread < len(order):
        order.remove(state.requesting_thread)
        order.insert(0, state.requesting_thread)
    return order


def render(state: ProcessState) -> str:
    lines = header_lines(state)
    main = state.modules.main_module
    lines.extend(module_line(m, m is main) for m in state.modules)
    lines.append("")
    for index in thread_order(state):
        for number, frame in enumerate(state.threads[index].stack.frames):
            lines.append(frame_line(index, number, frame))
    return "\n".join(lines) + "\n"
