"""Fill a frame's module, function and source line, and build its inline frames.

docs/formats/breakpad.md §1.6 and 7: symbols are looked up at `frame.instruction` (ret-1 on
x86/amd64 callers); inline frames share the real frame's instruction and source_line_base, and each
frame is shifted to show the position inside itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from procsupervisor.workers.stackwalker.model import FrameTrust, StackFrame
from procsupervisor.workers.stackwalker.unwind.env import WalkEnv


@dataclass
class _Position:
    file: str | None
    line: int | None


def symbolize(env: WalkEnv, frame: StackFrame) -> list[StackFrame]:
    """Symbolize `frame` in place; return its inline frames, innermost first."""
    module = env.modules.module_for_address(frame.instruction)
    frame.module = module
    if module is None:
        return []
    base = module.base_address
    found = env.lookup(module, frame.instruction)
    if found is None:
        return []
    frame.function_name = found.function_name
    frame.function_base = base + found.function_base
    if found.source_line is not None:
        frame.source_file = found.source_file
        frame.source_line = found.source_line
        if found.source_line_base is not None:
            frame.source_line_base = base + found.source_line_base
    if not found.inlines:
        return []

    real_position = _Position(frame.source_file, frame.source_line)
    call_sites = [
        _Position(
            info.call_site_file if info.call_site_file is not None else real_position.file,
            info.call_site_line,
        )
        for info in found.inlines
    ]
    # Innermost inline frame shows the line record; each outer one the call site of the level
    # inside it; the real frame the outermost call site.
    positions = [real_position, *call_sites[:-1]]
    inline_frames: list[StackFrame] = []
    for info, position in zip(found.inlines, positions, strict=True):
        inline = StackFrame(
            instruction=frame.instruction,
            trust=FrameTrust.INLINE,
            context=None,
            module=module,
            function_name=info.function_name,
            function_base=base + info.function_base,
            is_inline=True,
        )
        _place(inline, position, frame.source_line_base)
        inline_frames.append(inline)
    _place(frame, call_sites[-1], frame.source_line_base)
    return inline_frames


def _place(frame: StackFrame, position: _Position, line_base: int | None) -> None:
    frame.source_file = position.file
    frame.source_line = position.line
    # Without a line record Breakpad's source_line_base stays 0, so a frame that still gets a
    # file prints its absolute address as the offset (docs/formats/breakpad.md §7, item 6).
    if line_base is None and position.file:
        line_base = 0
    frame.source_line_base = line_base
