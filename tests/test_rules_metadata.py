"""Metadata rules that need no stackwalk: each rule's fields and its failure notes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from _rules_helpers import (
    CRASH_ID,
    RAW_CRASH_NAMES,
    RecordingMetrics,
    assert_valid_fields,
    load_raw_crash,
    run_rule,
)

from procsupervisor.workers.rules import (
    addons,
    annotations,
    dates,
    hygiene,
    identifiers,
    java,
    memory_report,
    moz_crash_reason,
    process_info,
    product,
    user_data,
)


def test_de_null_cleans_keys_and_values_and_counts() -> None:
    metrics = RecordingMetrics()
    ctx = run_rule(
        hygiene.DeNullRule(metrics),
        raw_crash={"Product\0Name": "Fire\0fox", "Version": "1.0", "Count": 3},
    )
    assert ctx.raw_crash == {"ProductName": "Firefox", "Version": "1.0", "Count": 3}
    assert metrics.names("incr") == ["processor.denullrule.has_nulls"]


def test_de_null_is_silent_on_clean_crashes() -> None:
    metrics = RecordingMetrics()
    ctx = run_rule(hygiene.DeNullRule(metrics), raw_crash={"ProductName": "Firefox"})
    assert ctx.raw_crash == {"ProductName": "Firefox"}
    assert metrics.calls == []


def test_de_none_drops_none_values() -> None:
    metrics = RecordingMetrics()
    ctx = run_rule(hygiene.DeNoneRule(metrics), raw_crash={"A": None, "B": "", "C": "x"})
    assert ctx.raw_crash == {"B": "", "C": "x"}
    assert metrics.names("incr") == ["processor.denonerule.had_nones"]


def test_crash_report_keys_lists_annotations_and_dumps_and_notes_invalid_keys() -> None:
    ctx = run_rule(
        hygiene.CrashReportKeysRule(),
        raw_crash={"ProductName": "x", "Add-ons": "", "bad key!": 1, "x" * 101: 2},
        dumps={"upload_file_minidump": b"MDMP", "memory_report": b""},
    )
    assert ctx.processed["crash_report_keys"] == [
        "Add-ons",
        "ProductName",
        "memory_report",
        "upload_file_minidump",
    ]
    assert ctx.notes == ["invalidkeys: Crash report contains invalid keys"]
    assert_valid_fields(ctx.processed)


def test_collector_metadata_copies_objects_only() -> None:
    ctx = run_rule(
        hygiene.CollectorMetadataRule(), raw_crash={"metadata": {"collector": "antenna"}}
    )
    assert ctx.processed["collector_metadata"] == {"collector": "antenna"}
    ctx = run_rule(hygiene.CollectorMetadataRule(), raw_crash={"metadata": "junk"})
    assert ctx.processed["collector_metadata"] == {}


def test_identifier_rule_uses_the_validated_crash_id() -> None:
    ctx = run_rule(identifiers.IdentifierRule(), raw_crash={"uuid": "../../etc/passwd"})
    assert ctx.processed["crash_id"] == ctx.processed["uuid"] == CRASH_ID
    assert ctx.notes == ["IdentifierRule: raw crash uuid differs from the crash id"]
    assert run_rule(identifiers.IdentifierRule(), raw_crash={"uuid": CRASH_ID}).notes == []


def test_minidump_sha256_hash_from_metadata_or_annotation() -> None:
    rule = identifiers.MinidumpSha256HashRule()
    raw = {"metadata": {"dump_checksums": {"upload_file_minidump": "ab" * 32}}}
    assert run_rule(rule, raw_crash=raw).processed["minidump_sha256_hash"] == "ab" * 32
    raw = {"MinidumpSha256Hash": "cd" * 32}
    assert run_rule(rule, raw_crash=raw).processed["minidump_sha256_hash"] == "cd" * 32
    assert run_rule(rule).processed["minidump_sha256_hash"] == ""


def test_product_rule_with_defaults() -> None:
    ctx = run_rule(
        product.ProductRule(),
        raw_crash={"ProductName": "Firefox", "Version": "86.0a1", "ProductID": "{ec80}"},
    )
    assert ctx.processed == {
        "product": "Firefox",
        "version": "86.0a1",
        "release_channel": "",
        "build": "",
        "productid": "{ec80}",
    }
    assert_valid_fields(ctx.processed)


def test_esr_version_rewrite() -> None:
    rule = product.ESRVersionRewrite()
    ctx = run_rule(rule, processed={"release_channel": "esr", "version": "78.6.0"})
    assert ctx.processed["version"] == "78.6.0esr"
    ctx = run_rule(rule, processed={"release_channel": "esr", "version": ""})
    assert ctx.notes == ["ESRVersionRewrite: 'version' missing from esr release processed crash"]
    ctx = run_rule(rule, processed={"release_channel": "release", "version": "78.6.0"})
    assert ctx.processed["version"] == "78.6.0"


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("86.0a1", 86),
        ("78.6.0esr", 78),
        ("", 0),
        ("Nightly 200312 06:08", 0),
        ("x.1", 0),
        ("².0", 0),
    ],
)
def test_major_version(version: str, major: int) -> None:
    ctx = run_rule(product.MajorVersionRule(), processed={"version": version})
    assert ctx.processed["major_version"] == major


def test_dates_and_times_from_annotations() -> None:
    raw = {
        "submitted_timestamp": "2021-01-07T13:41:00+00:00",
        "CrashTime": "1610026813",
        "StartupTime": "1610026772",
        "InstallTime": "1610026773",
        "SecondsSinceLastCrash": "2519448",
    }
    ctx = run_rule(dates.DatesAndTimesRule(), raw_crash=raw)
    assert ctx.processed == {
        "submitted_timestamp": "2021-01-07T13:41:00+00:00",
        "date_processed": "2021-01-07T13:41:00+00:00",
        "crash_time": 1610026813,
        "client_crash_date": "2021-01-07T13:40:13+00:00",
        "install_age": 40,
        "uptime": 41,
        "last_crash": 2519448,
    }
    assert ctx.notes == []
    assert_valid_fields(ctx.processed)


def test_dates_and_times_notes_on_bad_values() -> None:
    raw = {
        "CrashTime": "soon",
        "StartupTime": "1",
        "SecondsSinceLastCrash": "-5",
    }
    ctx = run_rule(dates.DatesAndTimesRule(), raw_crash=raw)
    # no submitted_timestamp: the crash id's date (2016-09-18) at midnight UTC
    assert ctx.processed["submitted_timestamp"] == "2016-09-18T00:00:00+00:00"
    assert ctx.processed["crash_time"] == 1474156800
    assert ctx.processed["last_crash"] is None
    assert ctx.notes == [
        "WARNING: raw_crash missing submitted_timestamp; using the crash id date",
        'non-integer value of "CrashTime"',
        "client_crash_date is unknown",
        '"SecondsSinceLastCrash" out of range - set to NULL',
    ]
    assert_valid_fields(ctx.processed)


def test_dates_naive_submitted_timestamp_is_utc_and_uptime_never_negative() -> None:
    raw = {"submitted_timestamp": "2021-01-07T13:41:00", "CrashTime": "100", "StartupTime": "200"}
    ctx = run_rule(dates.DatesAndTimesRule(), raw_crash=raw)
    assert ctx.processed["submitted_timestamp"] == "2021-01-07T13:41:00+00:00"
    assert ctx.processed["uptime"] == 0
    assert ctx.processed["install_age"] == -100


def test_user_data() -> None:
    raw = {"URL": "https://example.com/", "Comments": " it crashed ", "Notes": "", "Email": "a@b"}
    ctx = run_rule(user_data.UserDataRule(), raw_crash=raw)
    assert ctx.processed == {"url": "https://example.com/", "user_comments": "it crashed"}


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "parent"), ("main", "parent"), ("content", "content")]
)
def test_process_type(value: str | None, expected: str) -> None:
    raw = {} if value is None else {"ProcessType": value}
    assert run_rule(process_info.ProcessTypeRule(), raw_crash=raw).processed == {
        "process_type": expected
    }


def test_plugin_fields_only_for_plugin_processes() -> None:
    raw = {"PluginFilename": "NPSWF32.dll", "PluginName": "Shockwave Flash"}
    ctx = run_rule(process_info.PluginRule(), raw_crash=raw, processed={"process_type": "plugin"})
    assert ctx.processed["plugin_filename"] == "NPSWF32.dll"
    assert ctx.processed["plugin_version"] == ""
    ctx = run_rule(process_info.PluginRule(), raw_crash=raw, processed={"process_type": "parent"})
    assert "plugin_filename" not in ctx.processed


def test_addons() -> None:
    raw = {"EMCheckCompatibility": "TRUE", "Add-ons": "a%40b.org:1.0,noversion%40x,,c+d:2"}
    ctx = run_rule(addons.AddonsRule(), raw_crash=raw)
    assert ctx.processed == {
        "addons_checked": True,
        "addons": ["a@b.org:1.0", "noversion@x:NO_VERSION", "c d:2"],
    }
    ctx = run_rule(addons.AddonsRule(), raw_crash={"EMCheckCompatibility": "false"})
    assert ctx.processed == {"addons_checked": False, "addons": []}
    assert run_rule(addons.AddonsRule()).processed["addons_checked"] is None


def test_copy_from_raw_crash_types_and_notes() -> None:
    raw = {"OOMAllocationSize": "262144", "StartupCrash": "1", "TotalPhysicalMemory": "lots"}
    ctx = run_rule(annotations.CopyFromRawCrashRule(), raw_crash=raw)
    assert ctx.processed == {"oom_allocation_size": 262144, "startup_crash": True}
    assert ctx.notes == ["CopyFromRawCrashRule: invalid value of 'TotalPhysicalMemory'"]
    assert_valid_fields(ctx.processed)


def _gzip_json(value: object) -> bytes:
    return gzip.compress(json.dumps(value).encode())


def test_memory_report_is_decoded() -> None:
    report = {"version": 1, "reports": [{"process": "Main (pid 1)", "amount": 5}]}
    ctx = run_rule(
        memory_report.OutOfMemoryBinaryRule(), dumps={"memory_report": _gzip_json(report)}
    )
    assert ctx.processed == {"memory_report": report}
    assert ctx.notes == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip", "memory_report is not valid gzip"),
        (gzip.compress(b"{not json"), "memory_report is not valid JSON"),
        (_gzip_json([1, 2]), "memory_report is not a JSON object"),
        (_gzip_json({"a": 1})[:-12], "memory_report is truncated gzip"),
        (
            gzip.compress(b" " * (memory_report.MAX_UNCOMPRESSED + 10)),
            f"memory_report larger than {memory_report.MAX_UNCOMPRESSED} bytes uncompressed",
        ),
    ],
)
def test_memory_report_errors(data: bytes, message: str) -> None:
    ctx = run_rule(memory_report.OutOfMemoryBinaryRule(), dumps={"memory_report": data})
    assert ctx.processed == {"memory_report_error": message}
    assert ctx.notes == [f"OutOfMemoryBinaryRule: {message}"]
    assert_valid_fields(ctx.processed)


def test_java_stack_trace_drops_messages() -> None:
    trace = (
        "java.lang.IllegalStateException: user@example.com did something\n"
        "\tat org.mozilla.Foo.bar(Foo.java:10)\n"
        "Caused by: java.lang.NullPointerException: secret\n"
        "\tat org.mozilla.Baz.qux(Baz.java:3)\n"
        "weird line with spaces: and data"
    )
    ctx = run_rule(java.JavaStackTraceRule(), raw_crash={"JavaStackTrace": trace})
    assert ctx.processed["java_stack_trace_raw"] == trace
    assert ctx.processed["java_stack_trace"] == (
        "java.lang.IllegalStateException\n"
        "\tat org.mozilla.Foo.bar(Foo.java:10)\n"
        "Caused by: java.lang.NullPointerException\n"
        "\tat org.mozilla.Baz.qux(Baz.java:3)\n"
        "<redacted>"
    )
    assert run_rule(java.JavaStackTraceRule(), raw_crash={"JavaStackTrace": " "}).processed == {}


def test_moz_crash_reason() -> None:
    rule = moz_crash_reason.MozCrashReasonRule()
    ctx = run_rule(rule, raw_crash={"MozCrashReason": "MOZ_CRASH(Crash via about:crashparent)"})
    assert ctx.processed["moz_crash_reason"] == "MOZ_CRASH(Crash via about:crashparent)"
    ctx = run_rule(rule, raw_crash={"MozCrashReason": "Failed to load module file:///home/me"})
    assert ctx.processed["moz_crash_reason"] == moz_crash_reason.SANITIZED
    assert ctx.processed["moz_crash_reason_raw"] == "Failed to load module file:///home/me"


@pytest.mark.parametrize("name", RAW_CRASH_NAMES)
def test_real_annotations_give_the_expected_metadata(testdata: Path, name: str) -> None:
    raw = load_raw_crash(testdata, name)
    processed: dict[str, object] = {}
    for rule in (
        annotations.CopyFromRawCrashRule(),
        product.ProductRule(),
        product.MajorVersionRule(),
        process_info.ProcessTypeRule(),
        addons.AddonsRule(),
        dates.DatesAndTimesRule(),
        user_data.UserDataRule(),
        moz_crash_reason.MozCrashReasonRule(),
    ):
        ctx = run_rule(rule, raw_crash=raw, processed=processed)
        processed = ctx.processed
        assert not [n for n in ctx.notes if "non-integer" in n or "invalid" in n], ctx.notes
    assert processed["product"] == raw["ProductName"] and processed["product"] in (
        "Firefox",
        "Fennec",
    )
    assert processed["major_version"] in (80, 86)
    assert processed["release_channel"] == "nightly"
    assert processed["process_type"] == "parent"
    assert processed["crash_time"] == int(raw["CrashTime"])
    assert processed["uptime"] == int(raw["CrashTime"]) - int(raw["StartupTime"])
    assert all(":" in addon for addon in processed["addons"])  # type: ignore[union-attr]
    assert processed["moz_crash_reason"] == "MOZ_CRASH(Crash via about:crashparent)"
    assert_valid_fields(processed)
