"""Rules that read the stackwalker's json_dump, on json_dumps built in the test."""

from __future__ import annotations

import pytest
from _rules_helpers import (
    RecordingMetrics,
    assert_valid_fields,
    frame,
    json_dump,
    module,
    run_rule,
)

from procsupervisor.workers.rules import crashing_thread, stack_summary, system_info


def _crash(dump: dict[str, object], **fields: object) -> dict[str, object]:
    processed: dict[str, object] = {"json_dump": dump, **fields}
    return run_rule(crashing_thread.CrashingThreadInfoRule(), processed=processed).processed


def test_crashing_thread_info() -> None:
    dump = json_dump(
        [[frame(0, "test_app.exe", "main")], [frame(0, "ntdll.dll")]],
        crashing_thread=1,
        thread_names=["main", "Socket Thread"],
    )
    dump["crashing_thread"]["last_error_value"] = "ERROR_NOT_ENOUGH_MEMORY"
    ctx = run_rule(crashing_thread.CrashingThreadInfoRule(), processed={"json_dump": dump})
    assert {k: v for k, v in ctx.processed.items() if k != "json_dump"} == {
        "crashing_thread": 1,
        "crashing_thread_name": "Socket Thread",
        "reason": "EXCEPTION_ACCESS_VIOLATION_WRITE",
        "address": "0x00000045",
        "last_error_value": "ERROR_NOT_ENOUGH_MEMORY",
    }
    assert ctx.notes == []
    assert_valid_fields(ctx.processed)


def test_crashing_thread_missing_is_a_note() -> None:
    dump = json_dump([[frame(0, "a.dll")]], crashing_thread=None, reason="No crash", address="")
    dump["crash_info"]["address"] = None
    ctx = run_rule(crashing_thread.CrashingThreadInfoRule(), processed={"json_dump": dump})
    assert ctx.processed["crashing_thread"] is None
    assert ctx.processed["crashing_thread_name"] is None
    assert ctx.processed["address"] is None
    assert ctx.notes == ["mdsw did not identify the crashing thread"]
    assert_valid_fields(ctx.processed)


@pytest.mark.parametrize(
    ("address", "adjusted", "expected"),
    [
        ("0x0000000000000010", {"kind": "null-pointer", "offset": "0x10"}, "0x0000000000000000"),
        ("0x00000010", {"kind": "null-pointer", "offset": "0x10"}, "0x00000000"),
        (
            "0x0000000000000000",
            {"kind": "non-canonical", "address": "0xfefefefefefefefe"},
            "0xfefefefefefefefe",
        ),
    ],
)
def test_crashing_thread_adjusted_address(address: str, adjusted: dict, expected: str) -> None:
    dump = json_dump([[frame(0, "a.dll")]], address=address)
    dump["crash_info"]["adjusted_address"] = adjusted
    assert _crash(dump)["address"] == expected


def test_crashing_thread_rule_skips_crashes_without_a_dump() -> None:
    assert run_rule(crashing_thread.CrashingThreadInfoRule()).processed == {}


def test_truncate_stacks_keeps_both_ends() -> None:
    metrics = RecordingMetrics()
    long_stack = [frame(i, "xul.dll", f"f{i}") for i in range(1200)]
    dump = json_dump([long_stack, [frame(0, "a.dll")]])
    dump["crashing_thread"]["frames"] = list(long_stack)
    other = {
        "json_dump": json_dump([list(long_stack)]),
        "mdsw_status_string": "OK",
        "success": True,
    }
    processed = {
        "json_dump": dump,
        "additional_minidumps": ["upload_file_minidump_browser"],
        "upload_file_minidump_browser": other,
    }
    ctx = run_rule(crashing_thread.TruncateStacksRule(metrics), processed=processed)
    frames = ctx.processed["json_dump"]["threads"][0]["frames"]
    assert len(frames) == 501
    assert [f["function"] for f in frames[:250]] == [f"f{i}" for i in range(250)]
    assert frames[250] == {"truncated": {"msg": "700 frames truncated"}}
    assert [f["function"] for f in frames[251:]] == [f"f{i}" for i in range(950, 1200)]
    assert ctx.processed["json_dump"]["threads"][0]["truncated"] is True
    assert len(ctx.processed["json_dump"]["threads"][1]["frames"]) == 1
    assert ctx.notes == [
        "TruncateStacksRule: truncated json_dump.crashing_thread.frames: 1200 -> 501",
        "TruncateStacksRule: truncated json_dump.threads[0].frames: 1200 -> 501",
        "TruncateStacksRule: truncated upload_file_minidump_browser.json_dump.threads[0].frames: "
        "1200 -> 501",
    ]
    assert metrics.names("incr").count("processor.truncatestackrule.truncated") == 3
    assert_valid_fields(ctx.processed)


def test_truncate_stacks_leaves_short_stacks() -> None:
    dump = json_dump([[frame(i, "a.dll") for i in range(500)]])
    ctx = run_rule(
        crashing_thread.TruncateStacksRule(RecordingMetrics()), processed={"json_dump": dump}
    )
    assert len(ctx.processed["json_dump"]["threads"][0]["frames"]) == 500
    assert ctx.notes == []


def test_cpu_and_os_info_from_the_dump() -> None:
    dump = json_dump(
        [[frame(0, "a.dll")]], os="Windows NT", os_ver=" 10.0.19042 ", cpu_arch="amd64"
    )
    processed = {"json_dump": dump}
    for rule in (
        system_info.CPUInfoRule(),
        system_info.OSInfoRule(),
        system_info.OSPrettyVersionRule(),
    ):
        processed = run_rule(rule, processed=processed).processed
    assert processed["cpu_arch"] == "amd64"
    assert processed["cpu_info"] == "GenuineIntel family 6 model 13 stepping 8"
    assert processed["cpu_count"] == 1
    assert processed["os_name"] == "Windows NT"
    assert processed["os_version"] == "10.0.19042"
    assert processed["os_pretty_version"] == "Windows 10"
    assert_valid_fields(processed)


def test_platform_info_falls_back_to_annotations() -> None:
    processed = {}
    for rule in (system_info.CPUInfoRule(), system_info.OSInfoRule()):
        processed = run_rule(rule, processed=processed).processed
    assert (processed["cpu_arch"], processed["os_name"]) == ("unknown", "Unknown")
    raw = {"CPUArchitecture": "arm64", "OS": "Android", "OSVersion": "29"}
    ctx = run_rule(system_info.PlatformInfoRule(), raw_crash=raw, processed=processed)
    assert ctx.processed["cpu_arch"] == "arm64"
    assert ctx.processed["cpu_info"] == "unknown"
    assert ctx.processed["os_name"] == "Android"
    assert ctx.processed["os_version"] == "29"
    # the minidump's value wins over the annotation
    ctx = run_rule(system_info.PlatformInfoRule(), raw_crash=raw, processed={"cpu_arch": "x86"})
    assert ctx.processed["cpu_arch"] == "x86"


@pytest.mark.parametrize(
    ("os_name", "os_version", "lsb", "expected"),
    [
        ("Windows NT", "5.1.2600 Service Pack 2", None, "Windows XP"),
        ("Windows NT", "10.0.22000", None, "Windows 11"),
        ("Windows NT", "7.7.1", None, "Windows Unknown"),
        ("Windows NT", "", None, "Windows NT"),
        ("Mac OS X", "10.15.7 19H15", None, "OS X 10.15"),
        ("Mac OS X", "11.6.7 20G630", None, "macOS 11"),
        ("Linux", "0.0.0 Linux 5.10", "Ubuntu 20.04.1 LTS", "Ubuntu 20.04.1 LTS"),
        ("Linux", "0.0.0", None, "Linux"),
        ("Android", "29", None, "Android 29"),
        ("Unknown", "", None, "Unknown"),
    ],
)
def test_os_pretty_version(os_name: str, os_version: str, lsb: str | None, expected: str) -> None:
    processed: dict[str, object] = {"os_name": os_name, "os_version": os_version}
    if lsb:
        processed["json_dump"] = {"lsb_release": {"description": lsb}}
    ctx = run_rule(system_info.OSPrettyVersionRule(), processed=processed)
    assert ctx.processed["os_pretty_version"] == expected


def test_topmost_filenames_prefers_inlines() -> None:
    frames = [
        frame(0, "xul.dll", None),
        frame(
            1,
            "xul.dll",
            "f",
            file="real.cpp",
            line=3,
            inlines=[{"function": "g", "file": "inline.h", "line": 9}],
        ),
    ]
    processed = _crash(json_dump([frames]))
    ctx = run_rule(stack_summary.TopMostFilesRule(), processed=processed)
    assert ctx.processed["topmost_filenames"] == "inline.h"
    frames[1]["inlines"].insert(0, {"function": "h", "file": "", "line": 1})
    ctx = run_rule(stack_summary.TopMostFilesRule(), processed=processed)
    assert ctx.processed["topmost_filenames"] == "inline.h"
    frames[1].pop("inlines")
    ctx = run_rule(stack_summary.TopMostFilesRule(), processed=processed)
    assert ctx.processed["topmost_filenames"] == "real.cpp"


def test_topmost_filenames_without_files_or_stack() -> None:
    processed = _crash(json_dump([[frame(0, "xul.dll")]]))
    assert (
        "topmost_filenames"
        not in run_rule(stack_summary.TopMostFilesRule(), processed=processed).processed
    )
    assert run_rule(stack_summary.TopMostFilesRule()).processed == {}


def test_modules_in_stack_and_missing_symbols() -> None:
    modules = [
        module("test_app.exe"),
        module("kernel32.dll", "BCE8785C57B44245A669896B6A19B9542", missing_symbols=True),
        module(
            "ntdll.dll",
            "36515FB5D04345E491F672FA2E2878C02",
            version=None,
            code_id=None,
            missing_symbols=True,
        ),
        module("bad/name?.dll", "zz12", missing_symbols=False),
    ]
    stack = [
        frame(0, "test_app.exe", "f"),
        frame(1, "kernel32.dll"),
        frame(2, None),
        frame(3, "test_app.exe", "main"),
    ]
    processed = _crash(json_dump([stack, [frame(0, "ntdll.dll")]], modules=modules))
    for rule in (stack_summary.ModulesInStackRule(), stack_summary.MissingSymbolsRule()):
        processed = run_rule(rule, processed=processed).processed
    assert processed["modules_in_stack"] == (
        "kernel32.dll/BCE8785C57B44245A669896B6A19B9542;test_app.exe/5A9832E5287241C1838ED98914E9B7FF1"
    )
    assert processed["missing_symbols"] == (
        "kernel32.dll/1.0.0.1/BCE8785C57B44245A669896B6A19B9542/45D35F6C2d000;"
        "ntdll.dll/None/36515FB5D04345E491F672FA2E2878C02"
    )
    assert_valid_fields(processed)


def test_thread_count() -> None:
    dump = json_dump([[frame(0, "a.dll")]] * 3)
    assert (
        run_rule(stack_summary.ThreadCountRule(), processed={"json_dump": dump}).processed[
            "thread_count"
        ]
        == 3
    )
    dump.pop("thread_count")
    assert (
        run_rule(stack_summary.ThreadCountRule(), processed={"json_dump": dump}).processed[
            "thread_count"
        ]
        == 3
    )
    assert run_rule(stack_summary.ThreadCountRule()).processed["thread_count"] is None


@pytest.mark.parametrize(
    ("fields", "function", "expected"),
    [
        ({}, "main", "crash"),
        ({}, "mozilla::(anonymous namespace)::RunWatchdog(void*)", "hang"),
        ({"ipc_channel_error": "ShutDownKill"}, "main", "hang"),
        ({"async_shutdown_timeout": "{}"}, "main", "hang"),
    ],
)
def test_report_type(fields: dict[str, str], function: str, expected: str) -> None:
    processed = _crash(json_dump([[frame(0, "xul.dll", function)]]), **fields)
    assert (
        run_rule(stack_summary.ReportTypeRule(), processed=processed).processed["report_type"]
        == expected
    )
