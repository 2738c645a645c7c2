"""The stackwalk rule with a stand-in walker: dump selection, statuses, notes, bounds."""

from __future__ import annotations

import json
from pathlib import Path

from _rules_helpers import (
    CRASH_ID,
    FakeWalker,
    FakeWalkResult,
    RecordingMetrics,
    assert_valid_fields,
    frame,
    json_dump,
    load_signatures_script,
    run_rule,
)
from siggen.generator import SignatureGenerator

from procsupervisor.metrics import NullMetrics
from procsupervisor.workers.processor import Processor, validate_processed_crash
from procsupervisor.workers.rules.stackwalk import (
    MAIN_DUMP,
    STACKWALK_VERSION,
    MinidumpStackwalkRule,
)

MAIN = json_dump([[frame(0, "test_app.exe", "main")]])
BROWSER = json_dump([[frame(0, "xul.dll", "Browser")]])


def _rule(walker: FakeWalker, metrics: RecordingMetrics | None = None) -> MinidumpStackwalkRule:
    return MinidumpStackwalkRule(
        symbols=None,
        metrics=metrics or RecordingMetrics(),
        max_frames_per_thread=77,
        timeout_s=5.0,
        walker=walker,
    )


def test_main_and_additional_dumps() -> None:
    walker = FakeWalker(
        {b"main": FakeWalkResult("OK", MAIN), b"browser": FakeWalkResult("OK", BROWSER)}
    )
    metrics = RecordingMetrics()
    ctx = run_rule(
        _rule(walker, metrics),
        dumps={
            "upload_file_minidump": b"main",
            "upload_file_minidump_browser": b"browser",
            "memory_report": b"not a minidump",
        },
    )
    assert ctx.processed["json_dump"] == MAIN
    assert ctx.processed["mdsw_status_string"] == "OK"
    assert ctx.processed["stackwalk_version"] == STACKWALK_VERSION
    assert ctx.processed["additional_minidumps"] == ["upload_file_minidump_browser"]
    assert ctx.processed["upload_file_minidump_browser"] == {
        "json_dump": BROWSER,
        "mdsw_status_string": "OK",
        "success": True,
    }
    assert ctx.notes == []
    assert sorted(call["data"] for call in walker.calls) == [b"browser", b"main"]
    assert all(call["max_frames_per_thread"] == 77 for call in walker.calls)
    assert all(call["deadline_s"] == 5.0 for call in walker.calls)
    outcomes = [
        tags for _, name, _, tags in metrics.calls if name == "processor.minidumpstackwalk.run"
    ]
    assert outcomes == [{"outcome": "success"}, {"outcome": "success"}]
    assert_valid_fields(ctx.processed)


def test_empty_dump_is_skipped() -> None:
    walker = FakeWalker({})
    ctx = run_rule(_rule(walker), dumps={"upload_file_minidump": b""})
    assert ctx.processed["mdsw_status_string"] == "EmptyMinidump"
    assert ctx.processed["json_dump"] == {}
    assert walker.calls == []
    assert ctx.notes == [
        "MinidumpStackwalkRule: upload_file_minidump is empty--skipping minidump processing"
    ]
    assert_valid_fields(ctx.processed)


def test_error_status_and_walker_notes_become_notes() -> None:
    notes = [f"thread {i}: stack scan limit" for i in range(25)]
    walker = FakeWalker({b"bad": FakeWalkResult("ERROR_NO_THREAD_LIST", {"status": "x"}, notes)})
    ctx = run_rule(_rule(walker), dumps={"upload_file_minidump": b"bad"})
    assert ctx.processed["mdsw_status_string"] == "ERROR_NO_THREAD_LIST"
    assert ctx.notes[0] == (
        "MinidumpStackwalkRule: upload_file_minidump: stackwalk status ERROR_NO_THREAD_LIST"
    )
    assert ctx.notes[1] == "MinidumpStackwalkRule: upload_file_minidump: thread 0: stack scan limit"
    assert len(ctx.notes) == 1 + 20 + 1
    assert (
        ctx.notes[-1]
        == "MinidumpStackwalkRule: upload_file_minidump: 5 more stackwalker notes dropped"
    )
    assert_valid_fields(ctx.processed)


def test_walker_exception_becomes_a_note() -> None:
    walker = FakeWalker({b"boom": RuntimeError("secret detail")})
    metrics = RecordingMetrics()
    ctx = run_rule(_rule(walker, metrics), dumps={"upload_file_minidump_content": b"boom"})
    assert ctx.processed["upload_file_minidump_content"] == {
        "json_dump": {},
        "mdsw_status_string": "unknown error",
        "success": False,
    }
    assert "json_dump" not in ctx.processed
    assert ctx.notes == [
        "MinidumpStackwalkRule: stackwalking upload_file_minidump_content failed: RuntimeError"
    ]
    assert [tags for _, name, _, tags in metrics.calls] == [{"outcome": "error"}]
    assert_valid_fields(ctx.processed)


def test_no_minidump_means_no_stackwalk() -> None:
    walker = FakeWalker({})
    ctx = run_rule(_rule(walker), dumps={"memory_report": b"x"})
    assert ctx.processed == {}
    assert walker.calls == []


# --- the real stackwalker on the shared test dumps -------------------------------------------


def _real_processor(testdata: Path, *roots: str, **options: str) -> Processor:
    from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

    provider = DirectorySymbolProvider([testdata / root for root in roots])
    return Processor(symbols=provider, metrics=NullMetrics(), options=options)


def test_real_dump_gives_frames_signature_and_modules(testdata: Path) -> None:
    processor = _real_processor(testdata, "breakpad/symbols")
    dump = (testdata / "breakpad" / "minidump2.dmp").read_bytes()
    processed = processor.process(CRASH_ID, {"ProductName": "TestApp"}, {MAIN_DUMP: dump})
    validate_processed_crash(processed)
    assert processed["mdsw_status_string"] == "OK"
    assert processed["stackwalk_version"] == STACKWALK_VERSION
    assert processed["signature"] == "(anonymous namespace)::CrashFunction"
    assert processed["proto_signature"] == (
        "(anonymous namespace)::CrashFunction | main | __tmainCRTStartup | BaseProcessStart"
    )
    assert processed["crashing_thread"] == 0
    assert processed["reason"] == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert processed["address"] == "0x00000045"
    assert processed["os_pretty_version"] == "Windows XP"
    assert processed["topmost_filenames"] == "c:\\test_app.cc"
    assert processed["modules_in_stack"] == (
        "kernel32.dll/BCE8785C57B44245A669896B6A19B9542;test_app.exe/5A9832E5287241C1838ED98914E9B7FF1"
    )
    frames = processed["json_dump"]["threads"][0]["frames"]
    assert [(f["module"], f["function"], f["line"]) for f in frames] == [
        ("test_app.exe", "`anonymous namespace'::CrashFunction", 58),
        ("test_app.exe", "main", 65),
        ("test_app.exe", "__tmainCRTStartup", 327),
        ("kernel32.dll", "BaseProcessStart", None),
    ]
    assert not [n for n in processed["processor_notes"].split("\n") if "failed" in n]


def test_real_dump_without_symbols_lists_missing_symbols(testdata: Path) -> None:
    processor = _real_processor(testdata)
    dump = (testdata / "sentry" / "windows.dmp").read_bytes()
    processed = processor.process(CRASH_ID, {}, {MAIN_DUMP: dump})
    validate_processed_crash(processed)
    assert "crash.pdb/" not in processed.get("missing_symbols", "")
    assert "crash.exe/" in processed["missing_symbols"]
    assert processed["signature"] == "crash.exe"


def test_real_additional_dump_and_corrupt_dump(testdata: Path) -> None:
    processor = _real_processor(testdata, "sentry/symbols")
    dumps = {
        MAIN_DUMP: (testdata / "rust-minidump" / "invalid-range.dmp").read_bytes(),
        "upload_file_minidump_browser": (testdata / "sentry" / "linux.dmp").read_bytes(),
    }
    processed = processor.process(CRASH_ID, {}, dumps)
    validate_processed_crash(processed)
    assert processed["mdsw_status_string"] == "ERROR_NO_THREAD_LIST"
    assert (
        "MinidumpStackwalkRule: upload_file_minidump: stackwalk status ERROR_NO_THREAD_LIST"
        in processed["processor_notes"]
    )
    assert processed["signature"] == "EMPTY: no frame data available; ERROR_NO_THREAD_LIST"
    browser = processed["upload_file_minidump_browser"]
    assert browser["success"] is True
    assert browser["json_dump"]["threads"][0]["frames"][0]["function"]
    assert processed["additional_minidumps"] == ["upload_file_minidump_browser"]


def test_real_dump_work_is_bounded_per_thread(testdata: Path) -> None:
    dump = (testdata / "breakpad" / "stack_exhaustion.dmp").read_bytes()
    unbounded = _real_processor(testdata).process(CRASH_ID, {}, {MAIN_DUMP: dump})
    bounded = _real_processor(testdata, stackwalk_max_frames="40").process(
        CRASH_ID, {}, {MAIN_DUMP: dump}
    )
    validate_processed_crash(bounded)
    full = unbounded["json_dump"]["threads"][0]
    cut = bounded["json_dump"]["threads"][0]
    assert len(cut["frames"]) < len(full["frames"])
    assert cut["frames_truncated"] is True
    assert bounded["signature"] == unbounded["signature"] == "stackoverflow | crashme.exe"


def test_signatures_match_breakpads_over_the_test_data(testdata: Path) -> None:
    """Issue 5's bar: ours equals siggen-over-Breakpad's-frames for >= 98 % of the runs."""
    script = load_signatures_script()
    generator = SignatureGenerator()
    runs = script.find_runs(testdata)
    assert len(runs) >= 60
    mismatches = []
    for run in runs:
        processed = script.our_processed_crash(run)
        validate_processed_crash(processed)
        json.dumps(processed, allow_nan=False)  # storable as is by every destination
        theirs = script.breakpad_signature(generator, run.expected)
        if processed["signature"] != theirs:
            mismatches.append((run.name, processed["signature"], theirs))
    assert len(mismatches) <= 0.02 * len(runs), mismatches
