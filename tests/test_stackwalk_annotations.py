"""What the stackwalk rule adds around the walk, as Socorro's minidump-stackwalk run does: the
crash annotations the stackwalker reads (module signers, CPU microcode version) and the
mdsw_return_code / mdsw_stderr fields."""

from __future__ import annotations

import copy
import json

from _rules_helpers import (
    FakeWalker,
    FakeWalkResult,
    RecordingMetrics,
    assert_valid_fields,
    frame,
    json_dump,
    module,
    run_rule,
)

from procsupervisor.workers.rules.stackwalk import MinidumpStackwalkRule, stderr_tail
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
)
from procsupervisor.workers.stackwalker.output.crash_annotations import (
    apply_crash_annotations,
    microcode_version,
    module_signers,
)

SIGNERS = {"Microsoft Windows": ["ntdll.dll"], "Mozilla Corporation": ["xul.dll", "firefox.exe"]}


def test_module_signers_from_text_or_object() -> None:
    expected = {"ntdll.dll": "Microsoft Windows", "xul.dll": "Mozilla Corporation",
                "firefox.exe": "Mozilla Corporation"}  # fmt: skip
    assert module_signers(json.dumps(SIGNERS)) == expected
    assert module_signers(SIGNERS) == expected
    for junk in ("{broken", "[1]", {"signer": "not a list"}, {"signer": [5]}, None):
        assert module_signers(junk) == {}


def test_microcode_version_as_rust_prints_it() -> None:
    assert microcode_version("0x000000de") == "0xde"
    assert microcode_version("0xF0") == "0xf0"
    for junk in ("de", "0x", "0xzz", "0x" + "f" * 17, 222, None):
        assert microcode_version(junk) is None


def test_annotations_fill_what_the_dump_does_not_say() -> None:
    dump = json_dump([[frame(0, "xul.dll")]], modules=[module("xul.dll"), module("a.dll")])
    dump["system_info"]["cpu_microcode_version"] = None
    apply_crash_annotations(
        dump, {"ModuleSignatureInfo": json.dumps(SIGNERS), "CPUMicrocodeVersion": "0xde"}
    )
    assert [m["cert_subject"] for m in dump["modules"]] == ["Mozilla Corporation", None]
    assert dump["modules_contains_cert_info"] is True
    assert dump["system_info"]["cpu_microcode_version"] == "0xde"
    # the dump's own value (Linux /proc/cpuinfo) wins
    dump["system_info"]["cpu_microcode_version"] = "0xf0"
    apply_crash_annotations(dump, {"CPUMicrocodeVersion": "0xde"})
    assert dump["system_info"]["cpu_microcode_version"] == "0xf0"
    assert dump["modules_contains_cert_info"] is False


def test_a_dump_that_did_not_process_is_left_alone() -> None:
    failed = {"status": "ERROR_NO_THREAD_LIST", "notes": []}
    apply_crash_annotations(failed, {"ModuleSignatureInfo": json.dumps(SIGNERS)})
    assert failed == {"status": "ERROR_NO_THREAD_LIST", "notes": []}


def _rule(walker: FakeWalker) -> MinidumpStackwalkRule:
    return MinidumpStackwalkRule(symbols=None, metrics=RecordingMetrics(), walker=walker)


def test_mdsw_fields_of_a_good_walk_with_the_real_stackwalker() -> None:
    synth = SynthMinidump(platform_id=PLATFORM_WINDOWS, arch=ARCH_AMD64)
    synth.add_module(0x400000, 0x10000, "c:\\firefox.exe")
    context = amd64_context(rip=0x401000, rsp=0x7F0000)
    synth.add_thread(1, context)
    synth.set_exception(1, 0xC0000005, parameters=[0, 0x10], context=context)
    rule = MinidumpStackwalkRule(symbols=None, metrics=RecordingMetrics())
    raw = {"ModuleSignatureInfo": json.dumps(SIGNERS), "CPUMicrocodeVersion": "0x000000ca"}
    ctx = run_rule(rule, raw_crash=raw, dumps={"upload_file_minidump": synth.build()})
    assert ctx.processed["mdsw_return_code"] == 0
    assert ctx.processed["mdsw_stderr"] == ""
    assert ctx.processed["json_dump"]["modules"][0]["cert_subject"] == "Mozilla Corporation"
    assert ctx.processed["json_dump"]["system_info"]["cpu_microcode_version"] == "0xca"
    assert_valid_fields(ctx.processed)


def test_mdsw_fields_of_a_failed_walk() -> None:
    notes = [f"note {i}" for i in range(12)]
    bad = FakeWalkResult("ERROR_NO_THREAD_LIST", {"status": "ERROR_NO_THREAD_LIST"}, notes)
    ctx = run_rule(_rule(FakeWalker({b"bad": bad})), dumps={"upload_file_minidump": b"bad"})
    assert ctx.processed["mdsw_return_code"] == 1
    assert ctx.processed["mdsw_stderr"] == "\n".join(["...", *notes[-10:]])
    assert_valid_fields(ctx.processed)

    crashed = FakeWalker({b"boom": RuntimeError("secret")})
    ctx = run_rule(_rule(crashed), dumps={"upload_file_minidump": b"boom"})
    assert (ctx.processed["mdsw_return_code"], ctx.processed["mdsw_stderr"]) == (
        1,
        "stackwalker failed: RuntimeError",
    )


def test_empty_dump_has_no_return_code() -> None:
    ctx = run_rule(_rule(FakeWalker({})), dumps={"upload_file_minidump": b""})
    assert "mdsw_return_code" not in ctx.processed
    assert ctx.processed["mdsw_stderr"] == "Shortcut for 0-bytes minidump."


def test_additional_dumps_keep_their_short_entry() -> None:
    good = FakeWalkResult("OK", copy.deepcopy(json_dump([[frame(0, "a.dll")]])))
    walker = FakeWalker({b"main": good, b"gpu": good})
    dumps = {"upload_file_minidump": b"main", "upload_file_minidump_gpu": b"gpu"}
    ctx = run_rule(_rule(walker), dumps=dumps)
    assert set(ctx.processed["upload_file_minidump_gpu"]) == {
        "json_dump",
        "mdsw_status_string",
        "success",
    }


def test_stderr_tail() -> None:
    assert stderr_tail([]) == ""
    assert stderr_tail(["a", "b"]) == "a\nb"
    assert stderr_tail([str(i) for i in range(11)]).splitlines()[:2] == ["...", "1"]
