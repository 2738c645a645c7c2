"""Signature generation through siggen, from our json_dump frames."""

from __future__ import annotations

from pathlib import Path

from _rules_helpers import (
    assert_valid_fields,
    frame,
    json_dump,
    load_signatures_script,
    run_rule,
)
from siggen.generator import SignatureGenerator

from procsupervisor.workers.rules.signature import (
    SignatureGeneratorRule,
    siggen_frame,
    signature_input,
)

RULE = SignatureGeneratorRule()


def _sign(**processed: object) -> tuple[dict[str, object], list[str]]:
    ctx = run_rule(RULE, processed=processed)
    assert_valid_fields(ctx.processed)
    return ctx.processed, ctx.notes


def test_siggen_frame_keeps_what_siggen_reads() -> None:
    converted = siggen_frame(
        frame(
            3,
            "xul.dll",
            "f(int)",
            file="a.cpp",
            line=7,
            offset=0x20,
            inlines=[{"function": "g", "file": None, "line": 2}],
        )
    )
    assert converted == {
        "module": "xul.dll",
        "function": "f(int)",
        "file": "a.cpp",
        "line": 7,
        "module_offset": "0x20",
        "offset": "0x0000000000400020",
        "inlines": [{"function": "g", "line": 2}],
    }
    assert siggen_frame({"module": "", "function": None, "offset": "0x10"}) == {"offset": "0x10"}


def test_signature_input_skips_truncation_markers_and_reads_crash_info() -> None:
    dump = json_dump([[frame(0, "a.dll", "f"), {"truncated": {"msg": "5 frames truncated"}}]])
    data = signature_input({"json_dump": dump, "abort_message": "boom", "url": "private"})
    assert data["threads"] == [{"frames": [siggen_frame(frame(0, "a.dll", "f"))]}]
    assert data["crashing_thread"] == 0
    assert data["reason"] == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert data["os"] == "Windows NT"
    assert data["abort_message"] == "boom"
    assert "url" not in data


def test_signature_skips_irrelevant_frames() -> None:
    stack = [
        frame(0, "ntdll.dll", "KiFastSystemCallRet"),
        frame(1, "xul.dll", "mozilla::dom::Foo::Bar(int, char*)"),
        frame(2, "xul.dll", "main"),
    ]
    processed, notes = _sign(json_dump=json_dump([stack]))
    assert processed["signature"] == "mozilla::dom::Foo::Bar"
    assert processed["proto_signature"] == "KiFastSystemCallRet | mozilla::dom::Foo::Bar | main"
    assert "CSignatureTool" in str(processed["signature_debug"])
    assert notes == []


def test_signature_uses_the_crashing_thread() -> None:
    dump = json_dump(
        [[frame(0, "a.dll", "first")], [frame(0, "b.dll", "second")]], crashing_thread=1
    )
    processed, _ = _sign(json_dump=dump)
    assert processed["signature"] == "second"


def test_windows_modules_are_lower_cased_and_inlines_come_first() -> None:
    dump = json_dump([[frame(0, "NTDLL.DLL"), frame(1, "KERNEL32.dll")]])
    assert _sign(json_dump=dump)[0]["signature"] == "ntdll.dll | kernel32.dll"
    inlined = frame(0, "xul.dll", "outer()", inlines=[{"function": "inner()", "file": "a.h"}])
    assert _sign(json_dump=json_dump([[inlined]]))[0]["signature"] == "inner"


def test_annotations_shape_the_signature() -> None:
    dump = json_dump([[frame(0, "xul.dll", "f")]])
    assert _sign(json_dump=dump, abort_message="boom")[0]["signature"] == "Abort | boom | f"
    assert _sign(json_dump=dump, oom_allocation_size=100)[0]["signature"] == "OOM | small"
    assert _sign(json_dump=dump, ipc_channel_error="ShutDownKill")[0]["signature"] == (
        "IPCError-content | ShutDownKill"
    )
    with_browser_dump = _sign(
        json_dump=dump,
        ipc_channel_error="ShutDownKill",
        additional_minidumps=["upload_file_minidump_browser"],
    )
    assert with_browser_dump[0]["signature"] == "IPCError-browser | ShutDownKill"


def test_no_frames_gives_an_empty_signature_with_siggen_notes() -> None:
    processed, notes = _sign(
        json_dump=json_dump([[]], crashing_thread=None), mdsw_status_string="ERROR_NO_THREAD_LIST"
    )
    assert processed["signature"] == "EMPTY: no frame data available; ERROR_NO_THREAD_LIST"
    assert "proto_signature" not in processed
    assert notes == [
        "SignatureGenerationRule: CSignatureTool: no frame data for crashing thread (0)"
    ]


def test_no_dump_at_all() -> None:
    processed, _ = _sign()
    assert processed["signature"] == "EMPTY: no frame data available"


def test_java_signature() -> None:
    trace = "java.lang.NullPointerException\n\tat org.mozilla.Foo.bar(Foo.java:10)"
    processed, _ = _sign(java_stack_trace=trace)
    assert (
        processed["signature"] == "java.lang.NullPointerException: at org.mozilla.Foo.bar(Foo.java)"
    )


def test_stale_proto_signature_is_removed_on_regeneration() -> None:
    processed, _ = _sign(proto_signature="old", json_dump=json_dump([[]]))
    assert "proto_signature" not in processed


MACHINE_TEXT = """OS|Windows NT|5.1.2600 Service Pack 2
CPU|x86|GenuineIntel family 6 model 13 stepping 8|1
GPU|||
Crash|EXCEPTION_ACCESS_VIOLATION_WRITE|0x45|1
Module|test_app.exe||test_app.pdb|5A9832E5287241C1838ED98914E9B7FF1|0x00400000|0x0042cfff|1

0|0|NTDLL.DLL||||0x3
1|0|test_app.exe|`anonymous namespace'::CrashFunction|c:\\test_app.cc|58|0x3
1|1|test_app.exe|main|c:\\test_app.cc|65|0x5
1|2|||||0x7c816fd7
"""


def test_machine_readable_frames_become_json_dump_frames() -> None:
    parsed = load_signatures_script().parse_machine_readable(MACHINE_TEXT)
    assert parsed["system_info"]["os"] == "Windows NT"
    assert parsed["crash_info"] == {
        "type": "EXCEPTION_ACCESS_VIOLATION_WRITE",
        "address": "0x45",
        "crashing_thread": 1,
    }
    assert [len(thread["frames"]) for thread in parsed["threads"]] == [1, 3]
    assert parsed["threads"][0]["frames"][0]["module_offset"] == "0x3"
    assert parsed["threads"][1]["frames"][0]["line"] == 58
    assert parsed["threads"][1]["frames"][2]["offset"] == "0x7c816fd7"
    data = signature_input({"json_dump": parsed})
    assert data["threads"][1]["frames"][2] == {"offset": "0x7c816fd7"}
    processed, _ = _sign(json_dump=parsed)
    assert processed["signature"] == "(anonymous namespace)::CrashFunction"


def test_breakpad_signatures_for_the_reference_runs(testdata: Path) -> None:
    script = load_signatures_script()
    runs = script.find_runs(testdata / "sentry")
    assert {run.name for run in runs} >= {"windows", "linux", "macos"}
    generator = SignatureGenerator()
    by_name = {
        (run.dump.name, run.name): script.breakpad_signature(generator, run.expected)
        for run in runs
    }
    assert by_name[("windows.dmp", "windows")] == "main"
    assert by_name[("macos.dmp", "macos.with-inlines-symbols")] == ("(anonymous namespace)::crash")
