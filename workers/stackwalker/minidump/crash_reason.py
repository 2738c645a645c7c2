"""Breakpad's crash reason and crash address (docs/formats/minidump.md §7, docs/formats/breakpad.md
§8.2)."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.minidump.exception import ExceptionRecord
from procsupervisor.workers.stackwalker.minidump.system_info import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64_OLD,
    ARCH_PPC,
    ARCH_X86,
    ARCHES_32BIT_CRASH_ADDRESS,
    PLATFORM_ANDROID,
    PLATFORM_IOS,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WIN32_NT,
    PLATFORM_WIN32_WINDOWS,
    SystemInfo,
)

_WINDOWS_SIMPLE = {
    0x40010005: "DBG_CONTROL_C",
    0x80000001: "EXCEPTION_GUARD_PAGE",
    0x80000002: "EXCEPTION_DATATYPE_MISALIGNMENT",
    0x80000003: "EXCEPTION_BREAKPOINT",
    0x80000004: "EXCEPTION_SINGLE_STEP",
    0xC0000008: "EXCEPTION_INVALID_HANDLE",
    0xC000001D: "EXCEPTION_ILLEGAL_INSTRUCTION",
    0xC0000025: "EXCEPTION_NONCONTINUABLE_EXCEPTION",
    0xC0000026: "EXCEPTION_INVALID_DISPOSITION",
    0xC000008C: "EXCEPTION_BOUNDS_EXCEEDED",
    0xC000008D: "EXCEPTION_FLT_DENORMAL_OPERAND",
    0xC000008E: "EXCEPTION_FLT_DIVIDE_BY_ZERO",
    0xC000008F: "EXCEPTION_FLT_INEXACT_RESULT",
    0xC0000090: "EXCEPTION_FLT_INVALID_OPERATION",
    0xC0000091: "EXCEPTION_FLT_OVERFLOW",
    0xC0000092: "EXCEPTION_FLT_STACK_CHECK",
    0xC0000093: "EXCEPTION_FLT_UNDERFLOW",
    0xC0000094: "EXCEPTION_INT_DIVIDE_BY_ZERO",
    0xC0000095: "EXCEPTION_INT_OVERFLOW",
    0xC0000096: "EXCEPTION_PRIV_INSTRUCTION",
    0xC00000FD: "EXCEPTION_STACK_OVERFLOW",
    0xC00000FF: "EXCEPTION_BAD_FUNCTION_TABLE",
    0xC0000194: "EXCEPTION_POSSIBLE_DEADLOCK",
    0xC0000374: "EXCEPTION_HEAP_CORRUPTION",
    0xE0000008: "Out of Memory",
    0xE06D7363: "Unhandled C++ Exception",
    0x0517A7ED: "Simulated Exception",
}

_FAST_FAIL = {
    1: "VTGUARD_CHECK_FAILURE", 2: "STACK_COOKIE_CHECK_FAILURE", 3: "CORRUPT_LIST_ENTRY",
    4: "INCORRECT_STACK", 5: "INVALID_ARG", 6: "GS_COOKIE_INIT", 7: "FATAL_APP_EXIT",
    8: "RANGE_CHECK_FAILURE", 9: "UNSAFE_REGISTRY_ACCESS", 10: "GUARD_ICALL_CHECK_FAILURE",
    11: "GUARD_WRITE_CHECK_FAILURE", 12: "INVALID_FIBER_SWITCH", 13: "INVALID_SET_OF_CONTEXT",
    14: "INVALID_REFERENCE_COUNT", 18: "INVALID_JUMP_BUFFER", 19: "MRDATA_MODIFIED",
    20: "CERTIFICATION_FAILURE", 21: "INVALID_EXCEPTION_CHAIN", 22: "CRYPTO_LIBRARY",
    23: "INVALID_CALL_IN_DLL_CALLOUT", 24: "INVALID_IMAGE_BASE", 25: "DLOAD_PROTECTION_FAILURE",
    26: "UNSAFE_EXTENSION_CALL", 27: "DEPRECATED_SERVICE_INVOKED", 28: "INVALID_BUFFER_ACCESS",
    29: "INVALID_BALANCED_TREE", 30: "INVALID_NEXT_THREAD", 31: "GUARD_ICALL_CHECK_SUPPRESSED",
    32: "APCS_DISABLED", 33: "INVALID_IDLE_STATE", 34: "MRDATA_PROTECTION_FAILURE",
    35: "UNEXPECTED_HEAP_EXCEPTION", 36: "INVALID_LOCK_STATE", 37: "GUARD_JUMPTABLE",
    38: "INVALID_LONGJUMP_TARGET", 39: "INVALID_DISPATCH_CONTEXT", 40: "INVALID_THREAD",
    41: "INVALID_SYSCALL_NUMBER", 42: "INVALID_FILE_OPERATION", 43: "LPAC_ACCESS_DENIED",
    44: "GUARD_SS_FAILURE", 45: "LOADER_CONTINUITY_FAILURE",
    46: "GUARD_EXPORT_SUPPRESSION_FAILURE", 47: "INVALID_CONTROL_STACK", 48: "SET_CONTEXT_DENIED",
    49: "INVALID_IAT", 50: "HEAP_METADATA_CORRUPTION", 51: "PAYLOAD_RESTRICTION_VIOLATION",
    52: "LOW_LABEL_ACCESS_DENIED", 53: "ENCLAVE_CALL_FAILURE", 54: "UNHANDLED_LSS_EXCEPTON",
    55: "ADMINLESS_ACCESS_DENIED", 56: "UNEXPECTED_CALL", 57: "CONTROL_INVALID_RETURN_ADDRESS",
    58: "UNEXPECTED_HOST_BEHAVIOR", 59: "FLAGS_CORRUPTION", 60: "VEH_CORRUPTION",
    61: "ETW_CORRUPTION", 62: "RIO_ABORT", 63: "INVALID_PFN",
    64: "GUARD_ICALL_CHECK_FAILURE_XFG", 65: "CAST_GUARD", 66: "HOST_VISIBILITY_CHANGE",
    67: "KERNEL_CET_SHADOW_STACK_ASSIST", 68: "PATCH_CALLBACK_FAILED", 69: "NTDLL_PATCH_FAILED",
    70: "INVALID_FLS_DATA",
}  # fmt: skip

# The NTSTATUS names most often seen as in-page-error causes. Breakpad knows about 6400 of
# them (symbolic_constants_win.cc); an unknown one prints as hex, which is what Breakpad does
# for codes outside its table too.
_NTSTATUS = {
    0x00000000: "STATUS_SUCCESS",
    0xC0000001: "STATUS_UNSUCCESSFUL",
    0xC0000005: "STATUS_ACCESS_VIOLATION",
    0xC0000006: "STATUS_IN_PAGE_ERROR",
    0xC000000D: "STATUS_INVALID_PARAMETER",
    0xC000000E: "STATUS_NO_SUCH_DEVICE",
    0xC000000F: "STATUS_NO_SUCH_FILE",
    0xC0000017: "STATUS_NO_MEMORY",
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC0000034: "STATUS_OBJECT_NAME_NOT_FOUND",
    0xC000003E: "STATUS_DATA_OVERRUN",
    0xC000003F: "STATUS_CRC_ERROR",
    0xC0000043: "STATUS_SHARING_VIOLATION",
    0xC000009A: "STATUS_INSUFFICIENT_RESOURCES",
    0xC000009C: "STATUS_DEVICE_DATA_ERROR",
    0xC000009D: "STATUS_DEVICE_NOT_CONNECTED",
    0xC00000B5: "STATUS_IO_TIMEOUT",
    0xC000010A: "STATUS_PROCESS_IS_TERMINATING",
    0xC0000120: "STATUS_CANCELLED",
    0xC000014F: "STATUS_UNRECOGNIZED_VOLUME",
    0xC0000185: "STATUS_IO_DEVICE_ERROR",
    0xC0000186: "STATUS_DEVICE_PROTOCOL_ERROR",
    0xC000020C: "STATUS_CONNECTION_DISCONNECTED",
    0xC000026E: "STATUS_VOLUME_DISMOUNTED",
    0xC00002C5: "STATUS_DATATYPE_MISALIGNMENT_ERROR",
    0xC000012D: "STATUS_COMMITMENT_LIMIT",
    0xC0000102: "STATUS_FILE_CORRUPT_ERROR",
    0xC0000467: "STATUS_FILE_NOT_AVAILABLE",
    0xC000A2A1: "STATUS_OFFLOAD_READ_FILE_NOT_SUPPORTED",
    0xC0000476: "STATUS_NO_LINK_TRACKING_IN_TRANSACTION",
    0xC00000C4: "STATUS_UNEXPECTED_NETWORK_ERROR",
    0xC000006E: "STATUS_ACCOUNT_RESTRICTION",
    0xC0000103: "STATUS_NOT_A_DIRECTORY",
    0xC000003A: "STATUS_OBJECT_PATH_NOT_FOUND",
    0xC0000010: "STATUS_INVALID_DEVICE_REQUEST",
    0xC0000011: "STATUS_END_OF_FILE",
    0xC0000013: "STATUS_NO_MEDIA_IN_DEVICE",
    0xC0000054: "STATUS_FILE_LOCK_CONFLICT",
    0xC000007F: "STATUS_DISK_FULL",
    0xC0000056: "STATUS_DELETE_PENDING",
    0xC0000128: "STATUS_FILE_CLOSED",
    0xC0000184: "STATUS_INVALID_DEVICE_STATE",
    0xC00000A2: "STATUS_MEDIA_WRITE_PROTECTED",
    0xC00000A3: "STATUS_DEVICE_NOT_READY",
    0xC0000033: "STATUS_OBJECT_NAME_INVALID",
    0xC000000A: "STATUS_INVALID_IMAGE_FORMAT",
    0xC0000008: "STATUS_INVALID_HANDLE",
    0xC0000009: "STATUS_BAD_INITIAL_STACK",
}

LINUX_SIGNALS = [
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
]  # fmt: skip
_LINUX_SUBCODES: dict[int, tuple[str, list[str]]] = {
    4: ("SIGILL / ", ["ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC",
                      "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK"]),
    7: ("SIGBUS / ", ["BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR",
                      "BUS_MCEERR_AO"]),
    8: ("SIGFPE / ", ["FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND",
                      "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB"]),
    11: ("SIGSEGV /", ["SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR",
                       "SEGV_ACCADI", "SEGV_ADIDERR", "SEGV_ADIPERR", "SEGV_MTEAERR",
                       "SEGV_MTESERR"]),
}  # fmt: skip

_MAC_TYPES = {
    1: "EXC_BAD_ACCESS", 2: "EXC_BAD_INSTRUCTION", 3: "EXC_ARITHMETIC", 4: "EXC_EMULATION",
    5: "EXC_SOFTWARE", 6: "EXC_BREAKPOINT", 7: "EXC_SYSCALL", 8: "EXC_MACH_SYSCALL",
    9: "EXC_RPC_ALERT", 11: "EXC_RESOURCE", 12: "EXC_GUARD",
}  # fmt: skip
_MAC_ARM = "arm"
_MAC_PPC = "ppc"
_MAC_X86 = "x86"
# (exception type, CPU family or "" for any) -> flags -> name
_MAC_CODES: dict[tuple[int, str], dict[int, str]] = {
    (1, ""): {1: "KERN_INVALID_ADDRESS", 2: "KERN_PROTECTION_FAILURE", 8: "KERN_NO_ACCESS",
              9: "KERN_MEMORY_FAILURE", 10: "KERN_MEMORY_ERROR", 50: "KERN_CODESIGN_ERROR"},
    (1, _MAC_ARM): {0x101: "EXC_ARM_DA_ALIGN", 0x102: "EXC_ARM_DA_DEBUG"},
    (1, _MAC_PPC): {0x101: "EXC_PPC_VM_PROT_READ", 0x102: "EXC_PPC_BADSPACE",
                    0x103: "EXC_PPC_UNALIGNED"},
    (1, _MAC_X86): {13: "EXC_I386_GPFLT"},
    (2, _MAC_ARM): {1: "EXC_ARM_UNDEFINED"},
    (2, _MAC_PPC): {1: "EXC_PPC_INVALID_SYSCALL", 2: "EXC_PPC_UNIPL_INST",
                    3: "EXC_PPC_PRIVINST", 4: "EXC_PPC_PRIVREG", 5: "EXC_PPC_TRACE",
                    6: "EXC_PPC_PERFMON"},
    (2, _MAC_X86): {1: "EXC_I386_INVOP", 10: "EXC_I386_INVTSSFLT", 11: "EXC_I386_SEGNPFLT",
                    12: "EXC_I386_STKFLT", 13: "EXC_I386_GPFLT", 17: "EXC_I386_ALIGNFLT"},
    (3, _MAC_PPC): {1: "EXC_PPC_OVERFLOW", 2: "EXC_PPC_ZERO_DIVIDE", 3: "EXC_FLT_INEXACT",
                    4: "EXC_PPC_FLT_ZERO_DIVIDE", 5: "EXC_PPC_FLT_UNDERFLOW",
                    6: "EXC_PPC_FLT_OVERFLOW", 7: "EXC_PPC_FLT_NOT_A_NUMBER",
                    8: "EXC_PPC_NOEMULATION", 9: "EXC_PPC_ALTIVECASSIST"},
    (3, _MAC_X86): {1: "EXC_I386_DIV", 2: "EXC_I386_INTO", 3: "EXC_I386_NOEXT",
                    4: "EXC_I386_EXTOVR", 5: "EXC_I386_EXTERR", 6: "EXC_I386_EMERR",
                    7: "EXC_I386_BOUND", 8: "EXC_I386_SSEEXTERR"},
    (5, ""): {0x00010002: "SIGABRT", 0xDEADC0DE: "UNCAUGHT_NS_EXCEPTION", 1: "EXC_PPC_TRAP",
              0x10100: "EXC_PPC_MIGRATE"},
    (6, _MAC_ARM): {0x101: "EXC_ARM_DA_ALIGN", 0x102: "EXC_ARM_DA_DEBUG",
                    1: "EXC_ARM_BREAKPOINT"},
    (6, _MAC_PPC): {1: "EXC_PPC_BREAKPOINT"},
    (6, _MAC_X86): {1: "EXC_I386_SGL", 2: "EXC_I386_BPT"},
}  # fmt: skip
_MAC_WHOLE = {0x43507378: "Simulated Exception", 0x43506E78: "Uncaught NSException"}


def _hex32(value: int) -> str:
    return f"0x{value & 0xFFFFFFFF:08x}"


def _windows_reason(exc: ExceptionRecord) -> str | None:
    code = exc.code
    if code in _WINDOWS_SIMPLE:
        return _WINDOWS_SIMPLE[code]
    params = exc.parameters
    if code in (0xC0000005, 0xC0000006):
        reason = "EXCEPTION_ACCESS_VIOLATION" if code == 0xC0000005 else "EXCEPTION_IN_PAGE_ERROR"
        if params:
            reason += {0: "_READ", 1: "_WRITE", 8: "_EXEC"}.get(params[0], "")
        if code == 0xC0000006 and len(params) >= 3:
            status = params[2] & 0xFFFFFFFF
            reason += " / " + _NTSTATUS.get(status, _hex32(status))
        return reason
    if code == 0xC0000409:
        if params and params[0] in _FAST_FAIL:
            return "FAST_FAIL_" + _FAST_FAIL[params[0]]
        return "EXCEPTION_STACK_BUFFER_OVERRUN"
    return None


def _linux_reason(exc: ExceptionRecord) -> str | None:
    if exc.code == 0xFFFFFFFF:
        return "DUMP_REQUESTED"
    if exc.code in _LINUX_SUBCODES:
        prefix, names = _LINUX_SUBCODES[exc.code]
        flags = exc.flags
        sub = names[flags - 1] if 1 <= flags <= len(names) else _hex32(flags)
        return prefix + sub
    if 1 <= exc.code <= len(LINUX_SIGNALS):
        return LINUX_SIGNALS[exc.code - 1]
    return None


def _mac_family(arch: int) -> str:
    if arch in (ARCH_ARM, ARCH_ARM64_OLD):
        return _MAC_ARM
    if arch == ARCH_PPC:
        return _MAC_PPC
    if arch in (ARCH_X86, ARCH_AMD64):
        return _MAC_X86
    return "?"


def _mac_reason(exc: ExceptionRecord, arch: int) -> str | None:
    if exc.code in _MAC_WHOLE:
        return _MAC_WHOLE[exc.code]
    name = _MAC_TYPES.get(exc.code)
    if name is None:
        return None
    sub = _MAC_CODES.get((exc.code, ""), {}).get(exc.flags)
    if sub is None:
        sub = _MAC_CODES.get((exc.code, _mac_family(arch)), {}).get(exc.flags)
    return f"{name} / {sub if sub is not None else _hex32(exc.flags)}"


def crash_reason(exc: ExceptionRecord, system_info: SystemInfo | None) -> str:
    reason: str | None = None
    if system_info is not None:
        platform = system_info.platform_id
        if platform in (PLATFORM_WIN32_NT, PLATFORM_WIN32_WINDOWS):
            reason = _windows_reason(exc)
        elif platform in (PLATFORM_LINUX, PLATFORM_ANDROID):
            reason = _linux_reason(exc)
        elif platform in (PLATFORM_MAC, PLATFORM_IOS):
            reason = _mac_reason(exc, system_info.processor_architecture)
    if reason is None:
        reason = f"{_hex32(exc.code)} / {_hex32(exc.flags)}"
    return reason


def crash_address(exc: ExceptionRecord, system_info: SystemInfo | None) -> int:
    address = exc.address
    if (
        system_info is not None
        and system_info.is_windows
        and exc.code in (0xC0000005, 0xC0000006)
        and len(exc.parameters) >= 2
    ):
        address = exc.parameters[1]
    if system_info is not None and (
        system_info.processor_architecture in ARCHES_32BIT_CRASH_ADDRESS
    ):
        address &= 0xFFFFFFFF
    return address
