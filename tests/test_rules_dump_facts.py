"""Rules reading the stackwalker's json_dump beyond the stacks: each rule's fields, and that it
does nothing when the json_dump does not have its data."""

from __future__ import annotations

import json
from typing import Any

from _rules_helpers import assert_valid_fields, run_rule

from procsupervisor.workers.rules import dump_facts


def _crash_info(**fields: Any) -> dict[str, Any]:
    return {"json_dump": {"crash_info": {"type": "SIGSEGV / SEGV_MAPERR", **fields}}}


def test_bit_flip_max_confidence_as_percent() -> None:
    flips = [{"address": "0x0", "confidence": 0.4375}, {"address": "0x400045", "confidence": 0.25}]
    ctx = run_rule(
        dump_facts.PossibleBitFlipsRule(), processed=_crash_info(possible_bit_flips=flips)
    )
    assert ctx.processed["possible_bit_flips_max_confidence"] == 43
    ctx.processed.pop("json_dump")
    assert_valid_fields(ctx.processed)
    for processed in (_crash_info(possible_bit_flips=None), _crash_info(possible_bit_flips=[]), {}):
        ctx = run_rule(dump_facts.PossibleBitFlipsRule(), processed=processed)
        assert "possible_bit_flips_max_confidence" not in ctx.processed


def test_crash_inconsistencies_copied_or_null() -> None:
    rule = dump_facts.CrashInconsistenciesRule()
    found = ["access_violation_when_access_allowed"]
    ctx = run_rule(rule, processed=_crash_info(crash_inconsistencies=found))
    assert ctx.processed["crash_inconsistencies"] == found
    assert_valid_fields({"crash_inconsistencies": found})
    assert run_rule(rule, processed=_crash_info()).processed["crash_inconsistencies"] is None
    assert run_rule(rule, processed={"json_dump": {}}).processed["crash_inconsistencies"] is None
    assert run_rule(rule).processed == {}  # no minidump, nothing said


def test_guard_page_access_only_when_true() -> None:
    rule = dump_facts.HasGuardPageAccessRule()
    accesses = [
        {"address": "0x1000", "size": 8},
        {"address": "0x2000", "is_likely_guard_page": True},
    ]
    ctx = run_rule(rule, processed=_crash_info(memory_accesses=accesses))
    assert ctx.processed["has_guard_page_access"] is True
    assert_valid_fields({"has_guard_page_access": True})
    harmless = _crash_info(memory_accesses=accesses[:1])
    assert "has_guard_page_access" not in run_rule(rule, processed=harmless).processed
    assert "has_guard_page_access" not in run_rule(rule, processed=_crash_info()).processed


def test_mac_boot_args() -> None:
    rule = dump_facts.MacBootArgsRule()
    ctx = run_rule(rule, processed={"json_dump": {"mac_boot_args": " -v keepsyms=1 "}})
    assert (ctx.processed["mac_boot_args"], ctx.processed["has_mac_boot_args"]) == (
        "-v keepsyms=1",
        True,
    )
    assert_valid_fields({k: v for k, v in ctx.processed.items() if k != "json_dump"})
    ctx = run_rule(rule, processed={"json_dump": {"mac_boot_args": 5}})
    assert ctx.notes == ["MacBootArgsRule: mac_boot_args is int and not str"]
    for json_dump in ({"mac_boot_args": "  "}, {"mac_boot_args": None}, {}):
        assert (
            "has_mac_boot_args" not in run_rule(rule, processed={"json_dump": json_dump}).processed
        )


def test_mac_crash_info_as_sorted_json() -> None:
    info = {"records": [{"thread": "0x1", "message": "abort() called"}], "num_records": 1}
    ctx = run_rule(dump_facts.MacCrashInfoRule(), processed={"json_dump": {"mac_crash_info": info}})
    assert ctx.processed["mac_crash_info"] == json.dumps(info, sort_keys=True)
    assert_valid_fields({"mac_crash_info": ctx.processed["mac_crash_info"]})
    # a stale value from an earlier processing goes when the dump has no records
    stale = {"mac_crash_info": "{}", "json_dump": {"mac_crash_info": {"num_records": 0}}}
    assert (
        "mac_crash_info" not in run_rule(dump_facts.MacCrashInfoRule(), processed=stale).processed
    )


def test_soft_errors_text_whenever_reported() -> None:
    rule = dump_facts.SoftErrorsRule()
    errors = [{"InitErrors": ["x" * 5000]}]
    ctx = run_rule(rule, processed={"json_dump": {"soft_errors": errors}})
    assert ctx.processed["soft_errors"] == json.dumps(errors)[:4096]
    assert_valid_fields({"soft_errors": ctx.processed["soft_errors"]})
    assert (
        run_rule(rule, processed={"json_dump": {"soft_errors": None}}).processed["soft_errors"]
        == "null"
    )
    assert "soft_errors" not in run_rule(rule, processed={"json_dump": {}}).processed
    assert run_rule(rule).processed == {}


def test_module_symbol_urls_rewritten() -> None:
    modules = [
        {"filename": "xul.dll", "symbol_url": "https://symbols.mozilla.org/xul.pdb/A/xul.sym?x=1"},
        {"filename": "a.dll", "symbol_url": "http://localhost:8000/a.pdb/B/a.sym"},
        {"filename": "b.dll", "symbol_url": "https://example.com/b.sym?keep=1"},
        {"filename": "c.dll", "symbol_url": None},
    ]
    ctx = run_rule(dump_facts.ModuleURLRewriteRule(), processed={"json_dump": {"modules": modules}})
    urls = [m["symbol_url"] for m in ctx.processed["json_dump"]["modules"]]
    assert urls == [
        "https://symbols.mozilla.org/xul.pdb/A/xul.sym",
        None,
        "https://example.com/b.sym?keep=1",
        None,
    ]
    assert ctx.notes == ["Redacting symbol url for module a.dll"]
    assert run_rule(dump_facts.ModuleURLRewriteRule(), processed={"json_dump": {}}).notes == []


def test_shutdown_hang_shows_thread_zero() -> None:
    rule = dump_facts.ShutDownHangCrashingThreadRule()
    hang = {"signature": "shutdownhang | ConditionVariable::wait", "crashing_thread": 14}
    assert run_rule(rule, processed=hang).processed["crashing_thread"] == 0
    crash = {"signature": "OOM | small", "crashing_thread": 3}
    assert run_rule(rule, processed=crash).processed == crash
    assert run_rule(rule).processed == {}
