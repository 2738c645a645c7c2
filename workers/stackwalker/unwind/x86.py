"""x86 unwinder: STACK WIN, STACK CFI, then ebp chain / scan (docs/formats/breakpad.md §4.1)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import (
    CPUContext,
    FrameTrust,
    StackFrame,
    WindowsFrameInfo,
)
from procsupervisor.workers.stackwalker.unwind.cfi_walk import CFIRegister, caller_by_cfi
from procsupervisor.workers.stackwalker.unwind.env import (
    FoundCaller,
    WalkEnv,
    accept_caller,
    last_context,
)
from procsupervisor.workers.stackwalker.unwind.postfix import PostfixEvaluator
from procsupervisor.workers.stackwalker.unwind.scan import (
    caller_by_scan,
    scan_for_return_address,
    search_words,
)

MASK = 0xFFFFFFFF
# How far above the return address a scanned frame's saved ebp may point.
MAX_SCANNED_EBP_FRAME = 0x20000

CFI_REGISTERS = (
    CFIRegister("eip", "$eip", ".ra", callee_saved=False),
    CFIRegister("esp", "$esp", ".cfa", callee_saved=False),
    CFIRegister("ebp", "$ebp", None, callee_saved=True),
    CFIRegister("eax", "$eax", None, callee_saved=False),
    CFIRegister("ebx", "$ebx", None, callee_saved=True),
    CFIRegister("ecx", "$ecx", None, callee_saved=False),
    CFIRegister("edx", "$edx", None, callee_saved=False),
    CFIRegister("esi", "$esi", None, callee_saved=True),
    CFIRegister("edi", "$edi", None, callee_saved=True),
)
_CFI_REQUIRED = frozenset({"eip", "esp", "ebp"})
_CFI_FILL = 0xDADADADA

_FRAME_POINTER_PROGRAM = (
    "$eip .raSearchStart ^ = $ebp $esp .cbCalleeParams + .cbSavedRegs + 8 - ^ = "
    "$esp .raSearchStart 4 + ="
)
_NO_FRAME_POINTER_PROGRAM = "$eip .raSearchStart ^ = $esp .raSearchStart 4 + ="


def get_caller_frame(
    env: WalkEnv, frames: list[StackFrame], scan_allowed: bool
) -> StackFrame | None:
    last = frames[-1]
    found: FoundCaller | None = None
    info = env.windows_frame_info(last)
    if info is not None:
        env.windows_info[id(last)] = info
        if info.kind != "param_only":
            found = _caller_by_windows_frame_info(env, frames, info, scan_allowed)
    if found is None:
        found = caller_by_cfi(env, last, CFI_REGISTERS, _CFI_FILL, _CFI_REQUIRED)
    if found is None:
        found = _caller_by_ebp_at_base(env, last, scan_allowed)
    if found is None:
        return None
    eip = found[0].registers["eip"]
    return accept_caller(frames, found, "eip", "esp", (eip - 1) & MASK, return_address=eip)


def _callee_parameter_size(env: WalkEnv, frames: list[StackFrame]) -> int:
    # Breakpad keeps overwriting while walking towards frame 0, so the youngest frame with a
    # remembered record wins, not the immediate callee (docs/formats/breakpad.md §4.1 A.1).
    size = 0
    for frame in reversed(frames[:-1]):
        if frame.trust is FrameTrust.INLINE:
            continue
        info = env.windows_info.get(id(frame))
        if info is not None:
            size = info.parameter_size
    return size


def _caller_by_windows_frame_info(
    env: WalkEnv, frames: list[StackFrame], info: WindowsFrameInfo, scan_allowed: bool
) -> tuple[CPUContext, FrameTrust] | None:
    last = frames[-1]
    callee = last_context(frames)
    regs = callee.registers
    callee_params = _callee_parameter_size(env, frames) & MASK
    dictionary: dict[str, int] = {"$ebp": regs["ebp"], "$esp": regs["esp"]}
    if "ebx" in callee.valid:
        dictionary["$ebx"] = regs["ebx"]
    dictionary[".cbCalleeParams"] = callee_params
    dictionary[".cbSavedRegs"] = info.saved_register_size & MASK
    dictionary[".cbLocals"] = info.local_size & MASK
    dictionary[".cbParams"] = info.parameter_size & MASK

    ra_search_start = (
        regs["esp"] + callee_params + info.local_size + info.saved_register_size
    ) & MASK
    adjusted = scan_for_return_address(env, ra_search_start, 3)
    if adjusted is not None:
        location, value = adjusted
        if (
            last.trust is FrameTrust.CONTEXT
            and info.kind == "fpo"
            and location == ra_search_start
            and value == regs["eip"]
        ):
            # An FPO system call stub: the top of the stack points at the current instruction.
            ra_search_start = (ra_search_start + 4) & MASK
            again = scan_for_return_address(env, ra_search_start, 3)
            if again is not None:
                ra_search_start = again[0]
        else:
            ra_search_start = location

    recover_ebp = True
    if info.program_string:
        program = info.program_string
    elif info.allocates_base_pointer:
        program = _FRAME_POINTER_PROGRAM
    else:
        program = _NO_FRAME_POINTER_PROGRAM
        if "ebx" in callee.valid:
            program += " $ebx $ebx ="
        recover_ebp = False
    if "@" in program and "ebp" in callee.valid:
        ra_search_start = (regs["ebp"] + 4) & MASK
    dictionary[".raSearchStart"] = ra_search_start
    dictionary[".raSearch"] = ra_search_start

    trust = FrameTrust.CFI
    evaluator = PostfixEvaluator(dictionary, env.memory, 4)
    succeeded = evaluator.evaluate(program)
    assigned = evaluator.assigned
    if not succeeded or "$eip" not in assigned or "$esp" not in assigned:
        found = (
            scan_for_return_address(env, regs["esp"], search_words(last)) if scan_allowed else None
        )
        if found is None:
            return None
        dictionary["$eip"] = found[1]
        dictionary["$esp"] = (found[0] + 4) & MASK
        trust = FrameTrust.SCAN

    caller_eip = dictionary.get("$eip", 0)
    if caller_eip != 0 or dictionary.get("$ebp", 0) != 0:
        offset = 0
        if not _in_loaded_module(env, caller_eip):
            location_start = (ra_search_start + 4) & MASK
            found = (
                scan_for_return_address(env, location_start, search_words(last))
                if scan_allowed
                else None
            )
            if found is not None:
                dictionary["$eip"] = found[1]
                dictionary["$esp"] = (found[0] + 4) & MASK
                offset = (found[0] - location_start) & MASK
                trust = FrameTrust.CFI_SCAN
        if recover_ebp:
            _recover_ebp(env, dictionary, regs["esp"], callee_params, info, offset, trust)

    registers = dict(regs)
    registers["eip"] = dictionary.get("$eip", 0) & MASK
    registers["esp"] = dictionary.get("$esp", 0) & MASK
    registers["ebp"] = dictionary.get("$ebp", 0) & MASK
    valid = {"eip", "esp", "ebp"}
    for name in ("ebx", "esi", "edi"):
        if f"${name}" in assigned:
            registers[name] = dictionary[f"${name}"] & MASK
            valid.add(name)
    return CPUContext(cpu="x86", registers=registers, valid=valid), trust


def _in_loaded_module(env: WalkEnv, address: int) -> bool:
    """Breakpad's check here consults only the loaded-module list, and uses eip itself."""
    module = env.modules.module_for_address(address)
    return module is not None and not module.is_unloaded


def _recover_ebp(
    env: WalkEnv,
    dictionary: dict[str, int],
    callee_esp: int,
    callee_params: int,
    info: WindowsFrameInfo,
    offset: int,
    trust: FrameTrust,
) -> None:
    ebp = dictionary.get("$ebp", 0) & MASK
    skipped_frames = trust is not FrameTrust.CFI and ebp <= (
        (dictionary[".raSearchStart"] + offset) & MASK
    )
    if not skipped_frames and env.readable(ebp, 4):
        return
    # The prolog saves ebp early, so search the saved-register area from its top down.
    location_end = (callee_esp + callee_params) & MASK
    location = location_end + ((info.saved_register_size + offset) & MASK)
    while location >= location_end:
        candidate = env.read_word(location)
        if candidate is None:
            return
        if env.readable(candidate, 4):
            dictionary["$ebp"] = candidate
            return
        location -= 4


def _caller_by_ebp_at_base(
    env: WalkEnv, last: StackFrame, scan_allowed: bool
) -> tuple[CPUContext, FrameTrust] | None:
    regs = last_context([last]).registers
    last_ebp = regs["ebp"]
    caller_eip = env.read_word(last_ebp + 4)
    saved_ebp = env.read_word(last_ebp)
    if caller_eip is not None and saved_ebp is not None:
        registers = dict(regs)
        registers.update(eip=caller_eip, esp=(last_ebp + 8) & MASK, ebp=saved_ebp)
        context = CPUContext(cpu="x86", registers=registers, valid={"eip", "esp", "ebp"})
        return context, FrameTrust.FRAME_POINTER
    found = caller_by_scan(env, last, "eip", "esp") if scan_allowed else None
    if found is None:
        return None
    context = found[0]
    # ebp is usually saved in the word just below the return address; else it is unchanged.
    below = (context.registers["esp"] - 8) & MASK
    candidate = env.read_word(below)
    if candidate is not None and below < candidate <= below + MAX_SCANNED_EBP_FRAME:
        context.registers["ebp"] = candidate
    context.valid.add("ebp")
    return found
