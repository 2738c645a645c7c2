"""Mozilla-specific rules over annotations: each rule's fields, and what it does without data."""

from __future__ import annotations

import json

import pytest
from _rules_helpers import assert_valid_fields, run_rule

from procsupervisor.workers.rules import android, hygiene, mozilla_fields, product


@pytest.mark.parametrize(
    ("raw", "submitted_from", "from_infobar"),
    [
        ({"SubmittedFrom": "Client"}, "Client", False),
        ({"SubmittedFrom": "Infobar"}, "Infobar", True),
        ({"SubmittedFromInfobar": "1"}, "Infobar", True),
        ({"SubmittedFromInfobar": True}, "Infobar", True),
        ({"SubmittedFromInfobar": "0", "SubmittedFrom": "Client"}, "Unknown", False),
        ({}, "Unknown", False),
    ],
)
def test_submitted_from(raw: dict[str, object], submitted_from: str, from_infobar: bool) -> None:
    ctx = run_rule(mozilla_fields.SubmittedFromRule(), raw_crash=raw)
    assert ctx.processed == {
        "submitted_from": submitted_from,
        "submitted_from_infobar": from_infobar,
    }
    assert_valid_fields(ctx.processed)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"Accessibility": "Active"}, True), ({"Accessibility": "x"}, False), ({}, False)],
)
def test_accessibility(raw: dict[str, str], expected: bool) -> None:
    ctx = run_rule(mozilla_fields.AccessibilityRule(), raw_crash=raw)
    assert ctx.processed == {"accessibility": expected}
    assert_valid_fields(ctx.processed)


def _telemetry(distribution_id: object) -> str:
    return json.dumps({"partner": {"distributionId": distribution_id}})


@pytest.mark.parametrize(
    ("raw", "processed", "expected"),
    [
        ({"DistributionID": "canonical"}, {}, "canonical"),
        ({"DistributionID": "", "TelemetryEnvironment": _telemetry("yandex")}, {}, "yandex"),
        ({"TelemetryEnvironment": _telemetry(None)}, {}, "mozilla"),
        ({"TelemetryEnvironment": _telemetry("")}, {}, "mozilla"),
        ({"TelemetryEnvironment": json.dumps({"build": {}})}, {}, "unknown"),
        ({"TelemetryEnvironment": "{broken"}, {}, "unknown"),
        ({}, {"telemetry_environment": {"partner": {"distributionId": "acer"}}}, "acer"),
        ({}, {}, "unknown"),
    ],
)
def test_distribution_id(raw: dict[str, str], processed: dict[str, object], expected: str) -> None:
    ctx = run_rule(mozilla_fields.DistributionIdRule(), raw_crash=raw, processed=processed)
    assert ctx.processed["distribution_id"] == expected
    assert_valid_fields(ctx.processed)


def test_utility_actors_name() -> None:
    raw = {"UtilityActorsName": "audio-decoder-generic, ,windows-utils"}
    ctx = run_rule(mozilla_fields.UtilityActorsNameRule(), raw_crash=raw)
    assert ctx.processed == {"utility_actors_name": ["audio-decoder-generic", "windows-utils"]}
    assert_valid_fields(ctx.processed)
    assert run_rule(mozilla_fields.UtilityActorsNameRule(), raw_crash={}).processed == {}


def test_theme_pretty_name() -> None:
    theme = "{972ce4c6-7e08-4474-a285-3208198ce6fd}"
    processed = {"addons": ["a@b:1", f"{theme}:91.0", theme]}
    ctx = run_rule(mozilla_fields.ThemePrettyNameRule(), processed=processed)
    assert ctx.processed["addons"] == [
        "a@b:1",
        f"{theme} (default theme):91.0",
        f"{theme} (default theme)",
    ]
    assert_valid_fields(ctx.processed)
    untouched = {"addons": ["a@b:1"]}
    assert (
        run_rule(mozilla_fields.ThemePrettyNameRule(), processed=untouched).processed == untouched
    )
    assert run_rule(mozilla_fields.ThemePrettyNameRule()).processed == {}


def test_fenix_nightly_version_rewrite() -> None:
    rule = product.FenixVersionRewriteRule()
    ctx = run_rule(rule, processed={"product": "Fenix", "version": "Nightly 200312 06:08"})
    assert ctx.processed["version"] == "0.0a1"
    assert ctx.notes == ["Changed version from 'Nightly 200312 06:08' to 0.0a1"]
    for processed in ({"product": "Fenix", "version": "110.0"}, {"product": "Firefox"}, {}):
        assert run_rule(rule, processed=processed).processed == processed


def test_module_signature_info_becomes_text() -> None:
    rule = hygiene.ConvertModuleSignatureInfoRule()
    info = {"Microsoft Windows": ["ntdll.dll"]}
    ctx = run_rule(rule, raw_crash={"ModuleSignatureInfo": info})
    assert json.loads(ctx.raw_crash["ModuleSignatureInfo"]) == info
    text = json.dumps(info)
    assert run_rule(rule, raw_crash={"ModuleSignatureInfo": text}).raw_crash == {
        "ModuleSignatureInfo": text
    }
    assert run_rule(rule).raw_crash == {}


def test_android_cpu_from_abi() -> None:
    rule = android.AndroidCPUInfoRule()
    ctx = run_rule(
        rule, raw_crash={"Android_CPU_ABI": "arm64-v8a"}, processed={"cpu_arch": "unknown"}
    )
    assert ctx.processed["cpu_arch"] == "arm64"
    assert_valid_fields(ctx.processed)
    ctx = run_rule(rule, raw_crash={"Android_CPU_ABI": "mips"})
    assert ctx.processed["cpu_arch"] == "mips"
    # the minidump's answer wins; no annotation, nothing to do
    ctx = run_rule(rule, raw_crash={"Android_CPU_ABI": "x86_64"}, processed={"cpu_arch": "arm"})
    assert ctx.processed["cpu_arch"] == "arm"
    assert run_rule(rule, processed={"cpu_arch": "unknown"}).processed == {"cpu_arch": "unknown"}


def test_android_os_from_version() -> None:
    rule = android.AndroidOSInfoRule()
    ctx = run_rule(
        rule, raw_crash={"Android_Version": "23 (REL)"}, processed={"os_name": "Unknown"}
    )
    assert ctx.processed == {"os_name": "Android", "os_version": "23"}
    assert_valid_fields(ctx.processed)
    ctx = run_rule(
        rule, raw_crash={"Android_Version": "Q (beta)"}, processed={"os_name": "Android"}
    )
    assert ctx.processed == {"os_name": "Android"}
    linux = {"os_name": "Linux", "os_version": "5.4"}
    assert run_rule(rule, raw_crash={"Android_Version": "29"}, processed=linux).processed == linux
    assert run_rule(rule, processed={"os_name": "Unknown"}).processed == {"os_name": "Unknown"}
