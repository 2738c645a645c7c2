"""Processor: the whole default ruleset, reprocessing, regenerate_signature, poison crashes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from _rules_helpers import (
    CRASH_ID,
    RAW_CRASH_NAMES,
    FakeWalker,
    FakeWalkResult,
    RecordingMetrics,
    frame,
    json_dump,
    load_raw_crash,
    module,
)

from procsupervisor import crashid
from procsupervisor.metrics import NullMetrics
from procsupervisor.workers.processor import Processor, validate_processed_crash
from procsupervisor.workers.rules import signature
from procsupervisor.workers.rules.rulesets import (
    DEFAULT,
    POISON,
    REGENERATE_SIGNATURE,
    RULESETS,
    build_rulesets,
    ruleset_for,
)

MAIN_DUMP = json_dump(
    [
        [
            frame(
                0,
                "test_app.exe",
                "`anonymous namespace'::CrashFunction",
                file="c:\\test_app.cc",
                line=58,
            ),
            frame(1, "test_app.exe", "main", file="c:\\test_app.cc", line=65),
            frame(2, "kernel32.dll", "BaseProcessStart"),
        ],
        [frame(0, "ntdll.dll", "KiFastSystemCallRet")],
    ],
    modules=[
        module("test_app.exe"),
        module("kernel32.dll", "BCE8785C57B44245A669896B6A19B9542"),
        module("ntdll.dll", "36515FB5D04345E491F672FA2E2878C02", missing_symbols=True),
    ],
)


def _processor(walker: FakeWalker | None = None, **options: str) -> Processor:
    walker = walker or FakeWalker({b"MDMP-main": FakeWalkResult("OK", copy.deepcopy(MAIN_DUMP))})
    return Processor(symbols=None, metrics=RecordingMetrics(), options=options, walker=walker)


RAW = {
    "ProductName": "Firefox",
    "Version": "86.0a1",
    "ReleaseChannel": "nightly",
    "BuildID": "20210107040715",
    "CrashTime": "1610026813",
    "StartupTime": "1610026772",
    "submitted_timestamp": "2021-01-07T13:41:00+00:00",
}


def test_full_default_ruleset() -> None:
    processed = _processor().process(CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"})
    validate_processed_crash(processed)
    assert processed["success"] is True
    assert processed["signature"] == "(anonymous namespace)::CrashFunction"
    assert processed["proto_signature"].startswith("(anonymous namespace)::CrashFunction | main")
    assert processed["crashing_thread"] == 0
    assert processed["reason"] == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert processed["address"] == "0x00000045"
    assert processed["os_pretty_version"] == "Windows XP"
    assert processed["cpu_arch"] == "x86"
    assert processed["topmost_filenames"] == "c:\\test_app.cc"
    assert processed["modules_in_stack"].startswith("kernel32.dll/BCE8785C")
    assert (
        processed["missing_symbols"]
        == "ntdll.dll/1.0.0.1/36515FB5D04345E491F672FA2E2878C02/45D35F6C2d000"
    )
    assert processed["thread_count"] == 2
    assert processed["report_type"] == "crash"
    assert processed["product"] == "Firefox"
    assert processed["major_version"] == 86
    assert processed["mdsw_status_string"] == "OK"
    assert processed["crash_report_keys"][-1] == "upload_file_minidump"
    notes = processed["processor_notes"].split("\n")
    assert notes[0].startswith(">>> Start processing: ")
    assert not [note for note in notes[1:] if "failed" in note], notes


@pytest.mark.parametrize("name", RAW_CRASH_NAMES)
def test_real_raw_crashes_without_dumps_validate(testdata: Path, name: str) -> None:
    processed = _processor().process(CRASH_ID, load_raw_crash(testdata, name), {})
    validate_processed_crash(processed)
    assert processed["success"] is True
    assert processed["signature"] == "EMPTY: no frame data available"
    assert " failed: " not in processed["processor_notes"]


def test_rule_failure_inside_the_processor_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: object, ctx: object) -> None:
        raise RuntimeError("siglists broken")

    monkeypatch.setattr(signature.SignatureGeneratorRule, "action", explode)
    processed = _processor().process(CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"})
    validate_processed_crash(processed)
    assert processed["success"] is True
    assert "rule SignatureGeneratorRule failed: RuntimeError" in processed["processor_notes"]
    assert processed["signature"] == "EMPTY: crash failed to process"
    assert processed["os_pretty_version"] == "Windows XP"  # rules before it still ran


def test_reprocessing_moves_notes_to_history() -> None:
    processor = _processor()
    first = processor.process(CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"})
    second = processor.process(
        CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"}, previous=first
    )
    validate_processed_crash(second)
    assert second["processor_history"] == [first["processor_notes"]]
    assert second["signature"] == first["signature"]
    third = processor.process(CRASH_ID, dict(RAW), {}, previous=second)
    assert third["processor_history"] == [second["processor_notes"], first["processor_notes"]]


def test_regenerate_signature_reuses_the_stored_crash() -> None:
    walker = FakeWalker({b"MDMP-main": FakeWalkResult("OK", copy.deepcopy(MAIN_DUMP))})
    processor = _processor(walker)
    first = processor.process(CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"})
    stale = dict(first, signature="old signature")
    regenerated = processor.process(
        CRASH_ID, {}, {}, ruleset="regenerate_signature", previous=stale
    )
    validate_processed_crash(regenerated)
    assert len(walker.calls) == 1  # no second stackwalk
    assert regenerated["signature"] == first["signature"]
    assert regenerated["product"] == "Firefox"  # the rest of the stored crash is kept
    assert regenerated["processor_history"] == [first["processor_notes"]]
    assert regenerated["started_datetime"] >= first["started_datetime"]


def test_regenerate_signature_without_a_stored_crash_processes_it_fully() -> None:
    processed = _processor().process(
        CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"}, ruleset="regenerate_signature"
    )
    validate_processed_crash(processed)
    assert processed["success"] is True
    assert processed["signature"] == "(anonymous namespace)::CrashFunction"
    assert processed["processor_notes"].endswith(
        "regenerate_signature: no previous processed crash; ran the default ruleset"
    )


def test_unknown_ruleset_is_not_a_success() -> None:
    processed = _processor().process(CRASH_ID, {}, {}, ruleset="poison")
    validate_processed_crash(processed)
    assert processed["success"] is False
    assert "no ruleset named 'unknown:poison'" in processed["processor_notes"]


def test_rulesets_are_named() -> None:
    assert _processor().rulesets == ("default", "regenerate_signature")


def test_every_ruleset_is_declared_with_its_needs() -> None:
    built = set(build_rulesets(symbols=None, metrics=NullMetrics())) | {POISON}
    assert built == set(RULESETS)
    for name, declared in RULESETS.items():
        assert declared.name == name
        if declared.fallback is not None:
            assert declared.needs_previous_processed and declared.fallback in RULESETS
    assert RULESETS[REGENERATE_SIGNATURE].needs_previous_processed
    assert not RULESETS[DEFAULT].needs_previous_processed
    poison = RULESETS[POISON]
    assert not (poison.selectable or poison.reads_dumps or poison.raw_crash_required)
    assert not poison.reads_previous_processed("reprocessing")
    # A name a queue message may not ask for runs under the default declaration.
    assert ruleset_for("poison") is ruleset_for("nope") is ruleset_for(None) is RULESETS[DEFAULT]


def test_invalid_crash_id_is_refused() -> None:
    with pytest.raises(crashid.InvalidCrashId):
        _processor().process("../../etc/passwd", {}, {})
    with pytest.raises(crashid.InvalidCrashId):
        _processor().poison("nope", None, "x")


def test_poison_crash() -> None:
    processed = _processor().poison(
        CRASH_ID, dict(RAW), "worker killed (SIGKILL)\nafter deadline 300 s"
    )
    validate_processed_crash(processed)
    assert processed["success"] is False
    assert processed["product"] == "Firefox"
    assert processed["signature"] == "EMPTY: crash failed to process"
    assert processed["processor_notes"].endswith(
        "\npoison crash: worker killed (SIGKILL) after deadline 300 s"
    )
    assert "json_dump" not in processed
    bare = _processor().poison(CRASH_ID, None, "")
    validate_processed_crash(bare)
    assert bare["processor_notes"].endswith("poison crash: unknown cause")


@pytest.mark.parametrize(
    "options",
    [
        {"stackwalk_max_frames": "many"},
        {"stackwalk_max_frames": "0"},
        {"stackwalk_timeout_s": "-1"},
        {"stackwalk_timeout_s": "soon"},
    ],
)
def test_bad_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="processor option"):
        Processor(symbols=None, metrics=NullMetrics(), options=options)


def test_options_reach_the_walker() -> None:
    walker = FakeWalker({b"MDMP-main": FakeWalkResult("OK", copy.deepcopy(MAIN_DUMP))})
    processor = _processor(walker, stackwalk_max_frames="64", stackwalk_timeout_s="none")
    processor.process(CRASH_ID, {}, {"upload_file_minidump": b"MDMP-main"})
    assert walker.calls[0]["max_frames_per_thread"] == 64
    assert walker.calls[0]["deadline_s"] is None


def test_schema_rejects_mistakes() -> None:
    good = _processor().process(CRASH_ID, dict(RAW), {"upload_file_minidump": b"MDMP-main"})
    for broken in (
        dict(good, sigature="typo"),
        dict(good, crashing_thread="0"),
        dict(good, started_datetime="yesterday"),
        dict(good, crash_id="../x"),
        dict(good, signature="x" * 256),
        {k: v for k, v in good.items() if k != "processor_notes"},
    ):
        with pytest.raises(Exception, match=".") as info:
            validate_processed_crash(broken)
        assert type(info.value).__name__ == "ValidationError"


def test_unknown_options_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    Processor(symbols=None, metrics=NullMetrics(), options={"stackwalk_timeout": "5"})
    assert "unknown processor option 'stackwalk_timeout' ignored" in caplog.text
